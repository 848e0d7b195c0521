"""What every evidence chart shares: colours, config labels, the figure grid with its legend
and footnote bands, saving (PNG, and SVG when asked), and the marks for cases without a bar.

Matplotlib figures (Agg, no pyplot state). Every chart is saved as PNG; as SVG too when the caller
asks (`report --svg`): text kept as text, no raster elements, fixed hash salt and no date, so
regenerating an unchanged run gives identical files. SVG is not the default: a second rendering
of every chart nearly doubles the cost of a large run's charts, and the evidence shows the PNGs.
A case without a bar says why where the bar would be: an expected finding of the case
(findings.py) in grey, a failure in red.
"""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory
from PIL import Image

from dsabench.present.findings import FAILURE_COLOR, FINDING_COLOR, status_color, status_label
from dsabench.workload.variants import ALL_VARIANTS

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
FAILED_COLOR = FAILURE_COLOR
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
    """One saved figure: its file stem, title, its PNG, its SVG (None when not asked for), what it
    shows, and caveats found while drawing (e.g. no layout copy measured), which the report prints
    under the image."""

    name: str
    title: str
    png: Path
    svg: Path | None
    description: str
    notes: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------ labels


def as_int(v) -> int | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if math.isfinite(f) else None


def _token(col: str, prefix: str, value) -> str:
    if col == "mode":
        return str(value)
    n = as_int(value)
    return f"{prefix}{n if n is not None else value}"


def config_table(df: pd.DataFrame) -> pd.DataFrame:
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
    cfg = config_table(df)
    common, varying = [], []
    for col, prefix in LABEL_TOKENS:
        values = {str(v) for v in cfg[col]}
        (common if len(values) == 1 else varying).append((col, prefix))
    labels = {}
    for cid, row in cfg.iterrows():
        parts = [str(row["phase"])]
        for col, prefix in varying:
            if col in drop or (col in ("context_len", "prefill_len") and as_int(row[col]) == 0):
                continue
            parts.append(_token(col, prefix, row[col]))
        labels[cid] = " ".join(parts)
    shared = [_token(c, p, cfg[c].iloc[0]) for c, p in common if c not in drop] if len(cfg) else []
    note = ABBREVIATIONS + (f"; every case: {' '.join(shared)}" if shared else "")
    return labels, note


def fmt_count(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2g}"


# ---------------------------------------------------------------------------------- plumbing


# Height of one row of the figure legend, which sits in a band of its own above the footnote.
LEGEND_ROW_IN = 0.3


def new_figure(rows: int, cols: int, panel_w: float, panel_h: float, title: str, footnote: str, legend_rows: int = 1):
    """A constrained-layout grid with a title, and bands reserved at the bottom for the legend
    (see `add_legend`) and the footnote, so neither can overlap a panel or each other."""
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


def add_legend(fig: Figure, legend_y: float, handles, labels=None, ncols: int = 4) -> None:
    """The figure legend, centred in the band `new_figure` reserved for it above the footnote."""
    kw = {"handles": handles} if labels is None else {"handles": handles, "labels": labels}
    fig.legend(**kw, loc="lower center", bbox_to_anchor=(0.5, legend_y), ncols=ncols, frameon=False)


def save_chart(fig: Figure, out_dir: Path, name: str, svg: bool) -> tuple[Path, Path | None]:
    """OUT_DIR/NAME.png, and OUT_DIR/NAME.svg when svg is true (else None in its place)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{name}.png"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    # Charts are flat colours plus antialiased text: a 256-colour palette looks the same and is
    # 3-4x smaller than matplotlib's RGBA, which keeps a committed bundle small.
    with Image.open(buf) as im:
        im.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(png, optimize=True)
    if not svg:
        return png, None
    fig.savefig(out_dir / f"{name}.svg", metadata={"Date": None, "Creator": None})
    return png, out_dir / f"{name}.svg"


def run_title(df: pd.DataFrame) -> str:
    def one(col):
        vals = sorted({str(v) for v in df[col].dropna()})
        return " + ".join(vals) if vals else "unknown"

    kernel = one("kernel") if "kernel" in df.columns else "reference"
    return f"run {one('run_id')}, {one('device_name')}, {one('backend')} backend, {kernel} attention"


def modes_of(df: pd.DataFrame) -> list[bool]:
    present = {bool(g) for g in df["graph"].dropna()}
    return [m for m in (False, True) if m in present] or [False]


def ok_modes(df: pd.DataFrame) -> tuple[list[bool], str]:
    """Modes with at least one ok case, and a footnote line for each mode left out naming what
    its cases found (e.g. 'CUDA Graph: n/a: no CUDA Graph on CPU, 6 cases'), so a CPU run draws
    no column of empty panels and no status labels under the eager bars."""
    keep, dropped = [], []
    for graph in modes_of(df):
        sub = df[df["graph"] == graph]
        if (sub["status"] == "ok").any():
            keep.append(graph)
        else:
            labels = pd.Series([status_label(r) for r in sub.to_dict("records")]).value_counts()
            found = ", ".join(f"{k}: {n} case{'s' if n != 1 else ''}" for k, n in labels.items())
            dropped.append(f"{MODE_NAMES[graph]} not drawn, no case of it ran ({found})")
    return keep or [False], "; ".join(dropped)


def select_configs(df: pd.DataFrame, limit: int) -> tuple[list[str], list[str]]:
    """At most `limit` config ids of the run, in chart order, spread evenly over the ordered list
    (so a sweep keeps its ends and its middle), and the ids left out, in order."""
    ordered = list(config_table(df).index)
    if len(ordered) <= limit:
        return ordered, []
    picks = sorted({round(i * (len(ordered) - 1) / (limit - 1)) for i in range(limit)}) if limit > 1 else [0]
    kept = [ordered[i] for i in picks]
    return kept, [c for c in ordered if c not in set(kept)]


def figures_source(df: pd.DataFrame) -> str:
    """Where a CUDA Graph case's phase and memory figures come from: the records' `phases_source`
    where the frame carries it, else 'eager forwards' (records before that field measured both
    around eager forwards, the graph only for latency)."""
    graph = df[(df["graph"] == True) & (df["status"] == "ok")]  # noqa: E712 - a column of Python bools
    if "phases_source" in graph.columns:
        found = sorted({str(v) for v in graph["phases_source"].dropna()})
        if found:
            return " / ".join(found)
    return "eager forwards"


def no_device_events(df: pd.DataFrame) -> bool:
    """True when no ok case's trace holds a device kernel or copy (a CPU run): the copy and
    sync counts are device-side figures, so there is nothing to draw."""
    ok = df[(df["status"] == "ok") & (df["trace_iterations"] > 0)]
    cols = ["kernel_count"] + [f"{c}_count" for _, c, _ in DIRECTIONS]
    return ok.empty or not (ok[cols].fillna(0) > 0).any().any()


def variants_of(df: pd.DataFrame) -> list[str]:
    present = set(df["variant"].dropna())
    return [v for v in VARIANT_ORDER if v in present]


def cell_of(df: pd.DataFrame, config_id: str, variant: str, graph: bool) -> dict | None:
    sel = df[(df["config_id"] == config_id) & (df["variant"] == variant) & (df["graph"] == graph)]
    return None if sel.empty else sel.iloc[0].to_dict()


def cell_index(df: pd.DataFrame) -> dict[tuple[str, str, bool], dict]:
    """The case of each (config id, variant, CUDA Graph or not) of a frame, its first row as `cell_of`
    finds it: one pass over the frame, where a filter per bar took seconds of a large run's grid."""
    cells: dict[tuple[str, str, bool], dict] = {}
    for row in df.to_dict("records"):
        if isinstance(row["graph"], (bool, np.bool_)):
            cells.setdefault((row["config_id"], row["variant"], bool(row["graph"])), row)
    return cells


def samples_of(row: dict) -> list[float]:
    s = row.get("samples_ms")
    return list(s) if isinstance(s, (list, tuple, np.ndarray)) else []


def status_mark(ax, pos: float, row: dict | str, horizontal: bool, size: float = 7.5) -> None:
    """Say where the bar would be why there is none: `row` is the case (its finding label in grey,
    or its failed status in red) or a plain note ('not run', 'no trace') in light grey. `pos` is
    the bar's place on the category axis (data), the other coordinate a fraction of the axes, so
    the mark sits at the foot of the bar on linear and log axes alike."""
    if isinstance(row, str):
        text, color, style = row, MISSING_COLOR, "normal"
    else:
        text, color = status_label(row), status_color(row)
        style = "normal" if color == FINDING_COLOR else "italic"
    if horizontal:
        where = dict(x=0.01, y=pos, transform=blended_transform_factory(ax.transAxes, ax.transData),
                     ha="left", va="center", rotation=0)  # fmt: skip
    else:
        where = dict(x=pos, y=0.02, transform=blended_transform_factory(ax.transData, ax.transAxes),
                     ha="center", va="bottom", rotation=90)  # fmt: skip
    ax.text(s=text, color=color, fontsize=size, style=style, **where)


def grid_shape(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = max(1, min(max_cols, n))
    return max(1, math.ceil(n / cols)), cols


def hide_unused(axes, n: int) -> None:
    for ax in axes.flat[n:]:
        ax.set_visible(False)


def variant_axis(ax, variants: Sequence[str], bottom: bool) -> None:
    ax.set_xticks(range(len(variants)))
    if bottom:
        ax.set_xticklabels(variants, rotation=30, ha="right")
    else:
        ax.set_xticklabels([])
    ax.set_xlim(-0.6, len(variants) - 0.4)


def bar_label(ax, x: float, value: float, text: str, rotate: bool = False) -> None:
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
