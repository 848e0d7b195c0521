"""Which attention kernel a run asks for, and refusing one this machine cannot run, before any
run directory exists.

The flag `--kernel` overrides the scenario file's `kernel` key, which overrides `auto` (each
worker then takes the fastest kernel usable on its own device: bench.kernels.select). A kernel
asked for by name must be usable on every device the run targets; otherwise the run is refused
with one line (exit 2). The workers resolve it again on their real device: a worker that cannot
run it does not start, and the run stops the same way with nothing measured.
"""

from __future__ import annotations

from typing import Sequence

from dsabench.errors import InputError


def asked_kernel(flag: str | None, file_kernel: str | None, scenario_file: str) -> tuple[str, str]:
    """(kernel asked for, where it came from: '--kernel', the file's key, or 'default')."""
    if flag is not None:
        return flag, "--kernel"
    if file_kernel is not None:
        return file_kernel, f"{scenario_file}: key 'kernel'"
    return "auto", "default"


def _framework_sees_gpu(backend: str) -> bool:
    """Whether the backend's framework sees a CUDA device from this process (no NVML here)."""
    try:
        if backend == "torch":
            import torch  # noqa: PLC0415

            return bool(torch.cuda.is_available())
        import paddle  # noqa: PLC0415

        return bool(paddle.is_compiled_with_cuda()) and paddle.device.cuda.device_count() > 0
    except Exception:  # noqa: BLE001 - a framework that does not import sees no GPU
        return False


def targets_gpu(devices: Sequence[str] | None, backend: str) -> list[bool]:
    """Per worker the run starts: whether it runs on a GPU (cpu:N workers never do)."""
    if devices is not None and all(d.startswith("cpu:") for d in devices):
        return [False] * len(devices)
    from dsabench.bench.env import gpus  # noqa: PLC0415

    seen = bool(gpus()) or _framework_sees_gpu(backend)
    return [seen and not d.startswith("cpu:") for d in devices] if devices is not None else [seen]


def refuse_unusable(kernel: str, source: str, backend: str, devices: Sequence[str] | None) -> None:
    """InputError (one line) when `kernel`, asked by name, cannot run on a device the run targets."""
    from dsabench.bench.kernels.select import available  # noqa: PLC0415

    if kernel in ("auto", "reference"):
        return
    for gpu in sorted(set(targets_gpu(devices, backend))):
        why = available(backend, gpu)
        if why[kernel]:
            usable = ["auto"] + [k for k, reason in why.items() if not reason]
            where = "a GPU worker" if gpu else "a CPU worker (no CUDA device)"
            raise InputError(f"{source} {kernel!r}: not usable with --backend {backend} on {where}: {why[kernel]}; "
                             f"expected one of {', '.join(usable)}")
