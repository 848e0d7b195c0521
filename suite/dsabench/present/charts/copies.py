"""The copies chart: memcpy count and bytes by direction and host sync calls per forward, from
the profiler trace, and what the device-to-device copies are (`dtod_explanation`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from dsabench.present.charts.common import (
    DIRECTIONS, MISSING_COLOR, MODE_NAMES, SYNC_COLOR, Chart, bar_label, cell_index, new_figure, fmt_count, add_legend,
    no_device_events, ok_modes, run_title, save_chart, status_mark, variant_axis, variants_of, config_labels,
)  # fmt: skip
from dsabench.present.text import fmt_bytes
from dsabench.workload.dims import DEFAULT_DIMS


def dtod_explanation(df: pd.DataFrame) -> str | None:
    """What the device-to-device copy of every variant is, when the run shows it, else None.

    Found in the committed H100 traces: the one DtoD memcpy of a decode forward is launched
    inside the `decode` phase and moves batch x top-k x 512 B (32 MiB at batch 32, 64 MiB at
    batch 64, top-k 2048): the torch backend's decode gathers the top-k cache records and makes
    their fp8 part contiguous (`gathered[:, :512].contiguous()`, a strided 2-D copy). It is part
    of the forward, the same in every variant, and neither a host transfer nor the layout copy
    #7253 removes. The check is made on this run's own records, decode cases only.
    """
    ok = df[(df["status"] == "ok") & (df["trace_iterations"] > 0) & (df["phase"] == "decode") & (df["dtod_count"] > 0)]
    if ok.empty:
        return None
    gather = ok["batch"] * ok["topk"] * DEFAULT_DIMS.kv_lora_rank
    match = ok[ok["dtod_bytes"] == gather]
    if match.empty:
        return None
    sizes = " / ".join(fmt_bytes(v) for v in sorted(set(match["dtod_bytes"])))
    return (f"DtoD ({sizes}) in {len(match)} of {len(ok)} traced decode cases with a DtoD copy is batch x top-k x "
            f"{DEFAULT_DIMS.kv_lora_rank} B: the decode phase's copy of the fp8 part of the gathered top-k cache "
            "records into a contiguous buffer (torch: gathered[:, :512].contiguous()); it is inside the forward, "
            "the same in every variant, and not a host transfer or the layout copy")


def copies_chart(df: pd.DataFrame, out_dir: Path, *, svg: bool = False) -> Chart:
    """Per iteration, from the trace of the profiled pass: memcpy count by direction and host
    sync calls (left panel of each mode), memcpy bytes by direction (right panel, log scale,
    the same range in every panel)."""
    labels, note = config_labels(df)
    description = ("Per forward, from the profiler trace: memcpy count and bytes by direction (HtoD, DtoH, DtoD) and "
                   "host synchronization calls, for every variant of each config drawn.")  # fmt: skip
    if no_device_events(df):
        why = (f"no device events in this run's traces ({run_title(df)}): memcpy and sync counts are device-side "
               "figures, so there is nothing to draw")  # fmt: skip
        fig, axes, _ = new_figure(1, 1, 8.0, 1.6, f"Host-device copies and syncs per iteration ({run_title(df)})",
                               note, legend_rows=0)  # fmt: skip
        axes[0][0].text(0.5, 0.5, textwrap.fill(why, 90), ha="center", va="center", color=MISSING_COLOR)
        axes[0][0].set_axis_off()
        png, svg_path = save_chart(fig, out_dir, "copies", svg)
        return Chart("copies", "Copies and syncs per iteration", png, svg_path, description, (why,))
    (modes, dropped), variants, configs = ok_modes(df), variants_of(df), list(labels)
    dtod = dtod_explanation(df)
    fig, axes, legend_y = new_figure(len(configs), 2 * len(modes), 4.4, 2.4,
                                  f"Host-device copies and syncs per iteration ({run_title(df)})",
                                  note + "\nfrom the framework profiler trace of the profiled pass, per forward; "
                                  "a case without a trace shows its status" + (f"\n{dtod}" if dtod else "")
                                  + (f"\n{dropped}" if dropped else ""))
    width = 0.8 / (len(DIRECTIONS) + 1)
    byte_cols = [f"{col}_bytes" for _, col, _ in DIRECTIONS]
    ok = df[df["status"] == "ok"]
    top_b = float(np.nanmax(ok[byte_cols].to_numpy(dtype=float), initial=0.0)) if len(ok) else 0.0
    top_n = float(np.nanmax(ok[[f"{c}_count" for _, c, _ in DIRECTIONS] + ["sync_calls"]].to_numpy(dtype=float),
                            initial=1.0)) if len(ok) else 1.0  # fmt: skip
    b_lo, b_hi = 0.5, max(top_b, 1.0) * 8
    cells = cell_index(df)
    for r, cid in enumerate(configs):
        for m, graph in enumerate(modes):
            ax_n, ax_b = axes[r][2 * m], axes[r][2 * m + 1]
            ax_n.set_ylim(0, max(top_n, 1.0) * 1.3 + 0.2)
            if top_b > 0:
                ax_b.set_yscale("log")
                ax_b.set_ylim(b_lo, b_hi)
                ax_b.yaxis.set_major_locator(LogLocator(base=1024))
                ax_b.yaxis.set_minor_locator(NullLocator())  # base-10 minor ticks between powers of 1024 mislead
                ax_b.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_bytes(v)))
            any_bytes, any_traced = False, False
            for i, variant in enumerate(variants):
                row = cells.get((cid, variant, graph))
                if row is None or row["status"] != "ok" or not (row["trace_iterations"] > 0):
                    status = "not run" if row is None else ("no trace" if row["status"] == "ok" else row)
                    status_mark(ax_n, i, status, horizontal=False, size=7)
                    status_mark(ax_b, i, status, horizontal=False, size=7)
                    continue
                any_traced = True
                for d, (name, col, color) in enumerate(DIRECTIONS):
                    x = i - 0.4 + width * (d + 0.5)
                    n, b = row[f"{col}_count"], row[f"{col}_bytes"]
                    ax_n.bar(x, n, width * 0.92, color=color)
                    bar_label(ax_n, x, n, fmt_count(n))
                    if b > 0:
                        ax_b.bar(x, b, width * 0.92, color=color)
                        bar_label(ax_b, x, b, fmt_bytes(b), rotate=True)
                        any_bytes = True
                x = i - 0.4 + width * (len(DIRECTIONS) + 0.5)
                sync = row["sync_calls"]
                ax_n.bar(x, sync, width * 0.92, color=SYNC_COLOR, hatch="///", edgecolor="white", linewidth=0)
                bar_label(ax_n, x, sync, fmt_count(sync))
            ax_n.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax_n.set_ylabel("count per iteration")
            ax_n.set_title(f"{labels[cid]}, {MODE_NAMES[graph]}: copies, syncs", fontsize=8.5)
            if any_traced and not any_bytes:
                ax_b.text(0.5, 0.6, "no bytes copied", transform=ax_b.transAxes, ha="center", color=MISSING_COLOR)
            ax_b.set_ylabel("bytes per iteration (log)")
            ax_b.set_title(f"{labels[cid]}, {MODE_NAMES[graph]}: bytes", fontsize=8.5)
            for ax in (ax_n, ax_b):
                variant_axis(ax, variants, bottom=r == len(configs) - 1)
                ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=c, label=f"{n} memcpy") for n, _, c in DIRECTIONS]
    handles.append(Patch(facecolor=SYNC_COLOR, hatch="///", edgecolor="white", label="host sync calls"))
    add_legend(fig, legend_y, handles, ncols=len(handles))
    png, svg_path = save_chart(fig, out_dir, "copies", svg)
    return Chart("copies", "Copies and syncs per iteration", png, svg_path, description,
                 tuple(n for n in (dtod, dropped) if n))
