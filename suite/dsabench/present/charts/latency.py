"""The latency chart: median per forward with the 95% CI of the median, per case and variant."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from dsabench.analysis.stats import summarize
from dsabench.present.charts.common import (
    MODE_COLORS, MODE_NAMES, Chart, cell_index, new_figure, grid_shape, hide_unused, add_legend, ok_modes, run_title,
    samples_of, save_chart, status_mark, variants_of, config_labels,
)  # fmt: skip


def latency_chart(df: pd.DataFrame, out_dir: Path, *, svg: bool = False) -> Chart:
    """Median latency per case, one panel per config, variants down the side, eager and CUDA
    Graph bars side by side, each with the 95% CI of the median (stats.summarize). A case that
    did not produce samples says why where its bar would be: an expected finding in grey (the
    tensor scale's failed capture), a failure in red. A mode no case of which ran (CUDA Graph on
    a CPU) is left out and named in the footnote."""
    labels, note = config_labels(df)
    configs = list(labels)
    modes, dropped = ok_modes(df)
    rows, cols = grid_shape(len(configs))
    nvar = max(1, max((len(variants_of(df[df["config_id"] == c])) for c in configs), default=1))
    fig, axes, legend_y = new_figure(rows, cols, 5.6, 0.5 + 0.42 * nvar * (len(modes) + 0.6) / 2 + 0.9,
                        f"Latency per forward, {' vs '.join(MODE_NAMES[m] for m in modes)} ({run_title(df)})",
                        note + "\nbars: median of the per-iteration samples; whiskers: 95% CI of the median "
                        "(binomial order statistics, stats.summarize)" + (f"\n{dropped}" if dropped else ""))
    height = 0.8 / len(modes)
    cells = cell_index(df)
    for ax, cid in zip(axes.flat, configs):
        sub = df[df["config_id"] == cid]
        variants = variants_of(sub)
        right = 0.0
        marks = []
        for i, variant in enumerate(variants):
            for j, graph in enumerate(modes):
                y = i - 0.4 + height * (j + 0.5)
                row = cells.get((cid, variant, graph))
                samples = samples_of(row) if row else []
                if row is None or row["status"] != "ok" or not samples:
                    marks.append((y, "not run" if row is None else "no samples" if row["status"] == "ok" else row))
                    continue
                s = summarize(samples)
                ax.barh(y, s.median, height=height * 0.9, color=MODE_COLORS[graph], edgecolor="none")
                ax.errorbar(s.median, y, xerr=[[s.median - s.ci_low], [s.ci_high - s.median]], fmt="none",
                            ecolor="black", elinewidth=0.9, capsize=2.5)  # fmt: skip
                ax.text(s.ci_high, y, f" {s.median:.3g}", va="center", ha="left", fontsize=7)
                right = max(right, s.ci_high)
        right = right or 1.0
        ax.set_xlim(0, right * 1.3)
        for y, status in marks:
            status_mark(ax, y, status, horizontal=True)
        ax.set_yticks(range(len(variants)), variants)
        ax.set_ylim(len(variants) - 0.5, -0.5)
        ax.set_title(labels[cid])
        ax.set_xlabel("median latency per forward (ms)")
        ax.grid(axis="x", alpha=0.3)
    hide_unused(axes, len(configs))
    handles = [Patch(color=MODE_COLORS[m], label=MODE_NAMES[m]) for m in modes]
    handles.append(Line2D([], [], color="black", marker="|", linestyle="-", markersize=6, label="95% CI of the median"))
    add_legend(fig, legend_y, handles, ncols=len(handles))
    png, svg_path = save_chart(fig, out_dir, "latency", svg)
    return Chart("latency", "Latency per case and variant", png, svg_path,
                 "Median latency per forward for every case, eager and CUDA Graph side by side, with the 95% CI "
                 "of the median; a case without samples says why: an expected finding of the case in grey "
                 "(e.g. the tensor scale's failed capture), a failure in red.", (dropped,) if dropped else ())
