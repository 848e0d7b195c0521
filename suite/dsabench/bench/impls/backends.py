"""The worker's side of impls: one Backend per impl, and what each record says about its impl.

The mirror's backend is the registry's (`--backend`); a FastDeploy impl's is the plug-in's
FastDeployBackend over the commit loaded in this worker process (its worktree was made by the CLI
process and lives for the run). Loading happens here, not in the CLI, because `ops: fastdeploy`
depends on what imports on the worker's device.
"""

from __future__ import annotations

import re

from dsabench.bench.backends.base import Backend
from dsabench.bench.impls.plan import MIRROR_LABEL, MIRROR_OPS_REASON, MIRROR_RUN, ImplRun


def build(backend_name: str, device: str | None, impls: tuple[ImplRun, ...],
          kernels: tuple[str, ...] = ()) -> dict[tuple[str, str], Backend]:
    """(label, kernel) -> Backend for every impl of the run (the mirror alone when `impls` is
    empty) and every kernel of a kernel axis (kernel '' without one: the run's one kernel, set
    later by use_kernel). A commit is loaded once; its kernels' backends share what was loaded."""
    from dsabench.bench.backends.registry import get_backend  # noqa: PLC0415

    out: dict[tuple[str, str], Backend] = {}
    for impl in impls or (MIRROR_RUN,):
        loaded = None
        for kernel in kernels or ("",):
            if impl.is_mirror:
                out[(impl.label, kernel)] = get_backend(backend_name, device)
                continue
            from dsabench.bench.impls.fastdeploy.backend import FastDeployBackend  # noqa: PLC0415
            from dsabench.bench.impls.fastdeploy.loader import load  # noqa: PLC0415

            loaded = loaded or load(impl.checkout)
            out[(impl.label, kernel)] = FastDeployBackend(loaded, device)
    return out


def by_label(impls: tuple[ImplRun, ...]) -> dict[str, ImplRun]:
    return {i.label: i for i in impls or (MIRROR_RUN,)}


def describe(impl: ImplRun, backend: Backend, state=None) -> dict:
    """A record's `impl_info`: ops and their reason, and for a commit its sha, subject, dirty flag,
    modules (which were stand-ins), the variant its source implies, and what the case's call read."""
    if impl.is_mirror:
        injected = {} if impl.inject is None else {"inject": impl.inject}
        return {"ops": "dsabench", "ops_reason": MIRROR_OPS_REASON, **injected}
    info = {**backend.loaded.describe(), "variant": impl.variant.name, "variant_from": impl.variant_from}
    if state is not None and hasattr(state, "config_reads"):
        info["config_reads"] = list(state.config_reads)
        info["compressed_kv_dtype"] = str(state.args.compressed_kv.dtype).replace("paddle.", "")
    return info


def trace_suffix(label: str) -> str:
    """'' for the mirror, else a file-name-safe '.<label>' so two impls' traces of a case differ."""
    return "" if label == MIRROR_LABEL else "." + re.sub(r"[^A-Za-z0-9_.-]", "-", label)
