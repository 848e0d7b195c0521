"""The phase chart: time per phase (scale, slot_mapping, write_cache, layout, decode, prefill,
merge) stacked per variant, with a zoom on the small phases PR #7253 touches."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import pandas as pd
from matplotlib.patches import Patch

from dsabench.present.charts.common import (
    MODE_NAMES, PHASE_COLORS, UNATTRIBUTED_COLOR, Chart, cell_index, new_figure, add_legend, ok_modes, run_title,
    save_chart,
    status_mark, variant_axis, variants_of, config_labels, figures_source,
)  # fmt: skip
from dsabench.workload.phases import PHASE_NAMES


def phase_source(df: pd.DataFrame) -> str:
    """'kernel' when the trace attributed device time to phases (a GPU run), else 'host'."""
    cols = [f"kernel_ms_{p}" for p in PHASE_NAMES if f"kernel_ms_{p}" in df.columns]
    if cols and (df[cols].fillna(0) > 0).any().any():
        return "kernel"
    return "host"


# Phases that carry the attention itself; the zoom panels leave them out so that the small
# phases PR #7253 touches (scale, layout) are visible next to them.
BIG_PHASES = ("decode", "prefill")


def phase_values(row: dict, prefix: str, phases: Sequence[str]) -> list[tuple[str, float]]:
    vals = [(p, row.get(f"{prefix}{p}", math.nan)) for p in phases]
    return [(p, float(v)) for p, v in vals if isinstance(v, (int, float)) and v == v]


def phases_chart(df: pd.DataFrame, out_dir: Path, *, svg: bool = False) -> Chart:
    """Time per phase stacked per variant: device kernel time attributed to each phase by the
    trace (phase_kernel_ms) where the run has device events, else the host time of each phase
    (median of the record's phases_ms). Beside each mode's panel, a zoom without decode and
    prefill. Graph replays are not split into phases by the trace; their kernel time shows as
    one grey bar (and they get no zoom panel)."""
    labels, note = config_labels(df)
    (modes, dropped), variants, configs = ok_modes(df), variants_of(df), list(labels)
    source = phase_source(df)
    prefix = "kernel_ms_" if source == "kernel" else "phase_ms_"
    ylabel = ("device kernel ms per forward\n(profiler trace, by phase)" if source == "kernel"
              else "host ms per phase\n(median over forwards)")  # fmt: skip
    # Host phase times of a graph case are timed around forwards that are not the replay.
    graph_source = figures_source(df) if source == "host" else "the graph replay's trace"
    what = ("device kernel time per phase from the profiler trace" if source == "kernel"
            else "host time per phase (perf_counter around each phase, synchronized; no device trace in this run)")
    small = [p for p in PHASE_NAMES if p not in BIG_PHASES]
    # (mode, zoom) columns: a zoom only for a mode whose cases have per-phase figures.
    columns = []
    for graph in modes:
        columns.append((graph, False))
        rows = df[(df["graph"] == graph) & (df["status"] == "ok")].to_dict("records")
        if any(phase_values(r, prefix, small) for r in rows):
            columns.append((graph, True))
    fig, axes, legend_y = new_figure(len(configs), len(columns), 4.6, 2.5, f"Time per phase ({run_title(df)})",
                                  note + f"\n{what}; the number above a bar is its total; zoom panels leave out "
                                  f"{' and '.join(BIG_PHASES)}" + (f"\n{dropped}" if dropped else ""))
    used: set[str] = set()
    cells = cell_index(df)
    unattributed = False
    for r, cid in enumerate(configs):
        for c, (graph, zoom) in enumerate(columns):
            ax = axes[r][c]
            top = 0.0
            marks = []
            for i, variant in enumerate(variants):
                row = cells.get((cid, variant, graph))
                if row is None or row["status"] != "ok":
                    marks.append((i, "not run" if row is None else row))
                    continue
                vals = phase_values(row, prefix, small if zoom else PHASE_NAMES)
                kernel = row.get("kernel_ms", math.nan)
                if not phase_values(row, prefix, PHASE_NAMES) and source == "kernel" and kernel == kernel:
                    if zoom:
                        marks.append((i, "not split"))
                        continue
                    ax.bar(i, kernel, 0.6, color=UNATTRIBUTED_COLOR, hatch="..", edgecolor="white", linewidth=0)
                    unattributed, total = True, kernel
                elif not vals:
                    marks.append((i, "no phase times"))
                    continue
                else:
                    bottom = 0.0
                    for p, v in vals:
                        ax.bar(i, v, 0.6, bottom=bottom, color=PHASE_COLORS[p])
                        bottom += v
                        used.add(p)
                    total = bottom
                ax.text(i, total, f"{total:.3g}", ha="center", va="bottom", fontsize=7)
                top = max(top, total)
            ax.set_ylim(0, (top or 1.0) * 1.25)
            for i, status in marks:
                status_mark(ax, i, status, horizontal=False, size=7)
            ax.set_ylabel(ylabel)
            mode = MODE_NAMES[graph] + (f" case, from {graph_source}" if graph and source == "host" else "")
            ax.set_title(f"{labels[cid]}, {mode}" + (": zoom" if zoom else ""), fontsize=8.5)
            variant_axis(ax, variants, bottom=r == len(configs) - 1)
            ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=PHASE_COLORS[p], label=p) for p in PHASE_NAMES if p in used]
    if unattributed:
        handles.append(Patch(facecolor=UNATTRIBUTED_COLOR, hatch="..", edgecolor="white",
                             label="graph replay (trace does not split it by phase)"))  # fmt: skip
    if handles:
        add_legend(fig, legend_y, handles, ncols=min(8, len(handles)))
    png, svg_path = save_chart(fig, out_dir, "phases", svg)
    notes = (f"phase times are {what}",) + ((dropped,) if dropped else ())
    if source == "host" and True in modes:
        notes += (f"the CUDA Graph cases' phase times come from {graph_source}, not from the graph replay "
                  "(a replay cannot be split by phase on the host)",)
    return Chart("phases", "Time per phase", png, svg_path,
                 "Per-phase time (scale, slot_mapping, write_cache, layout, decode, prefill, merge) stacked per "
                 "variant, eager and CUDA Graph, with a zoom on the phases other than decode and prefill.",
                 notes)  # fmt: skip
