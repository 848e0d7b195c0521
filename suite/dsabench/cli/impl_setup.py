"""`--impl` / `[preset] impl` -> the run's impls, validated before anything is written.

Each FastDeploy impl is checked out here, in the CLI process, for the whole run (its `git
worktree` is removed when the run ends, also when it fails), and loaded once with the suite's ops
to check its layout (missing import, class, method or signature: one line, exit 2) and to read the
variant its `forward_mixed` spells. Workers load it again on their device, where FastDeploy's own
ops may import.
"""

from __future__ import annotations

import inspect
from contextlib import ExitStack
from pathlib import Path

from dsabench.bench.impls import parse_impl
from dsabench.bench.impls.plan import MIRROR_RUN, ImplRun, checkout_label, detect_variant
from dsabench.errors import InputError


def _one(text: str, where: str, base_dir: Path | None, backend: str, stack: ExitStack) -> ImplRun:
    spec = parse_impl(text, where)
    if spec.kind == "mirror":
        return MIRROR_RUN if spec.inject is None else ImplRun(spec.label, spec.label, inject=spec.inject)
    if backend != "paddle":
        raise InputError(f"{where}: impl {spec.label!r} runs FastDeploy's Paddle code; expected --backend paddle "
                         f"(got {backend!r})")
    from dsabench.bench.backends.registry import quiet_paddle_import  # noqa: PLC0415

    quiet_paddle_import()  # the loader imports Paddle in this process (bisect's probe, run's check of its commits)
    from dsabench.bench.impls.fastdeploy.checkout import checkout  # noqa: PLC0415
    from dsabench.bench.impls.fastdeploy.loader import load  # noqa: PLC0415

    path = Path(spec.path).expanduser()
    path = str((base_dir / path if base_dir is not None and not path.is_absolute() else path).absolute())
    co = stack.enter_context(checkout(path, spec.commit))
    label = f"fastdeploy:{path}" + (f"@{spec.commit}" if spec.commit else "")
    loaded = load(co, ops="dsabench")  # UnsupportedLayout (an InputError) names what is missing
    variant, why = detect_variant(inspect.getsource(loaded.cls.forward_mixed), label)
    return ImplRun(checkout_label(co.sha, co.dirty, path), label, co, variant, why, co.describe())


def resolve(texts: list[str] | tuple[str, ...], where: str, base_dir: Path | None, backend: str,
            stack: ExitStack) -> tuple[ImplRun, ...]:
    """The run's impls in the order given (the mirror alone when none is given)."""
    out: list[ImplRun] = []
    for text in texts or ("mirror",):
        impl = _one(text, where, base_dir, backend, stack)
        twin = next((o for o in out if o.label == impl.label), None)
        if twin is not None:
            raise InputError(f"{where}: impl {text!r} is {impl.label}, the same as {twin.spec!r}; expected each impl "
                             "once (a commit measured twice in one run would share its records' key)")
        out.append(impl)
    return tuple(out)


def file_impls(sset, backend: str, stack: ExitStack) -> tuple[ImplRun, ...]:
    """The impls of a scenario file's [preset] impl, checked as `run FILE` checks them (relative
    paths from the file's directory): `run` and `scenarios show` refuse the same files."""
    return resolve(sset.impls, f"{sset.path}: [preset]: key 'impl'", sset.path.parent, backend, stack)


def manifest_entry(impl: ImplRun) -> dict:
    """What the manifest keeps of an impl: enough to name it and to resume the run with it."""
    entry = {"label": impl.label, "spec": impl.spec}
    if not impl.is_mirror:
        entry.update(impl.info, variant=impl.variant.name, variant_from=impl.variant_from)
        entry.pop("worktree", None)
    return entry


def resume(entries: list[dict], backend: str, stack: ExitStack, run_dir: Path) -> tuple[ImplRun, ...]:
    """The impls of a run being resumed: the same specs must still name the same commits."""
    if not entries:
        return (MIRROR_RUN,)
    impls = resolve([e["spec"] for e in entries], f"--resume {run_dir}", None, backend, stack)
    for impl, entry in zip(impls, entries):
        if impl.label != entry["label"]:
            raise InputError(f"--resume {run_dir}: impl {entry['spec']!r} is now {impl.label}, but the run measured "
                             f"{entry['label']}; start a new run")
    return impls
