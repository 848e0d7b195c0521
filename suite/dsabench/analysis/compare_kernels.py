"""Kernel vs kernel inside one run: the same cases measured with two attention kernels.

A run made with a kernel axis (`dsabench run --kernel flashmla,triton,reference`) measured each
case with each kernel on the same inputs, the eager ones interleaved in one worker. Pairs are the
same case (and impl) with two kernels, judged by the gate (`compare.pair_rows`: eager pairs by
worker-process round, graph cases not). The ratio is cand / base of the whole forward's time, so
it holds every phase the kernels share (scale, write cache, layout, merge) besides the attention.
"""

from __future__ import annotations

from dsabench.analysis.compare import DEFAULT_THRESHOLD, Comparison, Threshold, _one_run, pair_rows, within_run
from dsabench.analysis.gate import check_threshold
from dsabench.analysis.stats import CONFIDENCE, N_BOOT, SEED
from dsabench.errors import InputError
from dsabench.store.frames import Frame
from dsabench.store.schema import record_key


def kernels_of(frame: Frame) -> list[str]:
    """The kernels of the run's kernel axis: in the order asked (manifest options.kernel), then any
    only the records name; empty for a run of one kernel."""
    run_id = _one_run(frame, "RUN")
    asked = str((frame.manifests[run_id].get("options") or {}).get("kernel") or "").split(",")
    axis = frame.df[frame.df["kernel_axis"].fillna(False).astype(bool)]
    found = [str(k) for k in axis["kernel"].dropna().unique()]
    return [k for k in asked if k in found] + [k for k in found if k not in asked]


def compare_kernels(
    frame: Frame,
    base_kernel: str | None = None,
    cand_kernel: str | None = None,
    *,
    threshold: Threshold = DEFAULT_THRESHOLD,
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int | None = SEED,
) -> Comparison:
    """Inside one run of a kernel axis, pair each case's records of two kernels and judge them
    (cand vs base). Without names: the first two kernels as the run asked for them (for
    `flashmla,triton,reference`, triton against flashmla)."""
    check_threshold(threshold, "compare")
    run_id = _one_run(frame, "RUN")
    kernels = kernels_of(frame)
    if len(kernels) < 2:
        raise InputError(f"--kernels: run {run_id!r} measured {len(kernels) or 'no'} kernel(s) side by side "
                         f"({', '.join(kernels) or 'it was not made with a kernel axis'}); expected a run of "
                         "`dsabench run --kernel A,B[,...]`")
    base = base_kernel or kernels[0]
    cand = cand_kernel or (kernels[1] if base != kernels[1] else kernels[0])
    for flag, name in (("--base-kernel", base), ("--cand-kernel", cand)):
        if name not in kernels:
            raise InputError(f"{flag} {name!r}: run {run_id!r} measured the kernels {', '.join(kernels)}; "
                             "expected one of them")
    if base == cand:
        raise InputError(f"--kernels: base and cand are both {base!r}; expected two different kernels")
    df = frame.df[frame.df["kernel_axis"].fillna(False).astype(bool)]

    def side(kernel: str) -> dict:
        return {record_key(r["case_id"], r.get("impl")): r for r in df[df["kernel"] == kernel].to_dict("records")}

    pairs = pair_rows(side(base), side(cand), threshold, confidence, n_boot, seed)
    return within_run(frame, run_id, "kernels", f"kernel {base}", f"kernel {cand}", pairs, threshold, confidence)
