"""The memory chart: peak device memory a forward allocates above its inputs, per variant, and
the bytes the layout phase allocates (the contiguous copy of the cache)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from dsabench.present.charts.common import (
    MISSING_COLOR, MODE_COLORS, MODE_NAMES, VARIANT_COLORS, Chart, bar_label, cell_index, new_figure, grid_shape,
    hide_unused, add_legend, ok_modes, run_title, save_chart, status_mark, variant_axis, variants_of, config_labels,
    figures_source,
)  # fmt: skip
from dsabench.present.text import byte_unit, fmt_bytes


def memory_chart(df: pd.DataFrame, out_dir: Path, *, svg: bool = False) -> Chart:
    """Peak device memory one forward allocates above its inputs, per variant (eager and CUDA
    Graph), and the bytes the layout phase allocates (the contiguous copy of the cache)."""
    labels, note = config_labels(df)
    (modes, dropped), variants, configs = ok_modes(df), variants_of(df), list(labels)
    description = ("Peak device memory a forward allocates above its inputs, per variant, and the bytes the layout "
                   "phase allocates (non-zero where .contiguous() copies the cache).")  # fmt: skip
    title = f"Peak memory per forward ({run_title(df)})"
    if not df["peak_bytes"].notna().any():
        why = (f"no memory figures in this run ({run_title(df)}): memory is recorded only where the backend exposes "
               "a device allocator (CUDA)")  # fmt: skip
        fig, axes, _ = new_figure(1, 1, 8.0, 1.6, title, note, legend_rows=0)
        axes[0][0].text(0.5, 0.5, textwrap.fill(why, 90), ha="center", va="center", color=MISSING_COLOR)
        axes[0][0].set_axis_off()
        png, svg_path = save_chart(fig, out_dir, "memory", svg)
        return Chart("memory", "Peak memory per variant", png, svg_path, description, (why,))
    rows, cols = grid_shape(len(configs))
    fig, axes, legend_y = new_figure(rows, cols, 5.2, 2.9, title,
                                  note + "\npeak: allocator peak during one forward minus what was allocated before "
                                  "it; layout alloc: bytes allocated inside the layout phase"
                                  + (f"\n{dropped}" if dropped else ""))
    source = figures_source(df)
    series = [(f"peak, {MODE_NAMES[m]}" + (f" case (from {source})" if m else ""), "peak_bytes", m, MODE_COLORS[m], None)
              for m in modes]  # fmt: skip
    series.append(("layout alloc, eager", "layout_alloc_bytes", False, VARIANT_COLORS["tensor+view"], "xx"))
    width = 0.8 / len(series)
    cells = cell_index(df)
    for ax, cid in zip(axes.flat, configs):
        sub = df[df["config_id"] == cid]
        top = float(np.nanmax(sub[["peak_bytes", "layout_alloc_bytes"]].to_numpy(dtype=float), initial=0.0))
        unit, size = byte_unit(top)
        ymax = (top / size or 1.0) * 1.3
        ax.set_ylim(0, ymax)
        for i, variant in enumerate(variants):
            if all(cells.get((cid, variant, m)) is None for m in modes):
                status_mark(ax, i, "not run", horizontal=False, size=6.5)
                continue
            for k, (name, col, graph, color, hatch) in enumerate(series):
                x = i - 0.4 + width * (k + 0.5)
                row = cells.get((cid, variant, graph))
                if row is None or row["status"] != "ok" or row[col] != row[col]:
                    if k < len(modes):
                        status = "not run" if row is None else "no figure" if row["status"] == "ok" else row
                        status_mark(ax, x, status, horizontal=False, size=6.5)
                    continue
                v = row[col] / size
                ax.bar(x, v, width * 0.92, color=color, hatch=hatch, edgecolor="white" if hatch else None, linewidth=0)
                bar_label(ax, x, v, fmt_bytes(row[col]), rotate=True)
        ax.set_ylabel(f"{unit} per forward")
        ax.set_title(labels[cid])
        variant_axis(ax, variants, bottom=True)
        ax.grid(axis="y", alpha=0.3)
    hide_unused(axes, len(configs))
    handles = [Patch(facecolor=c, hatch=h, edgecolor="white" if h else None, label=n) for n, _, _, c, h in series]
    add_legend(fig, legend_y, handles, ncols=len(handles))
    png, svg_path = save_chart(fig, out_dir, "memory", svg)
    graph_note = (f"the CUDA Graph cases' memory figures come from {source}, not from the graph replay"
                  if True in modes else "")
    return Chart("memory", "Peak memory per variant", png, svg_path, description,
                 tuple(n for n in (graph_note, dropped) if n))
