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


def targets_gpu(devices: Sequence[str] | None, backend: str) -> list[bool]:
    """Per worker the run starts: whether it runs on a GPU (cpu:N workers never do)."""
    if devices is not None and all(d.startswith("cpu:") for d in devices):
        return [False] * len(devices)
    from dsabench.bench.env import gpus  # noqa: PLC0415
    from dsabench.bench.kernels.select import framework_sees_gpu  # noqa: PLC0415

    seen = bool(gpus()) or framework_sees_gpu(backend)
    return [seen and not d.startswith("cpu:") for d in devices] if devices is not None else [seen]


def refuse_unusable(kernel: str, source: str, backend: str, devices: Sequence[str] | None) -> None:
    """InputError (one line) when `kernel`, asked by name, cannot run on a device the run targets;
    for a kernel axis ('A,B'), when any of its kernels cannot."""
    from dsabench.bench.kernels.select import axis  # noqa: PLC0415

    for one in axis(kernel) or (kernel,):
        _refuse_one(one, source if one == kernel else f"{source} {kernel!r}: kernel", backend, devices)


def _refuse_one(kernel: str, source: str, backend: str, devices: Sequence[str] | None) -> None:
    from dsabench.bench.kernels.select import available  # noqa: PLC0415

    if kernel in ("auto", "reference"):
        return
    if available(backend, True)[kernel]:  # unusable even on a GPU: no need to look for one
        targets, where = [True], "here"
    else:
        targets, where = sorted(set(targets_gpu(devices, backend))), ""
    for gpu in targets:
        why = available(backend, gpu)
        if why[kernel]:
            usable = ["auto"] + [k for k, reason in why.items() if not reason]
            where = where or ("on a GPU worker" if gpu else "on a CPU worker (no CUDA device)")
            raise InputError(f"{source} {kernel!r}: not usable with --backend {backend} {where}: {why[kernel]}; "
                             f"expected one of {', '.join(usable)}")
