"""Which attention kernel a run uses: `reference` (plain framework ops, any device), `triton`
(the suite's fused Triton kernels, torch on CUDA), `gluon` (the suite's warp-specialized Gluon
decode and prefill, torch on an sm_90 GPU) or `flashmla` (FlashMLA, when it imports).

The default is flashmla, then triton, then reference. `gluon` is asked by name: it takes fewer
shapes (heads and topk multiples of 64) and one GPU generation, so as a default it would turn a
preset's small cases into `unsupported` records where `triton` measures them.
The kernel is recorded in every record and manifest; runs made with different kernels are not
compared unless asked for, since a kernel changes the size of every phase around the ones
#7253 touched.

Several kernels named at once (`flashmla,triton,reference`) are an axis of one run: each case is
measured with each kernel, side by side in one worker (`axis`); records then carry the kernel in
their key (`store.schema.key_of`), and `compare --kernels` pairs them.
"""

from __future__ import annotations

import importlib.util

from dsabench.errors import quoted

KERNELS = ("reference", "triton", "gluon", "flashmla")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def available(backend: str, gpu: bool) -> dict[str, str]:
    """kernel -> "" if usable here, else why not."""
    why = {"reference": ""}
    if not gpu:
        why["triton"] = "the Triton kernels need a CUDA device"
        why["gluon"] = "the Gluon kernels need a CUDA device (sm_90)"
        why["flashmla"] = "FlashMLA needs a CUDA device"
        return why
    if backend != "torch":
        why["triton"] = f"the Triton kernels take torch tensors; backend {backend} does not run them"
    else:
        why["triton"] = "" if _importable("triton") else "triton is not installed"
    why["gluon"] = (why["triton"].replace("the Triton kernels take", "the Gluon kernels take") if why["triton"]
                    else "" if _importable("triton.experimental.gluon") else "this triton has no Gluon (Triton 3.6 has)")
    why["flashmla"] = "" if _importable("flash_mla") else "the flash_mla package is not installed"
    return why


def default_kernel(backend: str, gpu: bool) -> str:
    usable = available(backend, gpu)
    return next(k for k in ("flashmla", "triton", "reference") if not usable[k])


def resolve(asked: str | None, backend: str, gpu: bool) -> str:
    """The kernel to use: `asked` if usable here (ValueError saying why not), else the default."""
    if asked is None or asked == "auto":
        return default_kernel(backend, gpu)
    if asked not in KERNELS:
        raise ValueError(f"kernel {asked!r}; expected one of {', '.join(KERNELS)} or auto")
    why = available(backend, gpu)[asked]
    if why:
        raise ValueError(f"kernel {asked!r} is not usable here: {why}")
    return asked


def parse(text: str) -> str:
    """A `--kernel` value (or a scenario file's list, joined by commas) checked: one name of
    KERNELS or auto, or two or more distinct names of KERNELS (an axis; auto cannot be one of
    them: each kernel of an axis is asked by name). ValueError saying what is allowed."""
    names = [n.strip() for n in str(text).split(",")]
    if len(names) == 1 and names[0] in (*KERNELS, "auto"):
        return names[0]
    allowed = f"one of {', '.join(KERNELS)} or auto, or two or more of {', '.join(KERNELS)} separated by commas"
    bad = [n for n in names if n not in KERNELS]
    if len(names) == 1 or bad:
        raise ValueError(f"kernel {quoted(str(text), 80)}"
                         + (f" ({', '.join(quoted(b, 40) for b in bad)} is not a kernel)" if len(names) > 1 else "")
                         + f"; expected {allowed}")
    if len(set(names)) < len(names):
        raise ValueError(f"kernel {quoted(str(text), 80)} names a kernel twice; expected {allowed}")
    return ",".join(names)


def axis(asked: str | None) -> tuple[str, ...]:
    """The kernels of a kernel axis, in the order asked; () when one kernel (or auto) is asked."""
    names = tuple(n for n in str(asked or "").split(",") if n)
    return names if len(names) > 1 else ()


def framework_sees_gpu(backend: str) -> bool:
    """Whether the backend's framework sees a CUDA device from this process (where NVML says
    nothing): what `dsabench run` checks before it writes anything."""
    import warnings  # noqa: PLC0415

    try:
        with warnings.catch_warnings():  # an import's warnings (Paddle's "no ccache") are not the user's business
            warnings.simplefilter("ignore")
            if backend == "torch":
                import torch  # noqa: PLC0415

                return bool(torch.cuda.is_available())
            import paddle  # noqa: PLC0415

            return bool(paddle.is_compiled_with_cuda()) and paddle.device.cuda.device_count() > 0
    except Exception:  # noqa: BLE001 - a framework that does not import sees no GPU
        return False
