"""The evidence's time per phase, case by case: the table behind the phases chart, which draws a
few configs only (charts.GRID_CONFIGS), so that every case's phase times are in the evidence.
The same figures as the chart: device kernel time per phase from the trace where the run has
device events, else the host time of each phase (charts.phases.phase_source)."""

from __future__ import annotations

import math

from dsabench.present.charts.common import figures_source
from dsabench.present.charts.phases import phase_source, phase_values
from dsabench.present.runset import RunSet
from dsabench.present.text import fmt_num, md_table, md_text
from dsabench.workload.phases import PHASE_NAMES
from dsabench.workload.variants import ALL_VARIANTS

HEADING = "## Time per phase per case"


def phases_section(rs: RunSet, labels: dict[str, str]) -> list[str]:
    """Every ok case's time per phase and their sum, ordered as the charts (config, mode, variant)."""
    df = rs.frame.df
    ok = df[df["status"] == "ok"]
    lines = [HEADING, ""]
    if ok.empty:
        return lines + ["No case ran.", ""]
    source = phase_source(df)
    prefix = "kernel_ms_" if source == "kernel" else "phase_ms_"
    phases = [p for p in PHASE_NAMES if f"{prefix}{p}" in ok.columns and ok[f"{prefix}{p}"].notna().any()]
    what = ("device kernel ms per forward that the profiler trace attributes to each phase" if source == "kernel" else
            "host ms per phase, the median over forwards (perf_counter around each phase, synchronized; this run's "
            "traces hold no device time by phase)")  # fmt: skip
    lines += [f"Per case, {what}; *total* is the sum of the phases. The phases chart draws a few configs; this "
              "table has every case that ran.", ""]  # fmt: skip
    if source == "host" and (ok["graph"] == True).any():  # noqa: E712 - a column of Python bools
        lines += [f"The CUDA Graph cases' phase times come from {md_text(figures_source(df))}, not from the graph "
                  "replay.", ""]  # fmt: skip
    rank = {cid: i for i, cid in enumerate(labels)}
    vrank = {v.name: i for i, v in enumerate(ALL_VARIANTS)}
    ok = ok.assign(_c=ok["config_id"].map(rank), _v=ok["variant"].map(vrank)).sort_values(["_c", "graph", "_v"])
    rows = []
    for r in ok.to_dict("records"):
        vals = dict(phase_values(r, prefix, phases))
        kernel = r.get("kernel_ms", math.nan)
        if vals:
            total = fmt_num(sum(vals.values()))
        elif source == "kernel" and isinstance(kernel, float) and math.isfinite(kernel):
            total = f"{fmt_num(kernel)} (graph replay, not split by phase)"
        else:
            total = "no phase times"
        rows.append([md_text(labels.get(r["config_id"], r["config_id"])), md_text(r["variant"]),
                     "graph" if r["graph"] else "eager", *(fmt_num(vals.get(p, math.nan)) for p in phases), total])
    lines += [f"<details><summary>per case ({len(rows)} cases that ran)</summary>", ""]
    lines += md_table(["config", "variant", "mode", *phases, "total"], rows, ["---"] * 3 + ["---:"] * (len(phases) + 1))
    return lines + ["", "</details>", ""]
