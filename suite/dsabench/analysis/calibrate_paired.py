"""The paired gate measured on this machine: what `compare --impls` (and `--variants`) does with
an A/A pair and with a known slowdown, both timed in the same rounds of the same processes.

Input: the rows of `compare_impls` over runs made with `--impl mirror --impl mirror+inject=0
--impl mirror+inject=F ...`: per run, the A/A rows (mirror vs its uninjected twin) and, per F,
the rows of mirror vs the injected mirror. Each row was judged by the gate a CI uses for eager
cases, paired by process, so what this reports is what a paired comparison on this machine would
do: the host's slow mode falls on both sides of every round. What it is not: the cross-run gate
(`analysis.calibrate`), whose noise includes what changes between runs and processes.

The noise behind a paired row is the spread of its per-process log ratios (`Decision.noise`); the
smallest detectable slowdown follows from the rows' own standard error and degrees of freedom
(R - 1 where paired). A CUDA Graph case is timed in its own turn, not in rounds, so the gate judges
it unpaired (process levels, 2R - 2): its spread and detectable change are that gate's, as
`compare --impls` would judge it.
Detection is judged against the slowdown the workers measured (plain against delayed forwards in
one process, `bench/inject.measured_size`), as `calibrate` does. Pure functions over row dicts.
"""

from __future__ import annotations

import math
import statistics
from typing import Mapping, Sequence

from dsabench.analysis.calibrate import CaseCalibration, detectable
from dsabench.analysis.gate import Threshold

Rows = Sequence[Mapping]  # one run's compare_impls rows (table.to_dict("records"))


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
    rows' pooled standard error at their fewest degrees of freedom (`calibrate.detectable`: paired
    eager rows R - 1 over per-process ratios, unpaired graph rows 2R - 2 over process levels).
    run_to_run is NaN: a comparison within one run has no run term."""
    if not aa:
        raise ValueError("calibrate_paired: no A/A run")
    judged = [_judged(rows) for rows in aa]
    cases = sorted(set.intersection(*(set(j) for j in judged)))
    out = []
    for case in cases:
        rows = [j[case] for j in judged]
        spread = _pooled([float(r.get("noise", math.nan)) for r in rows])
        se = _pooled([float(r.get("se", math.nan)) for r in rows])
        dfs = [float(r["df"]) for r in rows if isinstance(r.get("df"), (int, float)) and math.isfinite(r["df"])]
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
            detectable(threshold, se, min(dfs) if dfs else math.nan), 0))
    return out
