"""Cases a comparison could not judge that may hide a material slowdown: what `compare
--fail-on-regression` exits 4 on when nothing is slower (issue 19).

A case gets no verdict (`undecided`) when its interval crosses the band (noisy or not), when one
process a side measured no spread between processes, when it had too few samples, or when the two
runs' hosts differed (`host_changed`). Exit 0 there would tell an unattended CI "no regression"
where the gate could not tell. Such a case counts when its interval's upper end allows a slowdown
at the threshold's slower edge or beyond (`slowdown_edge`; with `--threshold auto` the default
threshold's, since a quiet case's own band of 0.3% is no material slowdown); one with no interval
(too few samples) allows any. A case whose whole interval lies below that edge rules a material
slowdown out and does not count: a quiet A/A passes. A withheld case (`host_changed`) counts
whatever its interval, as before: an interval over two hosts bounds nothing of the code. So does a
`not_comparable` case (the sides timed with different clocks, or one with no timing samples): it has
no interval, so it rules nothing out. So does a case with one process a side: its interval is one
process's precision, while the H200's eager processes differ by 11-20% from one another, so "below
the edge" there says nothing of the next process; the gate calls no change from it, and by the same
token no pass (its entry has no interval, ci_high NaN). So does a case only in BASE that CAND planned
and holds no record of (`incomplete`, `analysis.unmeasured`: killed, out of time, its shard never
gathered): it was meant to be measured and was not; within one run, so does a run that planned cases
neither side recorded. A case only in BASE that CAND never planned (its filter, its shard, another
preset) was left out on purpose and does not count, unless no case at all was measured on both
sides (`nothing_compared`): a gate that judged nothing has shown nothing.

What would judge one: more worker processes, sized as `calibrate.smallest_detectable` sizes a
detectable change (t quantiles of the interval's degrees of freedom, power `calibrate.POWER`),
turned around: the fewest processes a side at which the case's standard error, shrinking as
1 / sqrt(processes), would put its interval clear of that edge if the true change were the one it
measured. An estimate from one comparison's spread, not a promise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dsabench.analysis.calibrate import POWER
from dsabench.analysis.compare import Comparison, Reason, Verdict
from dsabench.analysis.defaults import AUTO, DEFAULT_THRESHOLD
from dsabench.analysis.gate import Threshold
from dsabench.analysis.hierarchy import t_quantile

# Beyond this many worker processes a side, more processes is no practical answer: say so and
# point at comparing within one run, or --history.
MOST_PROCESSES = 32

# What stopped the verdict.
KINDS = ("noisy", "crosses", "one_process", "too_few_samples", "host_changed", "not_comparable", "incomplete",
         "nothing_compared")


@dataclass(frozen=True)
class Unjudged:
    """One case without a verdict whose interval allows a material slowdown.

    ci_high: the largest ratio cand / base its interval allows (NaN: no interval, any); spread: the
    case's own relative spread (between processes, or per-process ratios where paired); processes:
    the fewer processes of the two sides; repeats: about how many processes a side would judge it
    (None: unknown, or more than MOST_PROCESSES)."""

    case: str
    kind: str  # one of KINDS
    ratio: float
    ci_high: float
    spread: float
    processes: int
    repeats: int | None


def slowdown_edge(threshold: Threshold) -> float:
    """The ratio from which a slowdown is material: the threshold's slower edge, 1 + threshold
    (`gate.edges`); with AUTO the default threshold's."""
    return 1.0 + (DEFAULT_THRESHOLD if threshold == AUTO else float(threshold))


def processes_to_judge(ratio: float, se: float, df: float, processes: int, edge: float, confidence: float,
                       power: float = POWER) -> int | None:
    """Fewest processes a side (more than `processes`) at which an interval of this standard error
    and degrees of freedom, scaled to that many processes, would clear `edge` (or its mirror
    1 / edge) with probability `power` were the true ratio the one measured; None where the
    interval says nothing of processes, or past MOST_PROCESSES."""
    if not (processes >= 2 and se > 0 and df > 0 and ratio > 0) or not math.isfinite(se * df):
        return None
    margin = abs(abs(math.log(ratio)) - math.log(edge))
    if margin == 0:
        return None
    per_process = df / (processes - 1)  # paired sides: 1 (df R - 1); unpaired: 2 (df 2R - 2)
    for n in range(processes + 1, MOST_PROCESSES + 1):
        d = per_process * (n - 1)
        if (t_quantile(0.5 + confidence / 2, d) + t_quantile(power, d)) * se * math.sqrt(processes / n) <= margin:
            return n
    return None


def _kind(row) -> str:
    reason = row["reason"]
    if reason == Reason.CAND_INCOMPLETE.value:
        return "incomplete"
    if row["verdict"] == Verdict.NOT_COMPARABLE.value:
        return "not_comparable"
    if reason == Reason.HOST_CHANGED.value:
        return "host_changed"
    if reason == Reason.WITHIN_RUN_ONLY.value:
        return "one_process"
    if reason == Reason.TOO_FEW_SAMPLES.value:
        return "too_few_samples"
    noisy = row.get("noisy")
    return "noisy" if noisy == noisy and bool(noisy) else "crosses"  # NaN (a row never judged) is not noisy


def unjudged(result: Comparison) -> tuple[Unjudged, ...]:
    """The undecided cases whose interval allows a slowdown at `slowdown_edge` or beyond, and every
    withheld, not comparable (a different clock, or no samples on a side), one-process-a-side or
    unmeasured-in-an-incomplete-CAND one (the last three: no interval); the largest slowdown allowed
    first (no interval: first of all)."""
    t = result.table
    if not len(t) and not result.unmeasured:
        return ()
    edge = slowdown_edge(result.threshold)
    out = []
    no_verdict = t["verdict"].isin((Verdict.UNDECIDED.value, Verdict.NOT_COMPARABLE.value)) | (
        t["reason"] == Reason.CAND_INCOMPLETE.value)
    for row in t[no_verdict].to_dict("records"):
        high, kind = float(row["ci_high"]), _kind(row)
        if kind == "one_process":
            high = math.nan  # one process's precision, not an interval over processes (module docstring)
        if high < edge and kind != "host_changed":  # NaN (no interval) is never below: it rules nothing out
            continue
        processes = int(row["processes"]) if row["processes"] == row["processes"] else 0
        repeats = None
        if kind in ("noisy", "crosses"):
            repeats = processes_to_judge(float(row["ratio"]), float(row.get("se", math.nan)),
                                         float(row.get("df", math.nan)), processes, edge, result.confidence)
        out.append(Unjudged(str(row["case"]), kind, float(row["ratio"]), high, float(row["noise"]), processes,
                            repeats))
    one_sided = t["verdict"].isin((Verdict.NEW.value, Verdict.MISSING.value))
    if len(t) and one_sided.all() and (t["verdict"] == Verdict.MISSING.value).any():  # BASE's cases, none in CAND
        out.append(Unjudged("no case measured on both sides", "nothing_compared", math.nan, math.nan, math.nan, 0,
                            None))
    if result.unmeasured and not any(u.kind == "incomplete" for u in out):  # within one run: groups neither side reached
        out.append(Unjudged("cases the run planned and holds no record of", "incomplete", math.nan, math.nan,
                            math.nan, 0, None))
    return tuple(sorted(out, key=lambda u: -math.inf if math.isnan(u.ci_high) else -u.ci_high))
