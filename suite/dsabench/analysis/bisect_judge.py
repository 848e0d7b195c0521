"""One bisection step's run -> the gate's verdicts per case group (`GroupJudgement`s).

The run holds GOOD, BAD and the midpoint, measured interleaved per case group in one worker.
Every verdict comes from `compare_impls.compare_impls`, so from the cross-run gate that
`compare --impls` uses (`gate.decide`); nothing here computes a statistic. Re-judging a step is
`dsabench compare --impls STEP_RUN --base-impl GOOD --cand-impl MID`.
"""

from __future__ import annotations

import math

from dsabench.analysis.bisect_plan import GroupJudgement
from dsabench.analysis.compare_impls import compare_impls
from dsabench.store.frames import Frame


def _by_group(frame: Frame, base: str, cand: str, threshold: float) -> dict[str, dict]:
    table = compare_impls(frame, base, cand, threshold=threshold).table
    return {str(r["case"]): r for r in table.to_dict("records")}


def _ms(value) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def _status(row: dict | None) -> str:
    """The midpoint's record status in a pairing where it is cand ('missing' without a record)."""
    if row is None or not isinstance(row.get("cand_status"), str):
        return "missing"
    return row["cand_status"]


def judge_step(frame: Frame, good: str, bad: str, mid: str | None, threshold: float) -> tuple[GroupJudgement, ...]:
    """Per case group of the run: BAD vs GOOD, and the midpoint vs GOOD and vs BAD (labels as in
    the run's records, e.g. `fastdeploy:<sha12>`); groups in the order of the BAD vs GOOD table."""
    ends = _by_group(frame, good, bad, threshold)
    vs_good = _by_group(frame, good, mid, threshold) if mid else {}
    vs_bad = _by_group(frame, bad, mid, threshold) if mid else {}
    out = []
    for group in sorted(ends):
        e, g, b = ends[group], vs_good.get(group), vs_bad.get(group)
        out.append(GroupJudgement(
            group=group, ends=str(e["verdict"]),
            vs_good=str(g["verdict"]) if g else "", vs_bad=str(b["verdict"]) if b else "",
            mid_status=_status(g) if mid else "ok",
            ends_message=str(e["message"]), good_message=str(g["message"]) if g else "",
            bad_message=str(b["message"]) if b else "",
            good_ms=_ms(e["base_pooled_median_ms"]), bad_ms=_ms(e["cand_pooled_median_ms"]),
            mid_ms=_ms(g["cand_pooled_median_ms"]) if g else math.nan,
        ))  # fmt: skip
    return tuple(out)
