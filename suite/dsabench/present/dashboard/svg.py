"""The dashboard's charts, as inline SVG written here, and the number formats they share with pages.

Why hand-written SVG rather than matplotlib's (what `report` uses) or a JavaScript library:
the charts must be inline (the CSP loads nothing), small (a year of nightly runs is 81,000
points, and matplotlib's SVG spends kilobytes a point), and carry the data the browser tests
and a reader's tooltips need (`data-run`, `data-verdict`, a <title> per point). Two chart kinds
do not earn a plotting dependency. Every string from a run goes through `markupsafe.escape`.

A long history is drawn lean: the median line and the interval whiskers are one path each, and
only the last DETAILED_POINTS runs and the notable ones (slower, faster, change point, failure)
get a point with its own tooltip; a compact chart gives tooltips to its notable points only, and
marks its other statuses with one path per kind.
"""

from __future__ import annotations

import math
from typing import Sequence

from markupsafe import Markup, escape

from dsabench.analysis.compare import Comparison, Verdict
from dsabench.analysis.stats import CONFIDENCE
from dsabench.present.dashboard.model import CaseSeries, TrendPoint
from dsabench.present.text import fmt_ms as ms

SHORT_SHA = 8
# Runs labelled on a trend chart's x axis at most (every k-th beyond that); all keep tooltips.
MAX_X_LABELS = {True: 8, False: 16}
# Runs with their own point and tooltip at the end of a full chart (older ones: line and whiskers).
DETAILED_POINTS = 60
# Runs a compact chart (trends.html) draws: the latest ones.
COMPACT_POINTS = 60
CHAR_PX = 6.6  # width of one 11 px tick-label character, generously (labels must never clip)


def e(value) -> str:
    return str(escape("" if value is None else value))


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def short(commit: str | None) -> str:
    return commit[:SHORT_SHA] if commit else ""


def when(ts) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC") if ts is not None else "unknown"


def times(value) -> str:
    return f"{value:.3g}x" if finite(value) else "-"


def speedup(row) -> tuple[float, float, float]:
    """(speedup, low, high) = baseline / patched, the inverse of compare's ratio and interval."""
    r, lo, hi = row["ratio"], row["ci_low"], row["ci_high"]
    if not (finite(r) and r > 0):
        return math.nan, math.nan, math.nan
    if finite(lo) and finite(hi) and lo > 0 and hi > 0:
        return 1 / r, 1 / hi, 1 / lo
    return 1 / r, math.nan, math.nan


def _nice_step(span: float, n: int) -> float:
    raw = span / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    return next((m * mag for m in (1, 2, 2.5, 5, 10) if raw <= m * mag), 10 * mag)


def _tick_text(value: float, step: float) -> str:
    """Just enough decimals to tell ticks `step` apart (2.5-steps need one more)."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(step / 10 ** math.floor(math.log10(step) + 1e-9) - 2.5) < 1e-6:
        decimals += 1
    return f"{value:.{min(decimals, 6)}f}"


def linear_ticks(lo: float, hi: float, n: int = 5) -> tuple[float, float, list[float], float]:
    """Nice (lo, hi, ticks, step) covering [lo, hi] with about `n` intervals."""
    if not hi > lo:
        pad = abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, n)
    ticks = [k * step for k in range(math.floor(lo / step), math.ceil(hi / step) + 1)]
    return ticks[0], ticks[-1], ticks, step


def _legend(entries: Sequence[tuple[str, str]], x0: float, y0: float, width: float) -> tuple[str, float]:
    """Flow the (symbol SVG drawn around (0, 0), text) entries into lines; returns (svg, height)."""
    parts, x, y, line_h = [], x0, y0, 16
    for symbol, text in entries:
        w = 22 + CHAR_PX * len(text) + 14
        if x + w > x0 + width and x > x0:
            x, y = x0, y + line_h
        parts.append(f'<g transform="translate({x:.1f},{y:.1f})">{symbol}<text class="legend" x="14" y="4">{e(text)}'
                     "</text></g>")  # fmt: skip
        x += w
    return '<g class="legend-box">' + "".join(parts) + "</g>", y - y0 + line_h


def _fit(text: str, width_px: float, char_px: float) -> str:
    """Text cut with an ellipsis to fit width_px (SVG text does not wrap; the full text stays in
    the chart's <title>)."""
    most = max(4, int(width_px / char_px))
    return text if len(text) <= most else text[: most - 1] + "\u2026"


_SYM = {
    "median": '<line class="median-line" x1="-6" y1="0" x2="8" y2="0"/><circle class="pt" r="4"/>',
    "ci": '<line class="ci" x1="0" y1="-6" x2="0" y2="6"/>',
    "slower": '<circle class="slower" r="6"/>',
    "faster": '<circle class="faster" r="6"/>',
    "cp": '<line class="cp" x1="0" y1="-7" x2="0" y2="7"/>',
    "failed": '<path class="failed" d="M-4,-4L4,4M-4,4L4,-4"/>',
    "finding": '<path class="finding" d="M-4,-4L4,4M-4,4L4,-4"/>',
}


def _point_tip(p: TrendPoint) -> str:
    lines = [f"run {p.run_id}", f"commit {p.commit or 'not recorded'}", f"created {when(p.created_at)}"]
    if p.summary is not None:
        s = p.summary
        lines.append(f"median {ms(s.median)} ms, {s.confidence * 100:g}% CI {ms(s.ci_low)} .. {ms(s.ci_high)} ms, "
                     f"n={s.n}")  # fmt: skip
    else:
        lines.append(f"status {p.status}: {p.finding or p.message or '(no message)'}")
    if p.vs_previous is not None:
        lines.append(f"vs {p.previous_run_id}: {p.vs_previous.verdict.value}, {p.vs_previous.message}")
    elif p.moved is not None:
        lines.append(f"vs {p.previous_run_id}: median {(p.moved - 1) * 100:+.1f}%, not judged")
    return "\n".join(lines)


def trend_svg(series: CaseSeries, *, compact: bool, change_points: bool) -> Markup:
    """The median of each run with the 95% CI of the median, runs in created_at order on x.

    Marks: a red ring where the gate (gate.decide) calls a run slower than the previous ok run, a green
    ring where faster, a dashed orange line before a change point, a cross at the bottom for a
    run where the case did not end ok (red: failed; grey: an expected finding). The y axis is
    fitted to the intervals (it does not start at 0). A compact chart draws the latest
    COMPACT_POINTS runs.
    """
    pts = series.points[-COMPACT_POINTS:] if compact else series.points
    n = len(pts)
    ok = [p.summary for p in pts if p.summary is not None]
    # Sub-millisecond series are drawn in microseconds, so tick labels stay short; tooltips keep ms.
    unit, scale = ("\u00b5s", 1000.0) if ok and max(s.ci_high for s in ok) < 1.0 else ("ms", 1.0)
    if ok:
        lo, hi = min(s.ci_low for s in ok) * scale, max(s.ci_high for s in ok) * scale
        pad = (hi - lo) * 0.08 if hi > lo else max(abs(hi) * 0.02, 1e-6)
        y_lo, y_hi, ticks, step = linear_ticks(max(lo - pad, 0.0), hi + pad, 4 if compact else 6)
    else:
        y_lo, y_hi, ticks, step = 0.0, 1.0, [0.0, 0.5, 1.0], 0.5
    tick_texts = [_tick_text(t, step) for t in ticks]
    width = 440 if compact else 920
    ml = int(34 + CHAR_PX * max(len(t) for t in tick_texts))
    mr, mt = (14, 34) if compact else (24, 44)
    plot_h = 130 if compact else 250
    labels = [short(p.commit) or p.run_id[:18] for p in pts]
    tick_area = 14 + CHAR_PX * max((len(t) for t in labels), default=4) * 0.5 + 8
    entries = [(_SYM["median"], "median"), (_SYM["ci"], f"{CONFIDENCE * 100:g}% CI of median"),
               (_SYM["slower"], "slower than previous run"), (_SYM["faster"], "faster than previous run")]  # fmt: skip
    if change_points:
        entries.append((_SYM["cp"], "change point"))
    if any(p.summary is None and p.finding is None for p in pts):
        entries.append((_SYM["failed"], "case failed in this run"))
    if any(p.summary is None and p.finding is not None for p in pts):
        entries.append((_SYM["finding"], "expected finding (not ok, as expected)"))
    plot_w = width - ml - mr
    legend_y = mt + plot_h + tick_area + 30
    legend, legend_h = _legend(entries, 8, legend_y, width - 16)
    height = int(legend_y + legend_h)

    def x_of(i: int) -> float:
        return ml + (i + 0.5) * plot_w / max(n, 1)

    def y_of(v_ms: float) -> float:
        return mt + plot_h - (v_ms * scale - y_lo) / (y_hi - y_lo) * plot_h

    shown = f"latest {n} of {len(series.points)} runs" if n < len(series.points) else f"{n} run(s)"
    title = (f"Median per run, {shown}" if compact
             else f"{series.case_id} ({series.device}, {series.backend})")  # fmt: skip
    out = [
        f'<svg class="chart trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{e("median latency per run of " + series.case_id)}" data-points="{n}">',
        f"<title>{e(series.case_id + ' on ' + series.device + ', ' + series.backend)}</title>",
        f'<text class="title" x="8" y="18">{e(_fit(title, width - 16, 7.4))}</text>',
    ]
    if not ok:
        out.append(f'<text class="axis-label" x="{ml + plot_w / 2:.1f}" y="{mt + plot_h / 2:.1f}" text-anchor="middle">'
                   "no ok run of this case: nothing to draw but its statuses</text>")  # fmt: skip
    for t, text in zip(ticks, tick_texts):
        y = y_of(t / scale)
        out.append(f'<line class="grid" x1="{ml}" y1="{y:.1f}" x2="{ml + plot_w}" y2="{y:.1f}"/>'
                   f'<text class="tick" x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')  # fmt: skip
    out.append(f'<path class="axis" d="M{ml},{mt}V{mt + plot_h}H{ml + plot_w}"/>')
    out.append(f'<text class="axis-label" transform="translate(16,{mt + plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">median latency ({unit})</text>')  # fmt: skip
    every = max(1, math.ceil(n / MAX_X_LABELS[compact]))
    for i, text in enumerate(labels):
        if (n - 1 - i) % every == 0:  # counted back from the latest run, which is always labelled
            x, y = x_of(i), mt + plot_h + 12
            out.append(f'<text class="tick" transform="translate({x:.1f},{y:.1f}) rotate(-30)" '
                       f'text-anchor="end">{e(text)}</text>')  # fmt: skip
    out.append(f'<text class="axis-label" x="{ml + plot_w / 2:.1f}" y="{legend_y - 12:.1f}" text-anchor="middle">'
               "commit (short SHA, else run id); runs in created_at order</text>")  # fmt: skip
    for i, p in enumerate(pts):  # change points first, so the points are drawn over them
        if p.change_point is not None and i > 0:
            cp, x = p.change_point, (x_of(i - 1) + x_of(i)) / 2
            tip = (f"change point: from run {cp.run_id} on, median {ms(cp.before_median_ms)} -> "
                   f"{ms(cp.after_median_ms)} ms ({cp.rel_change * 100:+.1f}%), p={cp.p_value:.1g}")  # fmt: skip
            out.append(f'<g class="cp-mark" data-run="{e(p.run_id)}"><title>{e(tip)}</title>'
                       f'<line class="cp" x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{mt + plot_h}"/>'
                       f'<text class="tick" x="{x + 3:.1f}" y="{mt + 10}">{cp.rel_change * 100:+.1f}%</text></g>')  # fmt: skip
    line = [f"{x_of(i):.1f},{y_of(p.summary.median):.1f}" for i, p in enumerate(pts) if p.summary is not None]
    if len(line) > 1:
        out.append(f'<polyline class="median-line" points="{" ".join(line)}"/>')
    whiskers = "".join(f"M{x_of(i):.1f},{y_of(p.summary.ci_low):.1f}V{y_of(p.summary.ci_high):.1f}"
                       for i, p in enumerate(pts) if p.summary is not None)  # fmt: skip
    if whiskers:
        out.append(f'<path class="ci" d="{whiskers}"/>')
    r = 3.5 if compact else 4.5
    detailed_from = n - DETAILED_POINTS
    crosses: dict[str, list[str]] = {"failed": [], "finding": []}  # marks without a tooltip of their own
    for i, p in enumerate(pts):
        x = x_of(i)
        detailed = not compact and i >= detailed_from
        if p.summary is None:
            y, kind = mt + plot_h - 8, "failed" if p.finding is None else "finding"
            cross = f"M{x - 4:.1f},{y - 4:.1f}l8,8m-8,0l8,-8"
            if detailed or kind == "failed":
                out.append(f'<g class="{kind}-mark" data-run="{e(p.run_id)}" data-status="{e(p.status)}">'
                           f'<title>{e(_point_tip(p))}</title><path class="{kind}" d="{cross}"/></g>')  # fmt: skip
            else:
                crosses[kind].append(cross)
            continue
        if not (detailed or p.notable):
            continue
        y = y_of(p.summary.median)
        ring = f'<circle class="{p.verdict}" cx="{x:.1f}" cy="{y:.1f}" r="{r + 4}"/>' if p.verdict in (
            Verdict.SLOWER.value, Verdict.FASTER.value) else ""  # fmt: skip
        out.append(f'<g class="point" data-run="{e(p.run_id)}" data-verdict="{e(p.verdict)}">'
                   f"<title>{e(_point_tip(p))}</title>{ring}"
                   f'<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="{r}"/></g>')  # fmt: skip
    for kind, paths in crosses.items():
        if paths:
            out.append(f'<g class="{kind}-mark" data-runs="{len(paths)}"><title>{len(paths)} run(s): '
                       f'{"failed" if kind == "failed" else "expected finding"}; the table and the run pages say which'
                       f'</title><path class="{kind}" d="{"".join(paths)}"/></g>')  # fmt: skip
    out.append(legend)
    out.append("</svg>")
    return Markup("\n".join(out))


def short_labels(keys: Sequence[str]) -> list[str]:
    """Dot-separated ids with the parts every id shares left out ('b64.n65536.graph')."""
    split = [k.split(".") for k in keys]
    if len(keys) < 2 or len({len(s) for s in split}) != 1:
        return list(keys)
    varying = [i for i in range(len(split[0])) if len({s[i] for s in split}) > 1]
    return [".".join(s[i] for i in varying) or k for s, k in zip(split, keys)]


def speedup_svg(comparison: Comparison, title: str) -> Markup:
    """Forest plot: per group, speedup = baseline / patched with the gate's 95% interval (the
    inverse of compare's ratio and interval), on a log axis with a line at 1 (no change).
    Colour is compare's verdict on the patched variant. Pairs without a ratio are not drawn.
    The left margin grows with the longest row label, so no label is ever clipped."""
    rows = []
    for r in comparison.table.to_dict("records"):
        sp, lo, hi = speedup(r)
        if finite(sp):
            rows.append((str(r["case"]), sp, lo, hi, str(r["verdict"])))
    if not rows:
        return Markup("")
    rows.sort(key=lambda t: -t[1])
    labels = short_labels([t[0] for t in rows])
    row_h, mt, mr, plot_w = 22, 44, 70, 560
    ml = int(24 + CHAR_PX * max(len(t) for t in labels))
    width = max(920, ml + plot_w + mr)
    plot_w = width - ml - mr
    plot_h = row_h * len(rows)
    values = [v for t in rows for v in (t[1], t[2], t[3]) if finite(v) and v > 0] + [1.0]
    d_lo, d_hi = min(values) / 1.15, max(values) * 1.15
    ticks = [m * 10.0**k for k in range(-3, 5) for m in (1, 2, 5) if d_lo <= m * 10.0**k <= d_hi]
    if len(ticks) < 3:
        ticks = [t for t in linear_ticks(d_lo, d_hi, 6)[2] if d_lo <= t <= d_hi and t > 0]
    if len(ticks) > 9:
        ticks = ticks[::2]

    def x_of(v: float) -> float:
        return ml + (math.log(v) - math.log(d_lo)) / (math.log(d_hi) - math.log(d_lo)) * plot_w

    verdicts = [v for v in (Verdict.FASTER, Verdict.SAME, Verdict.UNDECIDED, Verdict.SLOWER, Verdict.NOT_COMPARABLE)
                if any(t[4] == v.value for t in rows)]  # fmt: skip
    entries = [(f'<circle class="v-{v.value}" r="4"/>',
                "not comparable" if v == Verdict.NOT_COMPARABLE else f"patched {v.value}") for v in verdicts]  # fmt: skip
    entries.append(('<line class="whisker" x1="-7" y1="0" x2="7" y2="0"/>',
                    f"{comparison.confidence * 100:g}% bootstrap CI"))  # fmt: skip
    legend_y = mt + plot_h + 52
    legend, legend_h = _legend(entries, ml, legend_y, plot_w)
    height = int(legend_y + legend_h)
    out = [
        f'<svg class="chart speedup" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{e(title)}" data-points="{len(rows)}">',
        f"<title>{e(title)}</title>",
        f'<text class="title" x="8" y="18">{e(_fit(title, width - 16, 7.4))}</text>',
    ]
    for t in ticks:
        x = x_of(t)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{mt + plot_h}"/>'
                   f'<text class="tick" x="{x:.1f}" y="{mt + plot_h + 16}" text-anchor="middle">{t:g}x</text>')  # fmt: skip
    x1 = x_of(1.0)
    out.append(f'<line class="one" x1="{x1:.1f}" y1="{mt - 6}" x2="{x1:.1f}" y2="{mt + plot_h}"/>')
    out.append(f'<text class="tick" x="{x1:.1f}" y="{mt - 10}" text-anchor="middle">1x = no change</text>')
    out.append(f'<line class="axis" x1="{ml}" y1="{mt + plot_h}" x2="{ml + plot_w}" y2="{mt + plot_h}"/>')
    out.append(f'<text class="axis-label" x="{ml + plot_w / 2:.1f}" y="{mt + plot_h + 36}" text-anchor="middle">'
               "speedup = baseline median / patched median (x, log scale; &gt; 1: patched faster)</text>")  # fmt: skip
    for i, ((case, sp, lo, hi, verdict), text) in enumerate(zip(rows, labels)):
        y = mt + row_h * (i + 0.5)
        ci = f", CI {times(lo)} .. {times(hi)}" if finite(lo) else ", no interval"
        g = [f'<g class="pair" data-verdict="{e(verdict)}"><title>{e(f"{case}: {times(sp)}{ci}, patched {verdict}")}'
             f'</title><text class="tick" x="{ml - 8}" y="{y + 4:.1f}" text-anchor="end">{e(text)}</text>']  # fmt: skip
        if finite(lo) and finite(hi):
            a, b = x_of(lo), x_of(hi)
            g.append(f'<path class="whisker" d="M{a:.1f},{y:.1f}H{b:.1f}M{a:.1f},{y - 4:.1f}V{y + 4:.1f}'
                     f'M{b:.1f},{y - 4:.1f}V{y + 4:.1f}"/>')  # fmt: skip
        g.append(f'<circle class="pt v-{e(verdict)}" cx="{x_of(sp):.1f}" cy="{y:.1f}" r="4.5"/>')
        right = max(x_of(sp), x_of(hi) if finite(hi) else 0) + 8
        g.append(f'<text class="tick" x="{right:.1f}" y="{y + 4:.1f}">{times(sp)}</text></g>')
        out.append("".join(g))
    out.append(legend)
    out.append("</svg>")
    return Markup("\n".join(out))
