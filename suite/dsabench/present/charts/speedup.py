"""The speedup chart: baseline / variant against cache size, with compare's intervals and the
bound a full layout copy would explain.

The one derived figure is that bound: a full cache copy takes 2 * cache_bytes / bandwidth (read
+ write), with the bandwidth taken from the run's own trace when a layout copy was recorded,
else from the caller, else not drawn (`copy_bandwidth`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from dsabench.analysis.compare import Comparison
from dsabench.present.charts.common import (
    DODGE, MODE_NAMES, VARIANT_COLORS, VARIANT_ORDER, Chart, cell_of, config_table, new_figure, as_int, add_legend, modes_of,
    no_device_events, run_title, save_chart, config_labels,
)  # fmt: skip
from dsabench.present.compare_text import pair_finding
from dsabench.present.findings import FAILURE_COLOR, FINDING_COLOR
from dsabench.present.text import fmt_bytes
from dsabench.workload.dims import cache_bytes
from dsabench.workload.variants import PATCHED


@dataclass(frozen=True)
class CopyBandwidth:
    """Memory bandwidth of a layout copy, in GB/s of traffic (bytes read + bytes written per
    second, 1 GB = 1e9 B), and where the figure came from."""

    gbs: float
    source: str


def copy_bandwidth(df: pd.DataFrame, given_gbs: float | None = None) -> CopyBandwidth | None:
    """Bandwidth of a layout copy: measured from the run when its trace recorded one, else given.

    Measured: from the ok case with the largest layout copy (large copies are bandwidth-bound,
    small ones launch-bound), traffic = 2 * copied bytes (read + write) over the device time the
    trace attributes to the layout phase per iteration. The copied bytes are the trace's
    layout_copy bytes (a DtoD memcpy) or, when the copy ran as a kernel (no byte count in the
    trace), the bytes of the buffer the layout phase produced (layout_copied_bytes, by data
    pointer), else the bytes it allocated. None when neither the run nor the caller has a
    figure: the chart then says "no copy measured" and draws no bound; no bandwidth is assumed.
    """
    ok = df[(df["status"] == "ok") & (df["layout_copy_ms"] > 0)].copy()
    sources = [("layout_copy_bytes", "trace layout_copy bytes"),
               ("layout_copied_bytes", "bytes of the buffer the layout phase produced"),
               ("layout_alloc_bytes", "bytes the layout phase allocated")]  # fmt: skip
    ok["_bytes"], ok["_what"] = math.nan, ""
    for col, what in reversed(sources):
        if col in ok.columns:
            has = ok[col] > 0
            ok.loc[has, "_bytes"], ok.loc[has, "_what"] = ok.loc[has, col], what
    ok = ok[ok["_bytes"] > 0]
    if not ok.empty:
        row = ok.loc[ok["_bytes"].idxmax()]
        gbs = 2 * row["_bytes"] / (row["layout_copy_ms"] / 1e3) / 1e9
        source = (f"measured in this run: {row['case_id']} copies {fmt_bytes(row['_bytes'])} ({row['_what']}) "
                  f"in {row['layout_copy_ms']:.3g} ms of layout-phase device time")  # fmt: skip
        return CopyBandwidth(gbs, source)
    if given_gbs is not None:
        return CopyBandwidth(float(given_gbs), "given with --copy-bandwidth-gbs (not measured in this run)")
    return None


def _speedups(comparisons: Mapping[str, Comparison]) -> pd.DataFrame:
    """Rows (variant, group, speedup, low, high, verdict, base_status, cand_status) from the
    comparisons of each variant against baseline: speedup = baseline / variant = 1 / ratio."""
    rows = []
    for variant, comp in comparisons.items():
        for r in comp.table.to_dict("records"):
            ratio, lo, hi = r["ratio"], r["ci_low"], r["ci_high"]
            rows.append({
                "variant": variant, "group_id": r["case"],
                "speedup": 1 / ratio if ratio == ratio and ratio else math.nan,
                "low": 1 / hi if hi == hi and hi else math.nan, "high": 1 / lo if lo == lo and lo else math.nan,
                "verdict": r["verdict"], "base_status": r["base_status"], "cand_status": r["cand_status"],
                "finding": pair_finding(r),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["variant", "group_id", "speedup", "low", "high", "verdict", "base_status",
                                       "cand_status", "finding"])  # fmt: skip


def speedup_chart(df: pd.DataFrame, comparisons: Mapping[str, Comparison], out_dir: Path,
                  copy_bandwidth_gbs: float | None = None, in_turn: Collection[str] = (), *,
                  svg: bool = False) -> Chart:
    """Speedup over baseline (baseline / variant, with the interval of compare's gate) against
    num_blocks, one row of panels per family of configs that sweeps num_blocks, eager and CUDA
    Graph side by side, plus the layout-copy bound 1 + t_copy / t_patched with t_copy =
    2 * cache_bytes / bandwidth (`copy_bandwidth`)."""
    labels, note = config_labels(df, drop=("num_blocks",))
    cfg = config_table(df)
    families: dict[str, list[str]] = {}
    for cid in cfg.index:
        families.setdefault(labels[cid], []).append(cid)
    sweeps = {k: v for k, v in families.items() if len({as_int(cfg.loc[c, "num_blocks"]) for c in v}) > 1}
    skipped = [k for k in families if k not in sweeps] if sweeps else []
    shown = sweeps or families
    shown_configs = [c for cids in shown.values() for c in cids]
    modes = modes_of(df[df["config_id"].isin(shown_configs)])
    sp = _speedups(comparisons)
    groups = df.drop_duplicates("group_id").set_index("group_id")
    if not sp.empty:
        sp = sp[sp["group_id"].isin(groups.index)].copy()
        sp["config_id"] = sp["group_id"].map(groups["config_id"])
        sp["graph"] = sp["group_id"].map(groups["graph"]).astype(bool)
        sp["num_blocks"] = sp["config_id"].map(cfg["num_blocks"]).astype(float)
    bw = copy_bandwidth(df, copy_bandwidth_gbs)
    notes = []
    if bw is None:
        ok = df[df["status"] == "ok"]
        copied = ok["layout_copied_bytes"] if "layout_copied_bytes" in ok else pd.Series([], dtype=float)
        traced = ok[ok["trace_iterations"] > 0]
        if traced.empty:
            why = "no case has a trace (profiled pass off)"
        elif no_device_events(df):
            why = "the traces hold no device events"
        else:
            why = "the trace shows no device work launched from the layout phase (no copy kernel, no memcpy)"
        if (copied > 0).any():
            why = f"the layout phase copies up to {fmt_bytes(copied.max())} (layout_copied_bytes), but {why}"
        what = f"no copy measured: {why}"
        notes.append(f"{what}; no --copy-bandwidth-gbs given, so the copy bound is not drawn")
    else:
        notes.append(f"copy bandwidth {bw.gbs:.4g} GB/s (read + write), {bw.source}")
    turn = sp[sp["group_id"].isin(set(in_turn)) & sp["config_id"].isin(shown_configs) & sp["speedup"].notna()] \
        if not sp.empty else sp
    if len(turn):
        modes_in_turn = " and ".join(MODE_NAMES[m] for m in sorted(set(turn["graph"])))
        notes.append(f"the {modes_in_turn} points compare sides timed in separate turns of this run: their intervals "
                     "hold within-run precision only, and a run-order artefact can pass for a change")
    if skipped:
        notes.append(f"configs with a single num_blocks are in the speedup table, not here: {', '.join(skipped)}")
    footnote = note + "\n" + ";\n".join(notes)
    # One column (eager only) must still hold the three-column legend: give it a wider panel.
    panel_w = 6.2 if len(modes) > 1 else 9.5
    fig, axes, legend_y = new_figure(len(shown), len(modes), panel_w, 3.4,
                                  f"Speedup over baseline vs cache size ({run_title(df)})", footnote, legend_rows=2)
    legend: dict[str, object] = {}
    for r, (family, cids) in enumerate(shown.items()):
        for c, graph in enumerate(modes):
            ax = axes[r][c]
            sel = sp[sp["config_id"].isin(cids) & (sp["graph"] == graph)] if not sp.empty else sp
            drew = False
            has = sel[sel["speedup"].notna()]
            drawn = [v for v in VARIANT_ORDER if (has["variant"] == v).any()]
            for k, variant in enumerate(drawn):
                pts = sel[(sel["variant"] == variant) & sel["speedup"].notna()].sort_values("num_blocks")
                err = np.vstack([(pts["speedup"] - pts["low"]).to_numpy(), (pts["high"] - pts["speedup"]).to_numpy()])
                # Dodge: each variant a few percent sideways on the log axis, so equal points stay visible.
                x = pts["num_blocks"] * DODGE ** (k - (len(drawn) - 1) / 2)
                h = ax.errorbar(x, pts["speedup"], yerr=np.nan_to_num(err), marker="o", markersize=4, capsize=3,
                                linewidth=1.3, color=VARIANT_COLORS[variant])  # fmt: skip
                legend.setdefault(f"{variant} vs baseline", h)
                drew = True
            failed = sel[sel["base_status"].notna() & (sel["base_status"] != "ok")]
            if bw is not None:
                xs, ys = [], []
                for cid in sorted(cids, key=lambda k: cfg.loc[k, "num_blocks"]):
                    row = cell_of(df, cid, PATCHED.name, graph)
                    if row is None or row["status"] != "ok" or not row["median_ms"] > 0:
                        continue
                    cb = cache_bytes(int(row["num_blocks"]), int(row["cache_heads"]), int(row["block_size"]))
                    t_copy_ms = 2 * cb / (bw.gbs * 1e9) * 1e3
                    xs.append(row["num_blocks"])
                    ys.append(1 + t_copy_ms / row["median_ms"])
                if xs:
                    h = ax.plot(xs, ys, linestyle="--", color="black", marker="x", linewidth=1,
                                label="layout copy bound: 1 + t_copy / t_patched")[0]  # fmt: skip
                    legend.setdefault("layout copy bound: 1 + t_copy / t_patched", h)
                    drew = True
            why, color = "", FINDING_COLOR
            if not drawn:
                why = f"no {MODE_NAMES[graph]} cases of these configs" if sel.empty else "no speedup to show"
                if not failed.empty:
                    found = sorted({str(f) for f in failed["finding"].dropna()})
                    if failed["finding"].notna().all():
                        why = f"baseline: {', '.join(found)}:\nno baseline time, so no speedup over it"
                    else:
                        statuses = sorted({str(s) for s in failed["base_status"]})
                        why, color = f"baseline {', '.join(statuses)}:\nno speedup over baseline", FAILURE_COLOR
            if why:  # centred on an empty panel, at the top above a drawn copy bound
                ax.text(0.5, 0.5 if not drew else 0.9, why, transform=ax.transAxes, ha="center", va="center",
                        color=color, style="italic")  # fmt: skip
            if not drew:
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
                ax.set_ylabel("speedup = baseline / variant (x)")
                ax.set_xscale("log", base=2)
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))
            ax.set_title(f"{family}, {MODE_NAMES[graph]}")
            ax.set_xlabel("num_blocks (cache blocks, log scale; variants dodged sideways)")
            ax.grid(alpha=0.3)
    if legend:
        add_legend(fig, legend_y, list(legend.values()), list(legend.keys()), ncols=3)
    png, svg_path = save_chart(fig, out_dir, "speedup", svg)
    return Chart("speedup", "Speedup over baseline vs num_blocks", png, svg_path,
                 "Baseline's latency over each variant's (above 1 = faster than baseline; compare --variants' ratio, "
                 "inverted) against the number of cache blocks, with the gate's 95% interval of the ratio over worker "
                 "processes, and the bound a full layout copy at the "
                 "given bandwidth would explain.", tuple(notes))  # fmt: skip
