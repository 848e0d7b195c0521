"""Evidence charts: matplotlib figures (Agg, no pyplot state) over one loaded run.

Pure presentation. Latency intervals come from `stats.summarize`, speedups and their intervals
from `compare.compare_variants` (passed in); the charts select columns of the frame and draw
them. The one derived figure is the layout-copy bound of the speedup chart: a full cache copy
takes 2 * cache_bytes / bandwidth (read + write), with the bandwidth taken from the run's own
trace when a layout copy was recorded, else from the caller, else not drawn (`copy_bandwidth`).

Every chart is saved as PNG and SVG (text kept as text, no raster elements, fixed hash salt and
no date, so regenerating an unchanged run gives identical files).
"""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import rc_context
from PIL import Image
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

from dsabench.analysis.compare import Comparison
from dsabench.workload.phases import PHASE_NAMES
from dsabench.workload.dims import cache_bytes
from dsabench.analysis.stats import summarize
from dsabench.workload.variants import ALL_VARIANTS, PATCHED

VARIANT_ORDER = tuple(v.name for v in ALL_VARIANTS)
# Fixed colours per variant, the same in every chart: the two ends of the PR stand out (baseline
# red, patched green), the intermediate variants are muted.
VARIANT_COLORS = {
    "baseline": "#c0392b", "tensor+view": "#e67e22", "scalar+contiguous": "#8e7cc3",
    "patched": "#27ae60", "none+contiguous": "#5d6d7e", "none+view": "#3498db",
}  # fmt: skip
MODE_COLORS = {False: "#4c72b0", True: "#dd8452"}
MODE_NAMES = {False: "eager", True: "CUDA Graph"}
PHASE_COLORS = {
    "scale": "#e74c3c", "slot_mapping": "#f1c40f", "write_cache": "#9b59b6", "layout": "#e67e22",
    "decode": "#3498db", "prefill": "#1abc9c", "merge": "#34495e",
}  # fmt: skip
DIRECTIONS = (("HtoD", "htod", "#c0392b"), ("DtoH", "dtoh", "#e67e22"), ("DtoD", "dtod", "#3498db"))
SYNC_COLOR = "#2c3e50"
FAILED_COLOR = "#b03a2e"
MISSING_COLOR = "#999999"
UNATTRIBUTED_COLOR = "#bdc3c7"

# Resolution of the PNGs: 110 dpi keeps a 16-inch-wide grid under ~2000 pixels (readable in a
# pull-request page at full width) and the committed bundle small.
PNG_DPI = 110
RC = {
    "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 8, "figure.titlesize": 12, "svg.fonttype": "none", "svg.hashsalt": "dsabench",
    "axes.spines.top": False, "axes.spines.right": False,
}  # fmt: skip
PHASE_ORDER = {"decode": 0, "mixed": 1, "prefill": 2}
# Sideways offset factor between variants on the speedup chart's log x axis (3%: clearly apart
# at the markers' size, far from the next num_blocks, which the sweeps space by 2x or more).
DODGE = 1.03
# Tokens of a config label: (column, prefix). Tokens shared by every config of the run go into
# the footnote instead of every label; a zero context or prefill length says "none" and is dropped.
LABEL_TOKENS = (
    ("batch", "b"), ("context_len", "c"), ("prefill_len", "p"), ("num_blocks", "n"), ("block_size", "bs"),
    ("cache_heads", "ch"), ("heads", "h"), ("topk", "k"), ("seed", "s"), ("mode", ""),
)  # fmt: skip
ABBREVIATIONS = (
    "b batch, c context tokens, p prefill tokens, n cache blocks, bs block size, ch cache heads, h heads, k top-k"
)


@dataclass(frozen=True)
class Chart:
    """One saved figure: its file stem, title, the two files, what it shows, and caveats found
    while drawing (e.g. no layout copy measured), which the report prints under the image."""

    name: str
    title: str
    png: Path
    svg: Path
    description: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CopyBandwidth:
    """Memory bandwidth of a layout copy, in GB/s of traffic (bytes read + bytes written per
    second, 1 GB = 1e9 B), and where the figure came from."""

    gbs: float
    source: str


# ------------------------------------------------------------------------------------ labels


def _int(v) -> int | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if math.isfinite(f) else None


def _token(col: str, prefix: str, value) -> str:
    if col == "mode":
        return str(value)
    n = _int(value)
    return f"{prefix}{n if n is not None else value}"


def _config_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per config id with its parameters, ordered decode, mixed, prefill, then by size."""
    cfg = df.drop_duplicates("config_id").copy()
    cfg["_phase"] = cfg["phase"].map(lambda p: PHASE_ORDER.get(p, 9))
    keys = ["_phase", "batch", "context_len", "prefill_len", "num_blocks", "cache_heads", "heads", "topk", "mode",
            "seed"]  # fmt: skip
    cfg = cfg.sort_values(keys, kind="stable").drop(columns="_phase")
    return cfg.set_index("config_id", drop=False)


def config_labels(df: pd.DataFrame, drop: Sequence[str] = ()) -> tuple[dict[str, str], str]:
    """Short readable labels for the config ids of a frame, and the footnote naming what they omit.

    'decode.b64.c4096.p0.n65536.bs64.ch1.h128.k2048.s0.hot' becomes 'decode b64 c4096 n65536'
    when block size, heads, top-k, seed and mode are the same for every config of the run (they
    move to the footnote); `drop` removes columns from the labels as well (e.g. num_blocks on a
    chart whose x axis is num_blocks).
    """
    cfg = _config_table(df)
    common, varying = [], []
    for col, prefix in LABEL_TOKENS:
        values = {str(v) for v in cfg[col]}
        (common if len(values) == 1 else varying).append((col, prefix))
    labels = {}
    for cid, row in cfg.iterrows():
        parts = [str(row["phase"])]
        for col, prefix in varying:
            if col in drop or (col in ("context_len", "prefill_len") and _int(row[col]) == 0):
                continue
            parts.append(_token(col, prefix, row[col]))
        labels[cid] = " ".join(parts)
    shared = [_token(c, p, cfg[c].iloc[0]) for c, p in common if c not in drop] if len(cfg) else []
    note = ABBREVIATIONS + (f"; every case: {' '.join(shared)}" if shared else "")
    return labels, note


def _fmt_bytes(v: float) -> str:
    if not isinstance(v, (int, float)) or v != v:
        return "?"
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(v) >= size:
            return f"{v / size:.3g} {unit}"
    return f"{v:.0f} B"


def _fmt_count(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2g}"


# ---------------------------------------------------------------------------------- plumbing


# Height of one row of the figure legend, which sits in a band of its own above the footnote.
LEGEND_ROW_IN = 0.3


def _figure(rows: int, cols: int, panel_w: float, panel_h: float, title: str, footnote: str, legend_rows: int = 1):
    """A constrained-layout grid with a title, and bands reserved at the bottom for the legend
    (see `_legend`) and the footnote, so neither can overlap a panel or each other."""
    width = cols * panel_w
    # About 16 characters of the 7.5-point footnote font per inch: wrap so no line leaves the figure.
    footnote = "\n".join(textwrap.fill(line, int(width * 16)) for line in footnote.split("\n"))
    foot_in = 0.25 + 0.16 * footnote.count("\n")
    band_in = foot_in + LEGEND_ROW_IN * legend_rows
    height = rows * panel_h + 0.9 + band_in
    fig = Figure(figsize=(width, height), layout="constrained")
    # rect is (left, bottom, width, height) in figure fractions: keep both bands free.
    fig.get_layout_engine().set(rect=(0, band_in / height, 1, 1 - (band_in + 0.05) / height), h_pad=0.06, w_pad=0.06)
    axes = fig.subplots(rows, cols, squeeze=False)
    # About 9.5 characters of the 12-point bold title per inch: wrap it on narrow figures.
    fig.suptitle(textwrap.fill(title, max(40, int(width * 9.5))), fontweight="bold")
    fig.text(0.005, 0.006, footnote, fontsize=7.5, color="#444444", ha="left", va="bottom")
    return fig, axes, foot_in / height


def _legend(fig: Figure, legend_y: float, handles, labels=None, ncols: int = 4) -> None:
    """The figure legend, centred in the band `_figure` reserved for it above the footnote."""
    kw = {"handles": handles} if labels is None else {"handles": handles, "labels": labels}
    fig.legend(**kw, loc="lower center", bbox_to_anchor=(0.5, legend_y), ncols=ncols, frameon=False)


def _save(fig: Figure, out_dir: Path, name: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    # Charts are flat colours plus antialiased text: a 256-colour palette looks the same and is
    # 3-4x smaller than matplotlib's RGBA, which keeps a committed bundle small.
    with Image.open(buf) as im:
        im.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(png, optimize=True)
    fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return png, svg


def _run_title(df: pd.DataFrame) -> str:
    def one(col):
        vals = sorted({str(v) for v in df[col].dropna()})
        return " + ".join(vals) if vals else "unknown"

    return f"run {one('run_id')}, {one('device_name')}, {one('backend')} backend"


def _modes(df: pd.DataFrame) -> list[bool]:
    present = {bool(g) for g in df["graph"].dropna()}
    return [m for m in (False, True) if m in present] or [False]


def _ok_modes(df: pd.DataFrame) -> tuple[list[bool], str]:
    """Modes with at least one ok case, and a footnote line for the modes left out (with their
    cases' statuses), so a CPU run does not draw a column of 'unsupported' panels. The latency
    chart keeps every mode: it is where failures are shown."""
    keep, dropped = [], []
    for graph in _modes(df):
        sub = df[df["graph"] == graph]
        if (sub["status"] == "ok").any():
            keep.append(graph)
        else:
            counts = sub["status"].value_counts()
            dropped.append(f"{MODE_NAMES[graph]}: no case ran ({', '.join(f'{n} {k}' for k, n in counts.items())}); "
                           "see the latency chart")  # fmt: skip
    return keep or [False], "; ".join(dropped)


def _no_device_events(df: pd.DataFrame) -> bool:
    """True when no ok case's trace holds a device kernel or copy (a CPU run): the copy and
    sync counts are device-side figures, so there is nothing to draw."""
    ok = df[(df["status"] == "ok") & (df["trace_iterations"] > 0)]
    cols = ["kernel_count"] + [f"{c}_count" for _, c, _ in DIRECTIONS]
    return ok.empty or not (ok[cols].fillna(0) > 0).any().any()


def _variants(df: pd.DataFrame) -> list[str]:
    present = set(df["variant"].dropna())
    return [v for v in VARIANT_ORDER if v in present]


def _cell(df: pd.DataFrame, config_id: str, variant: str, graph: bool) -> dict | None:
    sel = df[(df["config_id"] == config_id) & (df["variant"] == variant) & (df["graph"] == graph)]
    return None if sel.empty else sel.iloc[0].to_dict()


def _samples(row: dict) -> list[float]:
    s = row.get("samples_ms")
    return list(s) if isinstance(s, (list, tuple, np.ndarray)) else []


def _status_mark(ax, pos: float, status: str, horizontal: bool, size: float = 7.5) -> None:
    """Write the status ('capture_failed', 'not run', ...) where the bar would be: `pos` is the
    bar's place on the category axis (data), the other coordinate is a fraction of the axes, so
    the mark sits at the foot of the bar on linear and log axes alike."""
    color = MISSING_COLOR if status == "not run" else FAILED_COLOR
    style = "normal" if status == "not run" else "italic"
    if horizontal:
        where = dict(x=0.01, y=pos, transform=blended_transform_factory(ax.transAxes, ax.transData),
                     ha="left", va="center", rotation=0)  # fmt: skip
    else:
        where = dict(x=pos, y=0.02, transform=blended_transform_factory(ax.transData, ax.transAxes),
                     ha="center", va="bottom", rotation=90)  # fmt: skip
    ax.text(s=status, color=color, fontsize=size, style=style, **where)


def _grid_shape(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = max(1, min(max_cols, n))
    return max(1, math.ceil(n / cols)), cols


def _hide_unused(axes, n: int) -> None:
    for ax in axes.flat[n:]:
        ax.set_visible(False)


# ------------------------------------------------------------------------------- (a) latency


def latency_chart(df: pd.DataFrame, out_dir: Path) -> Chart:
    """Median latency per case, one panel per config, variants down the side, eager and CUDA
    Graph bars side by side, each with the 95% CI of the median (stats.summarize). A case that
    did not produce samples shows its status text where its bar would be."""
    labels, note = config_labels(df)
    configs = list(labels)
    modes = _modes(df)
    rows, cols = _grid_shape(len(configs))
    nvar = max(1, max((len(_variants(df[df["config_id"] == c])) for c in configs), default=1))
    fig, axes, legend_y = _figure(rows, cols, 5.6, 0.5 + 0.42 * nvar * (len(modes) + 0.6) / 2 + 0.9,
                        f"Latency per forward, eager vs CUDA Graph ({_run_title(df)})",
                        note + "\nbars: median of the per-iteration samples; whiskers: 95% CI of the median "
                        "(binomial order statistics, stats.summarize)")  # fmt: skip
    height = 0.8 / len(modes)
    for ax, cid in zip(axes.flat, configs):
        sub = df[df["config_id"] == cid]
        variants = _variants(sub)
        right = 0.0
        marks = []
        for i, variant in enumerate(variants):
            for j, graph in enumerate(modes):
                y = i - 0.4 + height * (j + 0.5)
                row = _cell(sub, cid, variant, graph)
                samples = _samples(row) if row else []
                if row is None or row["status"] != "ok" or not samples:
                    marks.append((y, "not run" if row is None else str(row["status"])))
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
            _status_mark(ax, y, status, horizontal=True)
        ax.set_yticks(range(len(variants)), variants)
        ax.set_ylim(len(variants) - 0.5, -0.5)
        ax.set_title(labels[cid])
        ax.set_xlabel("median latency per forward (ms)")
        ax.grid(axis="x", alpha=0.3)
    _hide_unused(axes, len(configs))
    handles = [Patch(color=MODE_COLORS[m], label=MODE_NAMES[m]) for m in modes]
    handles.append(Line2D([], [], color="black", marker="|", linestyle="-", markersize=6, label="95% CI of the median"))
    _legend(fig, legend_y, handles, ncols=len(handles))
    png, svg = _save(fig, out_dir, "latency")
    return Chart("latency", "Latency per case and variant", png, svg,
                 "Median latency per forward for every case, eager and CUDA Graph side by side, with the 95% CI "
                 "of the median; cases without samples show their status (capture_failed, unsupported, ...)."
                 )  # fmt: skip


# ------------------------------------------------------------------------------- (b) speedup


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
        source = (f"measured in this run: {row['case_id']} copies {_fmt_bytes(row['_bytes'])} ({row['_what']}) "
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
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["variant", "group_id", "speedup", "low", "high", "verdict", "base_status",
                                       "cand_status"])  # fmt: skip


def speedup_chart(df: pd.DataFrame, comparisons: Mapping[str, Comparison], out_dir: Path,
                  copy_bandwidth_gbs: float | None = None) -> Chart:
    """Speedup over baseline (baseline / variant, with the bootstrap interval of compare) against
    num_blocks, one row of panels per family of configs that sweeps num_blocks, eager and CUDA
    Graph side by side, plus the layout-copy bound 1 + t_copy / t_patched with t_copy =
    2 * cache_bytes / bandwidth (`copy_bandwidth`)."""
    labels, note = config_labels(df, drop=("num_blocks",))
    cfg = _config_table(df)
    families: dict[str, list[str]] = {}
    for cid in cfg.index:
        families.setdefault(labels[cid], []).append(cid)
    sweeps = {k: v for k, v in families.items() if len({_int(cfg.loc[c, "num_blocks"]) for c in v}) > 1}
    skipped = [k for k in families if k not in sweeps] if sweeps else []
    shown = sweeps or families
    shown_configs = [c for cids in shown.values() for c in cids]
    modes = _modes(df[df["config_id"].isin(shown_configs)])
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
        elif _no_device_events(df):
            why = "the traces hold no device events"
        else:
            why = "the trace shows no device work launched from the layout phase (no copy kernel, no memcpy)"
        if (copied > 0).any():
            why = f"the layout phase copies up to {_fmt_bytes(copied.max())} (layout_copied_bytes), but {why}"
        what = f"no copy measured: {why}"
        notes.append(f"{what}; no --copy-bandwidth-gbs given, so the copy bound is not drawn")
    else:
        notes.append(f"copy bandwidth {bw.gbs:.4g} GB/s (read + write), {bw.source}")
    if skipped:
        notes.append(f"configs with a single num_blocks are in the speedup table, not here: {', '.join(skipped)}")
    footnote = note + "\n" + ";\n".join(notes)
    # One column (eager only) must still hold the three-column legend: give it a wider panel.
    panel_w = 6.2 if len(modes) > 1 else 9.5
    fig, axes, legend_y = _figure(len(shown), len(modes), panel_w, 3.4,
                                  f"Speedup over baseline vs cache size ({_run_title(df)})", footnote, legend_rows=2)
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
                    row = _cell(df, cid, PATCHED.name, graph)
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
            if not drew:
                why = f"no {MODE_NAMES[graph]} cases of these configs"
                if not sel.empty:
                    why = "no speedup to show"
                if not failed.empty:
                    statuses = sorted({str(s) for s in failed["base_status"]})
                    why = f"baseline {', '.join(statuses)}:\nno speedup over baseline"
                ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", color=FAILED_COLOR,
                        style="italic")  # fmt: skip
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
        _legend(fig, legend_y, list(legend.values()), list(legend.keys()), ncols=3)
    png, svg = _save(fig, out_dir, "speedup")
    return Chart("speedup", "Speedup over baseline vs num_blocks", png, svg,
                 "Median latency of baseline over each variant (above 1 = faster than baseline) against the number of "
                 "cache blocks, with the 95% bootstrap interval of the ratio, and the bound a full layout copy at the "
                 "given bandwidth would explain.", tuple(notes))  # fmt: skip


# ------------------------------------------------------------------- (c) (d) per-variant grids


def _variant_axis(ax, variants: Sequence[str], bottom: bool) -> None:
    ax.set_xticks(range(len(variants)))
    if bottom:
        ax.set_xticklabels(variants, rotation=30, ha="right")
    else:
        ax.set_xticklabels([])
    ax.set_xlim(-0.6, len(variants) - 0.4)


def _bar_label(ax, x: float, value: float, text: str, rotate: bool = False) -> None:
    """Value label of a vertical bar: a grey 0 at the foot for a zero, inside the top of a bar
    that fills most of the axes (white), above a shorter one; set the y limits first. Works on
    linear and log axes, and keeps every label inside the axes."""
    if not value > 0:
        ax.text(x, 0.0, "0", ha="center", va="bottom", fontsize=6, color=MISSING_COLOR,
                transform=blended_transform_factory(ax.transData, ax.transAxes))  # fmt: skip
        return
    lo, hi = ax.get_ylim()
    if ax.get_yscale() == "log":
        frac = math.log10(value / lo) / math.log10(hi / lo)
    else:
        frac = (value - lo) / (hi - lo)
    inside = frac > (0.45 if rotate else 0.8)
    ax.text(x, value, text, ha="center", va="top" if inside else "bottom", fontsize=6 if rotate else 6.5,
            rotation=90 if rotate else 0, color="white" if inside else "black")  # fmt: skip


def copies_chart(df: pd.DataFrame, out_dir: Path) -> Chart:
    """Per iteration, from the trace of the profiled pass: memcpy count by direction and host
    sync calls (left panel of each mode), memcpy bytes by direction (right panel, log scale,
    the same range in every panel)."""
    labels, note = config_labels(df)
    description = ("Per forward, from the profiler trace: memcpy count and bytes by direction (HtoD, DtoH, DtoD) and "
                   "host synchronization calls, for every variant of every case.")  # fmt: skip
    if _no_device_events(df):
        why = (f"no device events in this run's traces ({_run_title(df)}): memcpy and sync counts are device-side "
               "figures, so there is nothing to draw")  # fmt: skip
        fig, axes, _ = _figure(1, 1, 8.0, 1.6, f"Host-device copies and syncs per iteration ({_run_title(df)})",
                               note, legend_rows=0)  # fmt: skip
        axes[0][0].text(0.5, 0.5, textwrap.fill(why, 90), ha="center", va="center", color=MISSING_COLOR)
        axes[0][0].set_axis_off()
        png, svg = _save(fig, out_dir, "copies")
        return Chart("copies", "Copies and syncs per iteration", png, svg, description, (why,))
    (modes, dropped), variants, configs = _ok_modes(df), _variants(df), list(labels)
    fig, axes, legend_y = _figure(len(configs), 2 * len(modes), 4.4, 2.4,
                                  f"Host-device copies and syncs per iteration ({_run_title(df)})",
                                  note + "\nfrom the framework profiler trace of the profiled pass, per forward; "
                                  "a case without a trace shows its status" + (f"\n{dropped}" if dropped else ""))
    width = 0.8 / (len(DIRECTIONS) + 1)
    byte_cols = [f"{col}_bytes" for _, col, _ in DIRECTIONS]
    ok = df[df["status"] == "ok"]
    top_b = float(np.nanmax(ok[byte_cols].to_numpy(dtype=float), initial=0.0)) if len(ok) else 0.0
    top_n = float(np.nanmax(ok[[f"{c}_count" for _, c, _ in DIRECTIONS] + ["sync_calls"]].to_numpy(dtype=float),
                            initial=1.0)) if len(ok) else 1.0  # fmt: skip
    b_lo, b_hi = 0.5, max(top_b, 1.0) * 8
    for r, cid in enumerate(configs):
        for m, graph in enumerate(modes):
            ax_n, ax_b = axes[r][2 * m], axes[r][2 * m + 1]
            ax_n.set_ylim(0, max(top_n, 1.0) * 1.3 + 0.2)
            if top_b > 0:
                ax_b.set_yscale("log")
                ax_b.set_ylim(b_lo, b_hi)
                ax_b.yaxis.set_major_locator(LogLocator(base=1024))
                ax_b.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt_bytes(v)))
            any_bytes, any_traced = False, False
            for i, variant in enumerate(variants):
                row = _cell(df, cid, variant, graph)
                if row is None or row["status"] != "ok" or not (row["trace_iterations"] > 0):
                    status = "not run" if row is None else ("no trace" if row["status"] == "ok" else str(row["status"]))
                    _status_mark(ax_n, i, status, horizontal=False, size=7)
                    _status_mark(ax_b, i, status, horizontal=False, size=7)
                    continue
                any_traced = True
                for d, (name, col, color) in enumerate(DIRECTIONS):
                    x = i - 0.4 + width * (d + 0.5)
                    n, b = row[f"{col}_count"], row[f"{col}_bytes"]
                    ax_n.bar(x, n, width * 0.92, color=color)
                    _bar_label(ax_n, x, n, _fmt_count(n))
                    if b > 0:
                        ax_b.bar(x, b, width * 0.92, color=color)
                        _bar_label(ax_b, x, b, _fmt_bytes(b), rotate=True)
                        any_bytes = True
                x = i - 0.4 + width * (len(DIRECTIONS) + 0.5)
                sync = row["sync_calls"]
                ax_n.bar(x, sync, width * 0.92, color=SYNC_COLOR, hatch="///", edgecolor="white", linewidth=0)
                _bar_label(ax_n, x, sync, _fmt_count(sync))
            ax_n.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax_n.set_ylabel("count per iteration")
            ax_n.set_title(f"{labels[cid]}, {MODE_NAMES[graph]}: copies, syncs", fontsize=8.5)
            if any_traced and not any_bytes:
                ax_b.text(0.5, 0.6, "no bytes copied", transform=ax_b.transAxes, ha="center", color=MISSING_COLOR)
            ax_b.set_ylabel("bytes per iteration (log)")
            ax_b.set_title(f"{labels[cid]}, {MODE_NAMES[graph]}: bytes", fontsize=8.5)
            for ax in (ax_n, ax_b):
                _variant_axis(ax, variants, bottom=r == len(configs) - 1)
                ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=c, label=f"{n} memcpy") for n, _, c in DIRECTIONS]
    handles.append(Patch(facecolor=SYNC_COLOR, hatch="///", edgecolor="white", label="host sync calls"))
    _legend(fig, legend_y, handles, ncols=len(handles))
    png, svg = _save(fig, out_dir, "copies")
    return Chart("copies", "Copies and syncs per iteration", png, svg, description, (dropped,) if dropped else ())


def _phase_source(df: pd.DataFrame) -> str:
    """'kernel' when the trace attributed device time to phases (a GPU run), else 'host'."""
    cols = [f"kernel_ms_{p}" for p in PHASE_NAMES if f"kernel_ms_{p}" in df.columns]
    if cols and (df[cols].fillna(0) > 0).any().any():
        return "kernel"
    return "host"


# Phases that carry the attention itself; the zoom panels leave them out so that the small
# phases PR #7253 touches (scale, layout) are visible next to them.
BIG_PHASES = ("decode", "prefill")


def _phase_values(row: dict, prefix: str, phases: Sequence[str]) -> list[tuple[str, float]]:
    vals = [(p, row.get(f"{prefix}{p}", math.nan)) for p in phases]
    return [(p, float(v)) for p, v in vals if isinstance(v, (int, float)) and v == v]


def phases_chart(df: pd.DataFrame, out_dir: Path) -> Chart:
    """Time per phase stacked per variant: device kernel time attributed to each phase by the
    trace (phase_kernel_ms) where the run has device events, else the host time of each phase
    (median of the record's phases_ms). Beside each mode's panel, a zoom without decode and
    prefill. Graph replays are not split into phases by the trace; their kernel time shows as
    one grey bar (and they get no zoom panel)."""
    labels, note = config_labels(df)
    (modes, dropped), variants, configs = _ok_modes(df), _variants(df), list(labels)
    source = _phase_source(df)
    prefix = "kernel_ms_" if source == "kernel" else "phase_ms_"
    ylabel = ("device kernel ms / iteration\n(trace phase_kernel_ms)" if source == "kernel"
              else "host ms per phase\n(median of phases_ms)")  # fmt: skip
    what = ("device kernel time per phase from the profiler trace" if source == "kernel"
            else "host time per phase (perf_counter around each phase, synchronized; no device trace in this run)")
    small = [p for p in PHASE_NAMES if p not in BIG_PHASES]
    # (mode, zoom) columns: a zoom only for a mode whose cases have per-phase figures.
    columns = []
    for graph in modes:
        columns.append((graph, False))
        rows = df[(df["graph"] == graph) & (df["status"] == "ok")].to_dict("records")
        if any(_phase_values(r, prefix, small) for r in rows):
            columns.append((graph, True))
    fig, axes, legend_y = _figure(len(configs), len(columns), 4.6, 2.5, f"Time per phase ({_run_title(df)})",
                                  note + f"\n{what}; the number above a bar is its total; zoom panels leave out "
                                  f"{' and '.join(BIG_PHASES)}" + (f"\n{dropped}" if dropped else ""))
    used: set[str] = set()
    unattributed = False
    for r, cid in enumerate(configs):
        for c, (graph, zoom) in enumerate(columns):
            ax = axes[r][c]
            top = 0.0
            marks = []
            for i, variant in enumerate(variants):
                row = _cell(df, cid, variant, graph)
                if row is None or row["status"] != "ok":
                    marks.append((i, "not run" if row is None else str(row["status"])))
                    continue
                vals = _phase_values(row, prefix, small if zoom else PHASE_NAMES)
                kernel = row.get("kernel_ms", math.nan)
                if not _phase_values(row, prefix, PHASE_NAMES) and source == "kernel" and kernel == kernel:
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
                _status_mark(ax, i, status, horizontal=False, size=7)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{labels[cid]}, {MODE_NAMES[graph]}" + (": zoom" if zoom else ""))
            _variant_axis(ax, variants, bottom=r == len(configs) - 1)
            ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=PHASE_COLORS[p], label=p) for p in PHASE_NAMES if p in used]
    if unattributed:
        handles.append(Patch(facecolor=UNATTRIBUTED_COLOR, hatch="..", edgecolor="white",
                             label="graph replay (trace does not split it by phase)"))  # fmt: skip
    if handles:
        _legend(fig, legend_y, handles, ncols=min(8, len(handles)))
    png, svg = _save(fig, out_dir, "phases")
    notes = (f"phase times are {what}",) + ((dropped,) if dropped else ())
    return Chart("phases", "Time per phase", png, svg,
                 "Per-phase time (scale, slot_mapping, write_cache, layout, decode, prefill, merge) stacked per "
                 "variant, eager and CUDA Graph, with a zoom on the phases other than decode and prefill.",
                 notes)  # fmt: skip


# -------------------------------------------------------------------------------- (e) memory


def memory_chart(df: pd.DataFrame, out_dir: Path) -> Chart:
    """Peak device memory one forward allocates above its inputs, per variant (eager and CUDA
    Graph), and the bytes the layout phase allocates (the contiguous copy of the cache)."""
    labels, note = config_labels(df)
    (modes, dropped), variants, configs = _ok_modes(df), _variants(df), list(labels)
    description = ("Peak device memory a forward allocates above its inputs, per variant, and the bytes the layout "
                   "phase allocates (non-zero where .contiguous() copies the cache).")  # fmt: skip
    title = f"Peak memory per forward ({_run_title(df)})"
    if not df["peak_bytes"].notna().any():
        why = (f"no memory figures in this run ({_run_title(df)}): memory is recorded only where the backend exposes "
               "a device allocator (CUDA)")  # fmt: skip
        fig, axes, _ = _figure(1, 1, 8.0, 1.6, title, note, legend_rows=0)
        axes[0][0].text(0.5, 0.5, textwrap.fill(why, 90), ha="center", va="center", color=MISSING_COLOR)
        axes[0][0].set_axis_off()
        png, svg = _save(fig, out_dir, "memory")
        return Chart("memory", "Peak memory per variant", png, svg, description, (why,))
    rows, cols = _grid_shape(len(configs))
    fig, axes, legend_y = _figure(rows, cols, 5.2, 2.9, title,
                                  note + "\npeak: allocator peak during one forward minus what was allocated before "
                                  "it; layout alloc: bytes allocated inside the layout phase"
                                  + (f"\n{dropped}" if dropped else ""))
    series = [(f"peak, {MODE_NAMES[m]}", "peak_bytes", m, MODE_COLORS[m], None) for m in modes]
    series.append(("layout alloc, eager", "layout_alloc_bytes", False, VARIANT_COLORS["tensor+view"], "xx"))
    width = 0.8 / len(series)
    for ax, cid in zip(axes.flat, configs):
        sub = df[df["config_id"] == cid]
        top = float(np.nanmax(sub[["peak_bytes", "layout_alloc_bytes"]].to_numpy(dtype=float), initial=0.0))
        unit, size = next(((u, s) for u, s in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)) if top >= s), ("B", 1))
        ymax = (top / size or 1.0) * 1.3
        ax.set_ylim(0, ymax)
        for i, variant in enumerate(variants):
            if all(_cell(sub, cid, variant, m) is None for m in modes):
                _status_mark(ax, i, "not run", horizontal=False, size=6.5)
                continue
            for k, (name, col, graph, color, hatch) in enumerate(series):
                x = i - 0.4 + width * (k + 0.5)
                row = _cell(sub, cid, variant, graph)
                if row is None or row["status"] != "ok" or row[col] != row[col]:
                    if k < len(modes):
                        status = "not run" if row is None else "no figure" if row["status"] == "ok" else row["status"]
                        _status_mark(ax, x, status, horizontal=False, size=6.5)
                    continue
                v = row[col] / size
                ax.bar(x, v, width * 0.92, color=color, hatch=hatch, edgecolor="white" if hatch else None, linewidth=0)
                _bar_label(ax, x, v, _fmt_bytes(row[col]), rotate=True)
        ax.set_ylabel(f"{unit} per forward")
        ax.set_title(labels[cid])
        _variant_axis(ax, variants, bottom=True)
        ax.grid(axis="y", alpha=0.3)
    _hide_unused(axes, len(configs))
    handles = [Patch(facecolor=c, hatch=h, edgecolor="white" if h else None, label=n) for n, _, _, c, h in series]
    _legend(fig, legend_y, handles, ncols=len(handles))
    png, svg = _save(fig, out_dir, "memory")
    return Chart("memory", "Peak memory per variant", png, svg, description, (dropped,) if dropped else ())


# ----------------------------------------------------------------------------------- all


def all_charts(df: pd.DataFrame, comparisons: Mapping[str, Comparison], out_dir: Path,
               copy_bandwidth_gbs: float | None = None) -> list[Chart]:
    """Every evidence chart of one run into out_dir; comparisons maps each variant name to its
    compare_variants result against baseline (the speedup chart's numbers)."""
    if df.empty:
        raise ValueError("plots: the frame has no cases")
    out_dir = Path(out_dir)
    with rc_context(RC):
        return [
            latency_chart(df, out_dir),
            speedup_chart(df, comparisons, out_dir, copy_bandwidth_gbs),
            copies_chart(df, out_dir),
            phases_chart(df, out_dir),
            memory_chart(df, out_dir),
        ]


__all__ = [
    "Chart", "CopyBandwidth", "all_charts", "config_labels", "copies_chart", "copy_bandwidth",
    "latency_chart", "memory_chart", "phases_chart", "speedup_chart",
]  # fmt: skip
