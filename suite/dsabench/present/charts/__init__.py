"""Evidence charts over one loaded run: latency, speedup, copies, phases, memory (one module each,
what they share in `common`).

Pure presentation. Latency intervals come from `stats.summarize`, speedups and their intervals
from `compare.compare_variants` (passed in); the charts select columns of the frame and draw
them. A large run is drawn with at most MAX_CONFIGS configs per chart; `ChartSet.left_out`
names the others, and every chart's notes say so.

The copies and phases charts are grids of four panels per config (each mode, and the bytes or
the zoom beside it): they draw at most GRID_CONFIGS configs, a spread subset of the others'.
At twelve configs they were 48 panels each, 30 inches tall, most of a large run's report time
(issue 21: a year of nightlies, 222 cases), and a reader scrolled past rows that looked alike;
six rows keep the sweep's ends and middle on one screen and the pattern across configs visible.
Nothing is lost: the evidence tabulates every case's copies and syncs and its time per phase
(evidence_checks.copies_section, evidence_phases.phases_section), and each chart's note says
how many configs it draws and where the rest are. Both grids are drawn first, in separate forked
workers (store.forked), so the two cores finish together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping

# Before matplotlib is imported: it says at INFO when it builds its font cache ("generated new
# fontManager"), and where a framework set the root logger to INFO (Paddle does at import: bisect
# imports it to probe a commit, then draws) that line reached the user's stderr. Warnings still do.
logging.getLogger("matplotlib").setLevel(logging.WARNING)

import pandas as pd
from matplotlib import rc_context

from dsabench.analysis.compare import Comparison
from dsabench.present.charts.common import RC, Chart, config_labels, select_configs
from dsabench.present.charts.copies import copies_chart, dtod_explanation
from dsabench.present.charts.latency import latency_chart
from dsabench.present.charts.memory import memory_chart
from dsabench.present.charts.phases import phases_chart
from dsabench.present.charts.speedup import CopyBandwidth, copy_bandwidth, speedup_chart
from dsabench.store.forked import fork_map

# Configs drawn per chart: each config is a row (or panel) of every chart, and a figure with
# hundreds of rows is neither readable nor cheap to render (a 222-config nightly ran out of
# memory in savefig). 12 keeps a chart at PR-page size; the evidence tables keep every config.
MAX_CONFIGS = 12
# Charts of this many rows (cases x variants) or more are drawn in forked workers (store.forked):
# a nightly run's take about a minute, a smoke run's a few seconds, less than the forks are worth.
PARALLEL_MIN_ROWS = 48
# Configs drawn in the two four-panels-a-config grids (copies, phases): see the module docstring.
GRID_CONFIGS = 6
# The order of the charts in the evidence: the headline figures first.
CHART_ORDER = ("latency", "speedup", "copies", "phases", "memory")


@dataclass(frozen=True)
class ChartSet:
    """The charts written, and the config ids left out of them (empty when all were drawn)."""

    charts: tuple[Chart, ...]
    left_out: tuple[str, ...] = ()


def all_charts(df: pd.DataFrame, comparisons: Mapping[str, Comparison], out_dir: Path,
               copy_bandwidth_gbs: float | None = None, max_configs: int = MAX_CONFIGS,
               in_turn: Collection[str] = (), *, svg: bool = False) -> ChartSet:
    """Every evidence chart of one run into out_dir, as PNG (and SVG with svg); comparisons maps
    each variant name to its compare_variants result against baseline (the speedup chart's
    numbers); in_turn names the groups whose variants were timed in separate turns (the speedup
    chart says so)."""
    if df.empty:
        raise ValueError("charts: the frame has no cases")
    out_dir = Path(out_dir)
    kept, left_out = select_configs(df, max_configs)
    shown = df[df["config_id"].isin(kept)] if left_out else df
    in_grid, _ = select_configs(shown, min(GRID_CONFIGS, max_configs))
    grid = shown[shown["config_id"].isin(in_grid)] if len(in_grid) < len(kept) else shown
    # The costliest first, so that the two workers finish together (a pool hands out the next
    # chart to the first worker free): the two grids, then latency, memory, speedup.
    draw = {
        "copies": lambda: copies_chart(grid, out_dir, svg=svg),
        "phases": lambda: phases_chart(grid, out_dir, svg=svg),
        "latency": lambda: latency_chart(shown, out_dir, svg=svg),
        "memory": lambda: memory_chart(shown, out_dir, svg=svg),
        "speedup": lambda: speedup_chart(shown, comparisons, out_dir, copy_bandwidth_gbs, in_turn, svg=svg),
    }
    with rc_context(RC):  # drawing is CPU-bound matplotlib (a nightly run's charts: ~25 CPU s): 2 at a time
        jobs = list(draw.values())
        drawn = fork_map(lambda chart: chart(), jobs, 2) if len(shown) >= PARALLEL_MIN_ROWS else [d() for d in jobs]
    by_name = dict(zip(draw, drawn))
    charts = [by_name[name] for name in CHART_ORDER]
    total = len(kept) + len(left_out)
    notes = {name: (f"drawn for {len(kept)} of {total} configs (spread over the run's order); the evidence lists "
                    "the configs left out",) if left_out else () for name in CHART_ORDER}
    if len(in_grid) < len(kept):
        tables = {"copies": "copies and syncs", "phases": "time per phase"}
        for name, table in tables.items():
            notes[name] = (f"drawn for {len(in_grid)} of {total} configs (spread over the run's order; the panel "
                           f"titles name them); every case is in the evidence's per-case table of {table}",)
    charts = [Chart(c.name, c.title, c.png, c.svg, c.description, notes[c.name] + c.notes) for c in charts]
    return ChartSet(tuple(charts), tuple(left_out))


__all__ = [
    "GRID_CONFIGS", "MAX_CONFIGS", "Chart", "ChartSet", "CopyBandwidth", "all_charts", "config_labels", "copies_chart",
    "copy_bandwidth", "dtod_explanation", "latency_chart", "memory_chart", "phases_chart", "speedup_chart",
]  # fmt: skip
