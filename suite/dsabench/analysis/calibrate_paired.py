"""The paired gate measured on this machine: what `compare --impls` (and `--variants`) does with
an A/A pair and with a known slowdown, both timed in the same rounds of the same processes.

Input: the rows of `compare_impls` over runs made with `--impl mirror --impl mirror+inject=0
--impl mirror+inject=F ...`: per run, the A/A rows (mirror vs its uninjected twin) and, per F,
the rows of mirror vs the injected mirror. Each row was judged by the gate a CI uses for eager
cases, paired by process, so what this reports is what a paired comparison on this machine would
do: the host's slow mode falls on both sides of every round. What it is not: the cross-run gate
(`analysis.calibrate`), whose noise includes what changes between runs and processes.

The noise behind a paired row is the spread of its per-process log ratios (`Decision.noise`); the
smallest detectable slowdown follows from it with the paired interval's R - 1 degrees of freedom.
Detection is judged against the slowdown the workers measured (plain against delayed forwards in
one process, `bench/inject.measured_size`), as `calibrate` does. Pure functions over row dicts.
"""

from __future__ import annotations

import math
import statistics
from typing import Mapping, Sequence

from dsabench.analysis.calibrate import POWER, CaseCalibration
from dsabench.analysis.defaults import AUTO, AUTO_FALSE_ALARM, AUTO_FLOOR
from dsabench.analysis.gate import Threshold
from dsabench.analysis.hierarchy import t_quantile

Rows = Sequence[Mapping]  # one run's compare_impls rows (table.to_dict("records"))


def paired_detectable(threshold: Threshold, ratio_spread: float, processes: int, power: float = POWER) -> float:
    """Slowdown called `slower` with probability `power` (approximately) by a paired comparison of
    `processes` processes whose per-process log ratios spread `ratio_spread` (sd): the standard
    error is ratio_spread / sqrt(processes), with processes - 1 degrees of freedom. With AUTO the
    change must also be significant at AUTO_FALSE_ALARM and clear AUTO_FLOOR."""
    if processes < 2 or not math.isfinite(ratio_spread):
        return math.nan
    df = processes - 1
    se = ratio_spread / math.sqrt(processes)
    if threshold == AUTO:
        return max((1 + AUTO_FLOOR) * math.exp((t_quantile(0.975, df) + t_quantile(power, df)) * se),
                   math.exp((t_quantile(1 - AUTO_FALSE_ALARM / 2, df) + t_quantile(power, df)) * se)) - 1
    return (1 + float(threshold)) * math.exp((t_quantile(0.975, df) + t_quantile(power, df)) * se) - 1


def _judged(rows: Rows) -> dict[str, Mapping]:
    """Rows with both sides measured (a failed or one-sided case is no comparison of the gate)."""
    return {str(r["case"]): r for r in rows if r.get("base_status") == "ok" and r.get("cand_status") == "ok"}


def _pooled(spreads: Sequence[float]) -> float:
    vals = [s for s in spreads if isinstance(s, (int, float)) and math.isfinite(s)]
    return math.sqrt(sum(s * s for s in vals) / len(vals)) if vals else math.nan


def calibrate_paired(aa: Sequence[Rows], injected: Mapping[float, Sequence[Rows]], threshold: Threshold, *,
                     sizes: Mapping[float, Mapping[str, float]] | None = None) -> list[CaseCalibration]:
    """Per case present in every A/A run: false verdicts and noisy rows over the A/A pairs (one a
    run), detection of each injected size (slower over the pairs), the measured size (`sizes`: per
    fraction, per case id of the injected side), and the smallest detectable slowdown from the A/A
    rows' pooled per-process ratio spread. run_to_run is NaN: a paired comparison has no run term."""
    if not aa:
        raise ValueError("calibrate_paired: no A/A run")
    judged = [_judged(rows) for rows in aa]
    cases = sorted(set.intersection(*(set(j) for j in judged)))
    out = []
    for case in cases:
        rows = [j[case] for j in judged]
        spread = _pooled([float(r.get("noise", math.nan)) for r in rows])
        counts = [int(r["processes"]) for r in rows
                  if isinstance(r.get("processes"), (int, float)) and math.isfinite(r["processes"])]
        processes = min(counts) if counts else 0
        detected, measured, source = {}, {}, {}
        for frac, runs in sorted(injected.items()):
            hits = [j[case] for j in map(_judged, runs) if case in j]
            detected[frac] = (sum(r["verdict"] == "slower" for r in hits), len(hits))
            found = [(sizes or {}).get(frac, {}).get(str(r.get("cand_case_id"))) for r in hits]
            found = [v for v in found if isinstance(v, (int, float)) and math.isfinite(v)]
            if found:
                measured[frac], source[frac] = float(statistics.median(found)), "worker"
        out.append(CaseCalibration(
            case, math.nan, spread, len(rows), sum(r["verdict"] in ("slower", "faster") for r in rows),
            sum(bool(r.get("noisy")) for r in rows), detected, measured, {}, source,
            paired_detectable(threshold, spread, processes), 0))
    return out
