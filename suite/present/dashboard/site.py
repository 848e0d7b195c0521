"""A static HTML dashboard over every run under a results directory: `dsabench dashboard`.

The site is self-contained and fetches nothing: CSS and JavaScript are inlined into each page
(templates in `dashboard_assets/`), charts are inline SVG drawn here, and each page carries a
Content-Security-Policy of `default-src 'none'` that lets only its own two scripts (by hash) and
its own stylesheet run, so a stray URL can neither load nor execute. Pages:

- `index.html`: the latest run of each device model and backend (cases, statuses, and the
  patched-vs-baseline speedups with their intervals), and every run;
- `trends.html`: one chart per case series (device, backend, case), filterable by scenario axis;
- `trend/<series>.html`: one series in full: median per run with the 95% CI of the median,
  run-vs-previous-run verdicts (`compare.judge`), change points (`history`, when apache-otava is
  installed; otherwise a note says how to install it);
- `run/<run>.html`: one run: manifest (command, environment, GPU state and advice), each case
  with status, median, CI, copies and syncs per iteration, message, and its trace file.

This module presents; it computes no statistic of its own. Medians and intervals come from
`stats.summarize`, verdicts from `compare.judge` / `compare.compare_variants`, change points from
`history.find_change_points`. Every string read from a run is HTML-escaped where it is written
(`_e`), and the JSON embedded for the filters has `<`, `>` and `&` escaped as \\u003c etc., so no
run can close a tag or a script block.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import re
import shlex
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping, Sequence
from urllib.parse import quote

import pandas as pd

from dsabench.analysis.compare import DEFAULT_THRESHOLD, Comparison, Decision, Reason, Verdict, compare_variants, judge
from dsabench.errors import DsabenchError, InputError
from dsabench.store.frames import Frame, load_runs
from dsabench.store.schema import measured_git
from dsabench.analysis.history import ChangePoint, MissingDependency, find_change_points
from dsabench.analysis.stats import CONFIDENCE, Summary, summarize
from dsabench.store.rundir import read_records

# Written into DIR on every build; a non-empty DIR without it is refused, so a typo in --out
# cannot overwrite someone's files. With it, the pages of the previous build are removed first.
MARKER = ".dsabench-dashboard"

# Scenario axes the filters offer (in this order), then the ones only some pages have.
FILTER_AXES = ("phase", "batch", "num_blocks", "variant", "graph", "backend", "device", "scenario")

# Characters of a commit SHA shown on axes and in tables (the full SHA is in the tooltip).
SHORT_SHA = 8

# A trend chart labels at most this many runs on its x axis (every k-th beyond that), so the
# rotated labels never overlap; every point keeps its tooltip.
MAX_X_LABELS = {True: 8, False: 24}

STATUS_OK = "ok"


def _e(value) -> str:
    """HTML-escape anything for text or a quoted attribute value (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def _json_for_html(obj) -> str:
    """JSON safe inside <script type="application/json">: `<`, `>`, `&`, U+2028/9 escaped, so
    `</script>` or `<!--` in a run's strings cannot end or alter the block."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char in ("&", "<", ">", "\u2028", "\u2029"):
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _slug(text: str) -> str:
    """A file name for any text: kept as is when already safe and short, otherwise the safe
    characters plus 8 hex digits of its SHA-1, so different texts never share a page."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:120]
    if safe == text and text and not text.startswith("."):
        return text
    return f"{safe.lstrip('.') or 'x'}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def _asset(name: str) -> str:
    return resources.files("dsabench.present.dashboard").joinpath("assets", name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


# ------------------------------------------------------------------------------------ the data


def run_commit(manifest: Mapping) -> tuple[str | None, str | None]:
    """(SHA, commit subject) of what a run measured: the measured checkout's, else the suite's (store.schema)."""
    state = measured_git(manifest)
    return (state.sha, state.message) if state is not None else (None, None)


@dataclass(frozen=True)
class RunInfo:
    """One run (all its shards) as the pages show it."""

    run_id: str
    device: str
    backend: str
    created_at: pd.Timestamp | None
    commit: str | None
    commit_message: str | None
    preset: str | None
    statuses: tuple[tuple[str, int], ...]
    n_cases: int
    shards: tuple[tuple[Path, dict], ...]  # (directory, its manifest), one per shard
    page: str  # relative to DIR

    @property
    def manifest(self) -> dict:
        return self.shards[0][1]


@dataclass(frozen=True)
class TrendPoint:
    """One run of one case series: its summary when ok, and how it compares with the previous
    ok run of the series (vs_previous is None for the first one and for failed runs)."""

    run_id: str
    commit: str | None
    created_at: pd.Timestamp | None
    status: str
    message: str
    summary: Summary | None
    vs_previous: Decision | None = None
    previous_run_id: str | None = None
    change_point: ChangePoint | None = None


@dataclass(frozen=True)
class CaseSeries:
    """Every run of one case on one device model and backend, oldest first."""

    device: str
    backend: str
    case_id: str
    axes: Mapping[str, str]
    points: tuple[TrendPoint, ...]
    page: str  # relative to DIR

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.device, self.backend, self.case_id)

    def count(self, verdict: Verdict) -> int:
        return sum(1 for p in self.points if p.vs_previous is not None and p.vs_previous.verdict == verdict)


@dataclass(frozen=True)
class Dashboard:
    """Everything the pages show, computed once: runs, series, per-run variant comparisons.

    change_note is None when change points were computed, else why not (how to install
    apache-otava). comparisons maps run_id to its patched-vs-baseline Comparison, or to the
    message of why there is none.
    """

    frame: Frame
    runs: Mapping[str, RunInfo]
    series: tuple[CaseSeries, ...]
    comparisons: Mapping[str, Comparison | str]
    summaries: Mapping[tuple[str, str], Summary | None]
    traces: Mapping[tuple[str, str], Path]
    threshold: float
    change_note: str | None
    n_change_points: int
    warnings: tuple[str, ...] = field(default=())


def _axis_value(axis: str, value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if axis == "graph" and str(value) in ("True", "False", "1.0", "0.0"):
        return "graph" if str(value) in ("True", "1.0") else "eager"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _row_axes(row: Mapping, device: str, backend: str) -> dict[str, str]:
    axes = {axis: _axis_value(axis, row.get(axis)) for axis in FILTER_AXES}
    axes["device"], axes["backend"] = device, backend
    return axes


def _label(value, fallback: str = "unknown") -> str:
    return value if isinstance(value, str) and value else fallback


def _timestamp(value) -> pd.Timestamp | None:
    return value if isinstance(value, pd.Timestamp) and not pd.isna(value) else None


def _samples(value) -> list[float]:
    return [float(v) for v in value] if isinstance(value, (list, tuple)) else []


def _trace_files(frame: Frame) -> dict[tuple[str, str], Path]:
    """(run_id, case_id) -> the trace file a record names, where it exists inside its run dir."""
    found: dict[tuple[str, str], Path] = {}
    for run_id, dirs in frame.run_dirs.items():
        for run_dir in dirs:
            records, _ = read_records(run_dir)
            for record in records:
                name = (record.get("trace") or {}).get("file") if isinstance(record.get("trace"), dict) else None
                if not isinstance(name, str) or not name:
                    continue
                root = Path(run_dir).resolve()
                path = (root / name).resolve()
                if path.is_file() and root in path.parents:
                    found[(run_id, record["case_id"])] = path
    return found


def _shards(frame: Frame, run_id: str) -> tuple[tuple[Path, dict], ...]:
    from dsabench.store.rundir import read_manifest  # noqa: PLC0415 - the first shard's is in frame.manifests already

    out = []
    for i, run_dir in enumerate(frame.run_dirs.get(run_id, ())):
        out.append((Path(run_dir), frame.manifests[run_id] if i == 0 else read_manifest(run_dir)))
    return tuple(out) or ((Path("."), frame.manifests[run_id]),)


def _run_device(df: pd.DataFrame, manifest: dict) -> str:
    names = [n for n in df["device_name"].dropna().astype(str).unique() if n]
    if names:
        return " + ".join(sorted(names))
    env = manifest.get("env") if isinstance(manifest.get("env"), dict) else {}
    gpus = env.get("gpus") if isinstance(env.get("gpus"), list) else []
    for gpu in gpus:
        if isinstance(gpu, dict) and gpu.get("name"):
            return str(gpu["name"])
    return _label(None)


def _run_backend(df: pd.DataFrame, manifest: dict) -> str:
    names = [n for n in df["backend"].dropna().astype(str).unique() if n]
    return " + ".join(sorted(names)) if names else _label(manifest.get("backend"))


def _vs_previous(prev: Mapping, row: Mapping, threshold: float) -> Decision:
    """compare.judge on two runs of one case; two clocks are not comparable (as compare_runs says)."""
    if isinstance(prev["clock"], str) and isinstance(row["clock"], str) and prev["clock"] != row["clock"]:
        return Decision(
            Verdict.NOT_COMPARABLE, Reason.CLOCK_DIFFERS,
            f"previous run timed with clock {prev['clock']!r}, this one with {row['clock']!r}",
        )  # fmt: skip
    return judge(_samples(prev["samples_ms"]), _samples(row["samples_ms"]), threshold)


def collect(frame: Frame, threshold: float = DEFAULT_THRESHOLD, change_points: bool = True) -> Dashboard:
    """Runs, case series and variant comparisons of a loaded frame (see the module docstring).

    A series is one case id on one device model and one backend, as in `history`; its runs are
    ordered by created_at, then run_id. Each ok run is judged against the previous ok run of its
    series with `compare.judge` at `threshold`.
    """
    df = frame.df.copy()
    df["device_name"] = df["device_name"].where(df["device_name"].notna(), None)
    summaries: dict[tuple[str, str], Summary | None] = {}
    for row in df.itertuples(index=False):
        samples = _samples(row.samples_ms)
        ok = row.status == STATUS_OK and samples and all(math.isfinite(s) for s in samples)
        summaries[(row.run_id, row.case_id)] = summarize(samples) if ok else None

    runs: dict[str, RunInfo] = {}
    comparisons: dict[str, Comparison | str] = {}
    for run_id, manifest in frame.manifests.items():
        sub = df[df["run_id"] == run_id]
        commit, message = run_commit(manifest)
        counts = sub["status"].value_counts()
        statuses = tuple((str(s), int(counts[s])) for s in sorted(counts.index, key=lambda s: (s != STATUS_OK, s)))
        created = _timestamp(sub["created_at"].iloc[0]) if len(sub) else _timestamp(
            pd.to_datetime(manifest.get("created_at"), utc=True, errors="coerce"))  # fmt: skip
        runs[run_id] = RunInfo(
            run_id, _run_device(sub, manifest), _run_backend(sub, manifest), created, commit, message,
            manifest.get("preset") if isinstance(manifest.get("preset"), str) else None, statuses, len(sub),
            _shards(frame, run_id), f"run/{_slug(run_id)}.html",
        )  # fmt: skip
        try:
            comparisons[run_id] = compare_variants(Frame(sub, {run_id: manifest}), threshold=threshold)
        except DsabenchError as exc:
            comparisons[run_id] = f"no patched-vs-baseline comparison: {exc}"
    epoch = pd.Timestamp(0, tz="UTC")
    order = sorted(runs.values(), key=lambda r: (r.created_at is None, r.created_at or epoch, r.run_id))
    runs = {r.run_id: r for r in order}

    change_note, cps = None, {}
    if change_points:
        try:
            history = find_change_points(frame)
            cps = {(cp.device_name, cp.backend, cp.case_id, cp.run_id): cp for cp in history.change_points}
        except MissingDependency as exc:
            change_note = str(exc)
    else:
        change_note = "change points were not computed (--no-change-points)"

    position = {run_id: i for i, run_id in enumerate(runs)}
    df["_device"] = df["device_name"].fillna("unknown").astype(str)
    df["_backend"] = df["backend"].fillna("unknown").astype(str)
    df["_pos"] = df["run_id"].map(position)
    series: list[CaseSeries] = []
    for (device, backend, case_id), s in df.sort_values("_pos", kind="stable").groupby(
        ["_device", "_backend", "case_id"], sort=True
    ):
        points, prev = [], None
        for row in s.to_dict("records"):
            run = runs[row["run_id"]]
            summary = summaries[(row["run_id"], case_id)]
            decision = _vs_previous(prev, row, threshold) if summary is not None and prev is not None else None
            points.append(
                TrendPoint(
                    row["run_id"], run.commit, run.created_at, str(row["status"]), _label(row["message"], ""), summary,
                    decision, prev["run_id"] if decision is not None else None,
                    cps.get((device, backend, case_id, row["run_id"])),
                )  # fmt: skip
            )
            if summary is not None:
                prev = row
        last = s.iloc[-1].to_dict()
        series.append(
            CaseSeries(device, backend, str(case_id), _row_axes(last, device, backend), tuple(points),
                       f"trend/{_slug(f'{backend}.{device}.{case_id}')}.html")  # fmt: skip
        )
    return Dashboard(
        frame, runs, tuple(series), comparisons, summaries, _trace_files(frame), threshold, change_note,
        len(cps), tuple(frame.warnings),
    )  # fmt: skip


# ---------------------------------------------------------------------------------- formatting


def _short(commit: str | None) -> str:
    return commit[:SHORT_SHA] if commit else ""


def _when(ts: pd.Timestamp | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC") if ts is not None else "unknown"


def _ms(value) -> str:
    return f"{value:#.4g}" if _finite(value) else "-"


def _count(value) -> str:
    return f"{value:g}" if _finite(value) else "-"


def _speedup(row: Mapping) -> tuple[float, float, float]:
    """(speedup, low, high) = baseline / patched, the inverse of compare's ratio and interval."""
    r, lo, hi = row["ratio"], row["ci_low"], row["ci_high"]
    if not (_finite(r) and r > 0):
        return math.nan, math.nan, math.nan
    if _finite(lo) and _finite(hi) and lo > 0 and hi > 0:
        return 1 / r, 1 / hi, 1 / lo
    return 1 / r, math.nan, math.nan


def _times(value) -> str:
    return f"{value:.3g}x" if _finite(value) else "-"


def _status_badge(status: str) -> str:
    kind = "ok" if status == STATUS_OK else ("other" if status in ("unsupported", "invalid") else "bad")
    return f'<span class="status status-{kind}">{_e(status)}</span>'


def _verdict(verdict: str | None) -> str:
    if not verdict:
        return ""
    return f'<span class="verdict-{_e(verdict)}">{_e(verdict)}</span>'


def _statuses(run: RunInfo) -> str:
    return " ".join(f"{_status_badge(s)}&nbsp;{n}" for s, n in run.statuses) or "no cases"


def _commit_cell(commit: str | None, message: str | None) -> str:
    if not commit:
        return '<span class="muted">not recorded</span>'
    tip = f"{commit}\n{message}" if message else commit
    text = f'<code title="{_e(tip)}">{_e(_short(commit))}</code>'
    return text + (f" {_e(message)}" if message else "")


# ---------------------------------------------------------------------------------- SVG charts


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _tick_text(value: float, step: float) -> str:
    """Just enough decimals to tell ticks `step` apart (2.5-steps need one more)."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    if abs(mantissa - 2.5) < 1e-6:
        decimals += 1
    return f"{value:.{min(decimals, 6)}f}"


def _linear_ticks(lo: float, hi: float, count: int = 5) -> tuple[float, float, list[float], float]:
    """Nice (lo, hi, ticks, step) covering [lo, hi] with about `count` intervals."""
    if not hi > lo:
        pad = abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, count)
    start, stop = math.floor(lo / step), math.ceil(hi / step)
    ticks = [k * step for k in range(start, stop + 1)]
    return ticks[0], ticks[-1], ticks, step


def _legend(entries: Sequence[tuple[str, str]], x0: float, y0: float, width: float) -> tuple[str, float]:
    """Flow the (symbol SVG drawn around (0, 0), text) entries into lines; returns (svg, height)."""
    parts, x, y, line_h = [], x0, y0, 16
    for symbol, text in entries:
        w = 22 + 6.2 * len(text) + 14
        if x + w > x0 + width and x > x0:
            x, y = x0, y + line_h
        parts.append(
            f'<g transform="translate({x:.1f},{y:.1f})">{symbol}<text class="legend" x="14" y="4">{_e(text)}</text></g>'
        )
        x += w
    return '<g class="legend-box">' + "".join(parts) + "</g>", y - y0 + line_h


_SYM_MEDIAN = '<line class="median-line" x1="-6" y1="0" x2="8" y2="0"/><circle class="pt" r="4"/>'
_SYM_CI = (
    '<line class="ci" x1="0" y1="-6" x2="0" y2="6"/><line class="ci" x1="-3" y1="-6" x2="3" y2="-6"/>'
    '<line class="ci" x1="-3" y1="6" x2="3" y2="6"/>'
)
_SYM_SLOWER = '<circle class="slower" r="6"/>'
_SYM_FASTER = '<circle class="faster" r="6"/>'
_SYM_CP = '<line class="cp" x1="0" y1="-7" x2="0" y2="7"/>'
_SYM_FAILED = '<path class="failed" d="M-4,-4L4,4M-4,4L4,-4"/>'


def _point_tip(p: TrendPoint) -> str:
    lines = [f"run {p.run_id}", f"commit {p.commit or 'not recorded'}", f"created {_when(p.created_at)}"]
    if p.summary is not None:
        s = p.summary
        ci = f"{s.confidence * 100:g}% CI {_ms(s.ci_low)} .. {_ms(s.ci_high)} ms"
        lines.append(f"median {_ms(s.median)} ms, {ci}, n={s.n}")
    else:
        lines.append(f"status {p.status}: {p.message or '(no message)'}")
    if p.vs_previous is not None:
        lines.append(f"vs {p.previous_run_id}: {p.vs_previous.verdict.value}, {p.vs_previous.message}")
    return "\n".join(lines)


def trend_svg(series: CaseSeries, *, compact: bool, change_points: bool) -> str:
    """The median of each run with the 95% CI of the median, runs in created_at order on x.

    Marks: a red ring where compare.judge calls a run slower than the previous ok run, a green
    ring where faster, a dashed orange line before a change point, a red cross at the bottom for
    a run where the case failed. The y axis is fitted to the intervals (it does not start at 0).
    """
    pts = series.points
    n = len(pts)
    ok = [p.summary for p in pts if p.summary is not None]
    # Sub-millisecond series are drawn in microseconds, so tick labels stay short; tooltips keep ms.
    unit, scale = ("\u00b5s", 1000.0) if ok and max(s.ci_high for s in ok) < 1.0 else ("ms", 1.0)
    if ok:
        lo, hi = min(s.ci_low for s in ok) * scale, max(s.ci_high for s in ok) * scale
        pad = (hi - lo) * 0.08 if hi > lo else max(abs(hi) * 0.02, 1e-6)
        y_lo, y_hi, ticks, step = _linear_ticks(max(lo - pad, 0.0), hi + pad, 4 if compact else 6)
    else:
        y_lo, y_hi, ticks, step = 0.0, 1.0, [0.0, 0.5, 1.0], 0.5
    tick_texts = [_tick_text(t, step) for t in ticks]
    width = 440 if compact else 920
    ml = int(34 + 6.4 * max(len(t) for t in tick_texts))
    mr, mt = (14, 34) if compact else (24, 44)
    plot_h = 130 if compact else 250
    labels = [_short(p.commit) or p.run_id[:18] for p in pts]
    longest = max((len(t) for t in labels), default=4)
    tick_area = 14 + 6.0 * longest * 0.5 + 8
    entries = [(_SYM_MEDIAN, "median"), (_SYM_CI, f"{CONFIDENCE * 100:g}% CI of median"),
               (_SYM_SLOWER, "slower than previous run"), (_SYM_FASTER, "faster than previous run")]  # fmt: skip
    if change_points:
        entries.append((_SYM_CP, "change point"))
    if any(p.summary is None for p in pts):
        entries.append((_SYM_FAILED, "case failed in this run"))
    plot_w = width - ml - mr
    legend_y = mt + plot_h + tick_area + 30
    legend, legend_h = _legend(entries, 8, legend_y, width - 16)
    height = int(legend_y + legend_h)

    def x_of(i: int) -> float:
        return ml + (i + 0.5) * plot_w / max(n, 1)

    def y_of(v_ms: float) -> float:
        return mt + plot_h - (v_ms * scale - y_lo) / (y_hi - y_lo) * plot_h

    title = (f"Median per run: {series.device}, {series.backend}" if compact
             else f"{series.case_id} ({series.device}, {series.backend})")  # fmt: skip
    out = [
        f'<svg class="chart trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e("median latency per run of " + series.case_id)}" data-points="{n}">',
        f"<title>{_e(series.case_id + ' on ' + series.device + ', ' + series.backend)}</title>",
        f'<text class="title" x="8" y="18">{_e(_fit(title, width - 16, 7.4))}</text>',
    ]
    if not ok:
        out.append(f'<text class="axis-label" x="{ml + plot_w / 2:.1f}" y="{mt + plot_h / 2:.1f}" text-anchor="middle">'
                   "no ok run of this case: nothing to draw but failures</text>")  # fmt: skip
    for t, text in zip(ticks, tick_texts):
        y = y_of(t / scale)
        out.append(f'<line class="grid" x1="{ml}" y1="{y:.1f}" x2="{ml + plot_w}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
    out.append(f'<line class="axis" x1="{ml}" y1="{mt}" x2="{ml}" y2="{mt + plot_h}"/>')
    out.append(f'<line class="axis" x1="{ml}" y1="{mt + plot_h}" x2="{ml + plot_w}" y2="{mt + plot_h}"/>')
    cy = mt + plot_h / 2
    out.append(f'<text class="axis-label" transform="translate(16,{cy:.1f}) rotate(-90)" '
               f'text-anchor="middle">median latency ({unit})</text>')  # fmt: skip
    every = max(1, math.ceil(n / MAX_X_LABELS[compact]))
    for i, text in enumerate(labels):
        x, y = x_of(i), mt + plot_h + 12
        out.append(f'<line class="axis" x1="{x:.1f}" y1="{mt + plot_h}" x2="{x:.1f}" y2="{mt + plot_h + 4}"/>')
        if i % every == 0 or i == n - 1:
            out.append(f'<text class="tick" transform="translate({x:.1f},{y:.1f}) rotate(-30)" '
                       f'text-anchor="end">{_e(text)}</text>')  # fmt: skip
    out.append(f'<text class="axis-label" x="{ml + plot_w / 2:.1f}" y="{legend_y - 12:.1f}" text-anchor="middle">'
               "commit (short SHA, else run id); runs in created_at order</text>")  # fmt: skip
    # change points first, so the points are drawn over them
    for i, p in enumerate(pts):
        if p.change_point is not None and i > 0:
            cp = p.change_point
            x = (x_of(i - 1) + x_of(i)) / 2
            tip = (f"change point: from run {cp.run_id} on, median {_ms(cp.before_median_ms)} -> "
                   f"{_ms(cp.after_median_ms)} ms ({cp.rel_change * 100:+.1f}%), p={cp.p_value:.1g}")  # fmt: skip
            out.append(f'<g class="cp-mark" data-run="{_e(p.run_id)}"><title>{_e(tip)}</title>'
                       f'<line class="cp" x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{mt + plot_h}"/>'
                       f'<text class="tick" x="{x + 3:.1f}" y="{mt + 10}">{cp.rel_change * 100:+.1f}%</text>'
                       "</g>")  # fmt: skip
    line = [f"{x_of(i):.1f},{y_of(p.summary.median):.1f}" for i, p in enumerate(pts) if p.summary is not None]
    if len(line) > 1:
        out.append(f'<polyline class="median-line" points="{" ".join(line)}"/>')
    r = 3.5 if compact else 4.5
    for i, p in enumerate(pts):
        x = x_of(i)
        tip = f"<title>{_e(_point_tip(p))}</title>"
        if p.summary is None:
            y = mt + plot_h - 8
            cross = f"M{x - 4:.1f},{y - 4:.1f}L{x + 4:.1f},{y + 4:.1f}M{x - 4:.1f},{y + 4:.1f}L{x + 4:.1f},{y - 4:.1f}"
            out.append(f'<g class="failed-mark" data-run="{_e(p.run_id)}" data-status="{_e(p.status)}">{tip}'
                       f'<path class="failed" d="{cross}"/></g>')  # fmt: skip
            continue
        s = p.summary
        y, y1, y2 = y_of(s.median), y_of(s.ci_low), y_of(s.ci_high)
        verdict = p.vs_previous.verdict.value if p.vs_previous is not None else ""
        g = [f'<g class="point" data-run="{_e(p.run_id)}" data-verdict="{_e(verdict)}">{tip}']
        g.append(f'<line class="ci" x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}"/>')
        for yy in (y1, y2):
            g.append(f'<line class="ci" x1="{x - 3:.1f}" y1="{yy:.1f}" x2="{x + 3:.1f}" y2="{yy:.1f}"/>')
        if verdict in (Verdict.SLOWER.value, Verdict.FASTER.value):
            g.append(f'<circle class="{verdict}" cx="{x:.1f}" cy="{y:.1f}" r="{r + 4}"/>')
        g.append(f'<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="{r}"/></g>')
        out.append("".join(g))
    out.append(legend)
    out.append("</svg>")
    return "\n".join(out)


def _fit(text: str, width_px: float, char_px: float) -> str:
    """Text cut with an ellipsis to fit width_px at about char_px a character (SVG text does
    not wrap; the full text stays in the chart's <title>)."""
    most = max(4, int(width_px / char_px))
    return text if len(text) <= most else text[: most - 1] + "\u2026"


def _short_labels(keys: Sequence[str]) -> list[str]:
    """Dot-separated ids with the parts every id shares left out ('b64.n65536.graph')."""
    split = [k.split(".") for k in keys]
    if len(keys) < 2 or len({len(s) for s in split}) != 1:
        return list(keys)
    varying = [i for i in range(len(split[0])) if len({s[i] for s in split}) > 1]
    return [".".join(s[i] for i in varying) or k for s, k in zip(split, keys)]


def speedup_svg(comparison: Comparison, title: str) -> str:
    """Forest plot: per group, speedup = baseline median / patched median with its 95% bootstrap
    interval (the inverse of compare's ratio), on a log axis with a line at 1 (no change).
    Colour is compare's verdict on the patched variant. Pairs without a ratio are not drawn."""
    rows = []
    for r in comparison.table.to_dict("records"):
        sp, lo, hi = _speedup(r)
        if _finite(sp):
            rows.append((str(r["case"]), sp, lo, hi, str(r["verdict"])))
    if not rows:
        return ""
    rows.sort(key=lambda t: -t[1])
    labels = _short_labels([t[0] for t in rows])
    width, row_h, mt = 920, 22, 44
    ml = int(min(360, 16 + 6.4 * max(len(t) for t in labels)))
    mr = 70
    plot_w = width - ml - mr
    plot_h = row_h * len(rows)
    values = [v for t in rows for v in (t[1], t[2], t[3]) if _finite(v) and v > 0] + [1.0]
    d_lo, d_hi = min(values) / 1.15, max(values) * 1.15
    ticks = [m * 10.0**k for k in range(-3, 5) for m in (1, 2, 5) if d_lo <= m * 10.0**k <= d_hi]
    if len(ticks) < 3:
        ticks = [t for t in _linear_ticks(d_lo, d_hi, 6)[2] if d_lo <= t <= d_hi and t > 0]
    if len(ticks) > 9:
        ticks = ticks[::2]

    def x_of(v: float) -> float:
        return ml + (math.log(v) - math.log(d_lo)) / (math.log(d_hi) - math.log(d_lo)) * plot_w

    verdicts = [v for v in (Verdict.FASTER, Verdict.SAME, Verdict.UNDECIDED, Verdict.SLOWER, Verdict.NOT_COMPARABLE)
                if any(t[4] == v.value for t in rows)]  # fmt: skip
    names = {v: "not comparable" if v == Verdict.NOT_COMPARABLE else f"patched {v.value}" for v in verdicts}
    entries = [(f'<circle class="v-{v.value}" r="4"/>', names[v]) for v in verdicts]
    entries.append(('<line class="whisker" x1="-7" y1="0" x2="7" y2="0"/>',
                    f"{comparison.confidence * 100:g}% bootstrap CI"))  # fmt: skip
    legend_y = mt + plot_h + 52
    legend, legend_h = _legend(entries, ml, legend_y, plot_w)
    height = int(legend_y + legend_h)
    out = [
        f'<svg class="chart speedup" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(title)}" data-points="{len(rows)}">',
        f"<title>{_e(title)}</title>",
        f'<text class="title" x="8" y="18">{_e(_fit(title, width - 16, 7.4))}</text>',
    ]
    for t in ticks:
        x = x_of(t)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{mt + plot_h}"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{mt + plot_h + 16}" text-anchor="middle">{t:g}x</text>')
    x1 = x_of(1.0)
    out.append(f'<line class="one" x1="{x1:.1f}" y1="{mt - 6}" x2="{x1:.1f}" y2="{mt + plot_h}"/>')
    out.append(f'<text class="tick" x="{x1:.1f}" y="{mt - 10}" text-anchor="middle">1x = no change</text>')
    out.append(f'<line class="axis" x1="{ml}" y1="{mt + plot_h}" x2="{ml + plot_w}" y2="{mt + plot_h}"/>')
    out.append(f'<text class="axis-label" x="{ml + plot_w / 2:.1f}" y="{mt + plot_h + 36}" text-anchor="middle">'
               "speedup = baseline median / patched median (x, log scale; &gt; 1: patched faster)</text>")  # fmt: skip
    for i, ((case, sp, lo, hi, verdict), label) in enumerate(zip(rows, labels)):
        y = mt + row_h * (i + 0.5)
        ci = f", CI {_times(lo)} .. {_times(hi)}" if _finite(lo) else ", no interval"
        tip = f"{case}: {_times(sp)}{ci}, patched {verdict}"
        g = [f'<g class="pair" data-verdict="{_e(verdict)}"><title>{_e(tip)}</title>']
        g.append(f'<text class="tick" x="{ml - 8}" y="{y + 4:.1f}" text-anchor="end">{_e(label)}</text>')
        if _finite(lo) and _finite(hi):
            g.append(f'<line class="whisker" x1="{x_of(lo):.1f}" y1="{y:.1f}" x2="{x_of(hi):.1f}" y2="{y:.1f}"/>')
            for xx in (x_of(lo), x_of(hi)):
                g.append(f'<line class="whisker" x1="{xx:.1f}" y1="{y - 4:.1f}" x2="{xx:.1f}" y2="{y + 4:.1f}"/>')
        g.append(f'<circle class="pt v-{_e(verdict)}" cx="{x_of(sp):.1f}" cy="{y:.1f}" r="4.5"/>')
        right = max(x_of(sp), x_of(hi) if _finite(hi) else 0) + 8
        g.append(f'<text class="tick" x="{right:.1f}" y="{y + 4:.1f}">{_times(sp)}</text></g>')
        out.append("".join(g))
    out.append(legend)
    out.append("</svg>")
    return "\n".join(out)


# ------------------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class _Assets:
    css: str
    errors_js: str
    js: str

    @property
    def csp(self) -> str:
        return (
            f"default-src 'none'; script-src {_csp_hash(self.errors_js)} {_csp_hash(self.js)}; "
            f"style-src {_csp_hash(self.css)}; img-src 'none'; connect-src 'none'; font-src 'none'; "
            "base-uri 'none'; form-action 'none'"
        )


def _load_assets() -> _Assets:
    """The inlined templates; each must be safe inside its <style>/<script> element."""
    assets = _Assets(_asset("dashboard.css"), _asset("errors.js"), _asset("dashboard.js"))
    for name, text in (("dashboard.css", assets.css), ("errors.js", assets.errors_js), ("dashboard.js", assets.js)):
        if re.search(r"</?(script|style)|<!--", text, re.I):
            raise InputError(f"dashboard_assets/{name}: holds '<script', '</style' or '<!--', which would end or "
                             "alter its inline element; reword it")  # fmt: skip
    return assets


def _page(assets: _Assets, title: str, body: str, *, depth: int, data: Mapping) -> str:
    up = "../" * depth
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_e(assets.csp)}">
<title>{_e(title)} - dsabench</title>
<style>{assets.css}</style>
<script>{assets.errors_js}</script>
</head>
<body>
<header class="top"><span class="brand">dsabench</span>
<a href="{up}index.html">Latest runs</a><a href="{up}trends.html">Trends</a></header>
<main>
<pre id="js-errors" hidden></pre>
{body}
</main>
<script type="application/json" id="dsabench-data">{_json_for_html(data)}</script>
<script>{assets.js}</script>
</body>
</html>
"""


def _filter_bar() -> str:
    return ('<div id="filters" aria-label="filters"></div>'
            '<p class="filter-meta"><span id="filter-count"></span> <a id="filter-link" href="#">link to this view</a> '
            '<span id="filter-note"></span></p>')  # fmt: skip


def _change_note(dash: Dashboard) -> str:
    if dash.change_note is None:
        return (f'<p class="muted">Change points: E-divisive via apache-otava ({dash.n_change_points} found); '
                "dashed orange lines mark the first run after a shift.</p>")  # fmt: skip
    return (f'<p class="note" id="change-point-note">Change points are not marked: {_e(dash.change_note)}. '
            "Change points need <code>pip install --no-deps apache-otava</code>.</p>")  # fmt: skip


def _speedup_section(dash: Dashboard, run: RunInfo) -> str:
    comp = dash.comparisons.get(run.run_id)
    if not isinstance(comp, Comparison):
        return f'<p class="muted">{_e(comp or "no comparison")}</p>'
    t = comp.table
    if not len(t):
        return '<p class="muted">No baseline/patched pairs in this run.</p>'
    counts = ", ".join(f"{n} {_verdict(v)}" for v, n in comp.counts().items())
    parts = [f"<p>Patched vs baseline, {len(t)} group(s): {counts}. Speedup = baseline median / patched median; "
             f"the interval is the {comp.confidence * 100:g}% bootstrap interval of compare's ratio, inverted; "
             f"a verdict needs the whole interval beyond +-{comp.threshold * 100:.1f}%.</p>"]  # fmt: skip
    parts.append(speedup_svg(comp, f"Patched vs baseline speedup in run {run.run_id} ({run.device}, {run.backend})"))
    rows = []
    for r in t.to_dict("records"):
        sp, lo, hi = _speedup(r)
        ci = f"{_times(lo)} .. {_times(hi)}" if _finite(lo) else "-"
        rows.append(
            f'<tr><td class="case mono">{_e(r["case"])}</td><td class="num">{_ms(r["base_median_ms"])}</td>'
            f'<td class="num">{_ms(r["cand_median_ms"])}</td><td class="num">{_times(sp)}</td><td class="num">{ci}</td>'
            f'<td>{_verdict(r["verdict"])}</td><td class="msg">{_e(r["message"])}</td></tr>'
        )
    parts.append(
        '<table class="speedups"><thead><tr><th>group</th><th class="num">baseline ms</th>'
        '<th class="num">patched ms</th><th class="num">speedup</th>'
        f'<th class="num">{comp.confidence * 100:g}% CI</th><th>verdict</th><th>note</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return "\n".join(parts)


def _has_pairs(comp: Comparison | str | None) -> bool:
    """Whether a comparison paired at least one group (both variants present, whatever the status)."""
    if not isinstance(comp, Comparison) or not len(comp.table):
        return False
    return bool((comp.table["base_status"].notna() & comp.table["cand_status"].notna()).any())


def render_index(dash: Dashboard, assets: _Assets) -> str:
    groups: dict[tuple[str, str], list[RunInfo]] = {}
    for run in dash.runs.values():
        groups.setdefault((run.device, run.backend), []).append(run)
    body = ["<h1>dsabench: latest runs</h1>",
            f'<p class="muted">{len(dash.runs)} run(s) in {len(groups)} device/backend pair(s), '
            f'{len(dash.series)} case series. <a href="trends.html">Trends of every case</a>.</p>']  # fmt: skip
    body.extend(f'<p class="warning">{_e(w)}</p>' for w in dash.warnings)
    for (device, backend), runs in sorted(groups.items()):
        latest = runs[-1]
        paired = next((r for r in reversed(runs) if _has_pairs(dash.comparisons.get(r.run_id))), None)
        last_points = [s.points[-1] for s in dash.series if (s.device, s.backend) == (device, backend)]
        slower = sum(1 for p in last_points if p.run_id == latest.run_id
                     and p.vs_previous is not None and p.vs_previous.verdict == Verdict.SLOWER)  # fmt: skip
        body.append(f'<section class="block latest" data-device="{_e(device)}" data-backend="{_e(backend)}">')
        body.append(f"<h2>{_e(device)} &middot; {_e(backend)}</h2>")
        body.append(
            '<dl class="kv">'
            f'<dt>latest run</dt><dd><a href="{_e(latest.page)}">{_e(latest.run_id)}</a> '
            f"({len(runs)} run(s) in all)</dd>"
            f"<dt>created</dt><dd>{_e(_when(latest.created_at))}</dd>"
            f"<dt>commit</dt><dd>{_commit_cell(latest.commit, latest.commit_message)}</dd>"
            f"<dt>preset</dt><dd>{_e(latest.preset or '-')}</dd>"
            f"<dt>cases</dt><dd>{latest.n_cases}: {_statuses(latest)}</dd>"
            f"<dt>vs previous run</dt><dd>{slower} case(s) slower than in the previous run of the case</dd>"
            "</dl>"
        )
        if paired is None:
            body.append('<p class="muted">No run of this device and backend has baseline/patched pairs.</p>')
        else:
            if paired is not latest:
                body.append(f'<p class="muted">The latest run has no baseline/patched pairs; these are from '
                            f'<a href="{_e(paired.page)}">{_e(paired.run_id)}</a> ({_e(_when(paired.created_at))}), '
                            "the latest run that has them.</p>")  # fmt: skip
            body.append(_speedup_section(dash, paired))
        body.append("</section>")
    body.append("<h2>All runs</h2>")
    body.append(_filter_bar())
    rows, items = [], []
    for i, run in enumerate(reversed(list(dash.runs.values()))):
        el = f"run-{i}"
        items.append({"el": el, "device": run.device, "backend": run.backend, "preset": run.preset or ""})
        rows.append(
            f'<tr id="{el}" data-filter-item><td><a href="{_e(run.page)}">{_e(run.run_id)}</a></td>'
            f"<td>{_e(_when(run.created_at))}</td><td>{_e(run.device)}</td><td>{_e(run.backend)}</td>"
            f"<td>{_commit_cell(run.commit, None)}</td><td>{_e(run.preset or '-')}</td>"
            f'<td class="num">{run.n_cases}</td><td>{_statuses(run)}</td><td class="num">{len(run.shards)}</td></tr>'
        )
    body.append('<table class="runs"><thead><tr><th>run</th><th>created</th><th>device</th><th>backend</th>'
                '<th>commit</th><th>preset</th><th class="num">cases</th><th>statuses</th><th class="num">shards</th>'
                '</tr></thead>'
                f"<tbody>{''.join(rows)}</tbody></table>")  # fmt: skip
    data = {"page": "index", "axes": ["device", "backend", "preset"], "items": items,
            "runs": [{"run_id": r.run_id, "page": r.page, "device": r.device, "backend": r.backend,
                      "commit": r.commit, "created_at": r.created_at.isoformat() if r.created_at is not None else None,
                      "statuses": dict(r.statuses)} for r in dash.runs.values()]}  # fmt: skip
    return _page(assets, "latest runs", "\n".join(body), depth=0, data=data)


def _series_item(s: CaseSeries, el: str) -> dict:
    return {"el": el, **dict(s.axes), "case": s.case_id, "page": s.page,
            "slower": s.count(Verdict.SLOWER), "change_points": sum(1 for p in s.points if p.change_point)}  # fmt: skip


def render_trends(dash: Dashboard, assets: _Assets) -> str:
    body = ["<h1>Trends: each case's median over runs</h1>",
            f"<p>{len(dash.series)} case series (one per case, device model and backend), runs ordered by created_at. "
            f"Red rings: <code>compare.judge</code> calls the run slower than the previous ok run of the case "
            f"(whole {CONFIDENCE * 100:g}% interval of the ratio beyond +-{dash.threshold * 100:.1f}%); "
            "green rings: faster.</p>",
            _change_note(dash), _filter_bar()]  # fmt: skip
    items = []
    groups: dict[tuple[str, str], list[CaseSeries]] = {}
    # Series that need a look first (slower runs, change points), then the longest histories.
    ranked = sorted(dash.series, key=lambda s: (-(s.count(Verdict.SLOWER) + sum(1 for p in s.points if p.change_point)),
                                                -len(s.points), s.case_id))  # fmt: skip
    for s in ranked:
        groups.setdefault((s.device, s.backend), []).append(s)
    k = 0
    for (device, backend), members in sorted(groups.items()):
        body.append(f'<section data-filter-section><h2>{_e(device)} &middot; {_e(backend)} '
                    f'<span class="muted">({len(members)} series)</span></h2><div class="cards">')  # fmt: skip
        for s in members:
            el = f"series-{k}"
            k += 1
            items.append(_series_item(s, el))
            flags = []
            if s.count(Verdict.SLOWER):
                flags.append(f'<span class="verdict-slower">{s.count(Verdict.SLOWER)} slower</span>')
            cps = sum(1 for p in s.points if p.change_point)
            if cps:
                flags.append(f"{cps} change point(s)")
            body.append(
                f'<div class="card" id="{el}" data-filter-item>'
                f'<div class="case-id"><a class="mono" href="{_e(s.page)}">{_e(s.case_id)}</a> '
                f'<span class="muted">{_e(s.axes.get("scenario", ""))}, {len(s.points)} run(s)</span> '
                f'{" ".join(flags)}</div>'
                f"{trend_svg(s, compact=True, change_points=dash.change_note is None)}</div>"
            )
        body.append("</div></section>")
    data = {"page": "trends", "axes": list(FILTER_AXES), "items": items}
    return _page(assets, "trends", "\n".join(body), depth=0, data=data)


def render_trend_page(dash: Dashboard, s: CaseSeries, assets: _Assets) -> str:
    body = [f'<h1 class="mono">{_e(s.case_id)}</h1>',
            f'<p>{_e(s.device)} &middot; {_e(s.backend)} &middot; scenario {_e(s.axes.get("scenario", "-"))} '
            f'&middot; {len(s.points)} run(s). <a href="../trends.html">All trends</a>.</p>',
            _change_note(dash), trend_svg(s, compact=False, change_points=dash.change_note is None)]  # fmt: skip
    rows, points = [], []
    for p in s.points:
        run = dash.runs[p.run_id]
        sm = p.summary
        ci = f"{_ms(sm.ci_low)} .. {_ms(sm.ci_high)}" if sm is not None else "-"
        vs = (f"{_verdict(p.vs_previous.verdict.value)} <span class=\"muted\">{_e(p.vs_previous.message)}</span>"
              if p.vs_previous is not None else "")  # fmt: skip
        cp = ""
        if p.change_point is not None:
            c = p.change_point
            cp = (f"change point: {_ms(c.before_median_ms)} -> {_ms(c.after_median_ms)} ms "
                  f"({c.rel_change * 100:+.1f}%, p={c.p_value:.1g})")  # fmt: skip
        rows.append(
            f'<tr data-run="{_e(p.run_id)}"><td><a href="../{_e(run.page)}">{_e(p.run_id)}</a></td>'
            f"<td>{_commit_cell(p.commit, run.commit_message)}</td><td>{_e(_when(p.created_at))}</td>"
            f"<td>{_status_badge(p.status)}</td><td class=\"num\">{_ms(sm.median if sm else None)}</td>"
            f'<td class="num">{ci}</td><td class="num">{sm.n if sm else "-"}</td><td>{vs}</td>'
            f'<td class="msg">{_e(cp)}{_e(p.message) if p.summary is None else ""}</td></tr>'
        )
        points.append({"run_id": p.run_id, "commit": p.commit, "status": p.status,
                       "median_ms": sm.median if sm else None, "ci_low_ms": sm.ci_low if sm else None,
                       "ci_high_ms": sm.ci_high if sm else None,
                       "vs_previous": p.vs_previous.verdict.value if p.vs_previous else None,
                       "change_point": p.change_point is not None})  # fmt: skip
    body.append('<table class="points"><thead><tr><th>run</th><th>commit</th><th>created</th><th>status</th>'
                f'<th class="num">median ms</th><th class="num">{CONFIDENCE * 100:g}% CI ms</th><th class="num">n</th>'
                "<th>vs previous run</th><th>note</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>")  # fmt: skip
    data = {"page": "trend", "case": s.case_id, "device": s.device, "backend": s.backend, "axes": [], "items": [],
            "points": points}  # fmt: skip
    return _page(assets, s.case_id, "\n".join(body), depth=1, data=data)


def _command(value) -> str:
    if isinstance(value, list):
        return shlex.join(str(v) for v in value)
    return str(value) if value is not None else "-"


def _kv(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list; values must already be HTML (escape them first)."""
    return '<dl class="kv">' + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _plain(value) -> str:
    if isinstance(value, (dict, list)):
        return f"<code>{_e(json.dumps(value, sort_keys=True, default=str))}</code>"
    return _e("-" if value is None else value)


def _unit(value, unit: str) -> str:
    return _plain(value) + (f" {_e(unit)}" if value is not None else "")


def _shard(value) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return _e(f"{value[0]}/{value[1]}")
    return _e("-" if value is None else value)


def _gpu_section(env: Mapping) -> str:
    gpus = [g for g in env.get("gpus") or [] if isinstance(g, dict)]
    if not gpus:
        return '<p class="muted">No GPU state recorded (no NVML, or a CPU run).</p>'
    out = []
    for g in gpus:
        advice = [a for a in g.get("advice") or []]
        clocks = (f"SM {_plain(g.get('sm_clock_mhz'))} / {_plain(g.get('sm_clock_max_mhz'))} MHz, "
                  f"memory {_plain(g.get('mem_clock_mhz'))} / {_plain(g.get('mem_clock_max_mhz'))} MHz")  # fmt: skip
        out.append(f"<h3>GPU {_plain(g.get('index'))}: {_e(g.get('name'))}</h3>")
        out.append(_kv([
            ("uuid", _plain(g.get("uuid"))), ("driver", _plain(g.get("driver"))),
            ("CUDA driver", _plain(g.get("cuda_driver"))), ("memory", _unit(g.get("memory_total_bytes"), "bytes")),
            ("clocks (now / max)", clocks),
            ("throttle reasons", _e(", ".join(map(str, g.get("throttle_reasons") or [])) or "none")),
            ("persistence mode", _plain(g.get("persistence_mode"))),
            ("temperature", _unit(g.get("temperature_c"), "C")),
            ("other processes", _plain(g.get("other_processes"))),
        ]))  # fmt: skip
        if advice:
            items = "".join(f"<li>{_e(a)}</li>" for a in advice)
            out.append(f'<div class="warning"><b>Advice</b><ul>{items}</ul></div>')
        else:
            out.append('<p class="muted">Advice: none (the state is what a benchmark wants).</p>')
    return "\n".join(out)


def render_run_page(dash: Dashboard, run: RunInfo, out_dir: Path, assets: _Assets) -> str:
    m = run.manifest
    env = m.get("env") if isinstance(m.get("env"), dict) else {}
    body = [f"<h1>Run {_e(run.run_id)}</h1>"]
    body.extend(f'<p class="warning">{_e(w)}</p>' for w in dash.warnings
                if any(str(d) in w for d, _ in run.shards))  # fmt: skip
    shards = "".join(
        f"<li><code>{_e(d)}</code>: shard {_shard(sm.get('shard'))}, "
        f"<code>{_e(_command(sm.get('command')))}</code></li>"
        for d, sm in run.shards
    )
    body.append(_kv([
        ("device", _e(run.device)), ("backend", _e(run.backend)), ("created", _e(_when(run.created_at))),
        ("commit", _commit_cell(run.commit, run.commit_message)), ("preset", _e(run.preset or "-")),
        ("scenario", f"{_plain(m.get('scenario_file'))} "
                     f"<span class=\"muted\">sha256 {_e(str(m.get('scenario_sha256') or '-')[:16])}</span>"),
        ("description", _plain(m.get("scenario_description"))),
        ("command", f"<code>{_e(_command(m.get('command')))}</code>"),
        ("directories", f"<ul>{shards}</ul>"),
        ("cases", f"{run.n_cases} recorded ({_plain(m.get('cases_planned'))} planned in the first shard): "
                  f"{_statuses(run)}"),
        ("options", _plain(m.get("options"))), ("protocol", _plain(m.get("protocol"))),
        ("dsabench", _plain(m.get("dsabench_version"))),
    ]))  # fmt: skip
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    packages = {k: v for k, v in packages.items() if v}
    body.append("<h2>Environment</h2>")
    body.append(_kv([
        ("host", _plain(env.get("host"))), ("platform", _plain(env.get("platform"))),
        ("python", _plain(env.get("python"))),
        ("CPUs", _plain(env.get("cpu_count"))), ("CPU governor", _plain(env.get("cpu_governor"))),
        ("CUDA_VISIBLE_DEVICES", _plain(env.get("cuda_visible_devices"))),
        ("packages", _e(", ".join(f"{k} {v}" for k, v in sorted(packages.items())) or "-")),
    ] + [(f"worker {i}", _plain({"framework": (w.get("availability") or {}).get("framework_version"),
                                 "device": w.get("device")}))
         for i, w in enumerate(m.get("workers") or []) if isinstance(w, dict)]))  # fmt: skip
    body.append("<h2>GPU state</h2>")
    body.append(_gpu_section(env))
    body.append("<h2>Patched vs baseline</h2>")
    body.append(_speedup_section(dash, run))
    body.append("<h2>Cases</h2>")
    body.append("<p class=\"muted\">Median and its distribution-free 95% CI from the raw samples "
                "(<code>stats.summarize</code>); copies and syncs are per iteration, from the profiled pass's "
                "trace.</p>")  # fmt: skip
    body.append(_filter_bar())
    series_page = {(s.case_id, s.device, s.backend): s.page for s in dash.series}
    df = dash.frame.df[dash.frame.df["run_id"] == run.run_id]
    rows, items = [], []
    page_dir = (out_dir / "run").resolve()
    for i, r in enumerate(df.to_dict("records")):
        el = f"case-{i}"
        device = _label(r["device_name"])
        backend = _label(r["backend"])
        items.append({"el": el, **_row_axes(r, device, backend), "status": str(r["status"]), "case": r["case_id"]})
        sm = dash.summaries.get((run.run_id, r["case_id"]))
        trace = dash.traces.get((run.run_id, r["case_id"]))
        link = "-"
        if trace is not None:
            rel = os.path.relpath(trace, page_dir)
            link = f'<a href="{_e(quote(Path(rel).as_posix()))}">trace</a>'
        page = series_page.get((r["case_id"], device, backend))
        case = f'<a href="../{_e(page)}">{_e(r["case_id"])}</a>' if page else _e(r["case_id"])
        rows.append(
            f'<tr id="{el}" data-filter-item><td class="case mono">{case}</td><td>{_e(r["scenario"])}</td>'
            f"<td>{_status_badge(str(r['status']))}</td><td class=\"num\">{_ms(sm.median if sm else None)}</td>"
            f'<td class="num">{f"{_ms(sm.ci_low)} .. {_ms(sm.ci_high)}" if sm else "-"}</td>'
            f'<td class="num">{sm.n if sm else "-"}</td>'
            f'<td class="num">{_count(r["htod_count"])}</td><td class="num">{_count(r["dtoh_count"])}</td>'
            f'<td class="num">{_count(r["dtod_count"])}</td><td class="num">{_count(r["sync_calls"])}</td>'
            f"<td>{link}</td><td class=\"msg\">{_e(r['message'])}</td></tr>"
        )
    body.append(
        '<table class="cases"><thead><tr><th>case</th><th>scenario</th><th>status</th><th class="num">median ms</th>'
        f'<th class="num">{CONFIDENCE * 100:g}% CI ms</th><th class="num">n</th><th class="num">HtoD / iter</th>'
        '<th class="num">DtoH / iter</th><th class="num">DtoD / iter</th><th class="num">syncs / iter</th>'
        f"<th>trace</th><th>message</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    data = {"page": "run", "run_id": run.run_id, "axes": list(FILTER_AXES) + ["status"], "items": items}
    return _page(assets, f"run {run.run_id}", "\n".join(body), depth=1, data=data)


# ------------------------------------------------------------------------------------- build


@dataclass(frozen=True)
class Site:
    """What `build_dashboard` wrote: the directory, its pages (index first), and the counts."""

    out_dir: Path
    pages: tuple[Path, ...]
    runs: int
    series: int
    change_note: str | None
    warnings: tuple[str, ...]

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"


def _prepare_out(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory; expected a new or empty directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise InputError(
            f"--out {out_dir}: directory is not empty and holds no dsabench dashboard ({MARKER} missing); "
            "expected a new or empty directory, or one an earlier `dsabench dashboard` wrote"
        )
    if (out_dir / MARKER).is_file():  # an earlier build: remove its pages, so none goes stale
        for pattern in ("index.html", "trends.html", "run/*.html", "trend/*.html"):
            for old in out_dir.glob(pattern):
                old.unlink()
    for sub in ("", "run", "trend"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("written by `dsabench dashboard`, which rewrites the pages here on each build\n")


def build_dashboard(
    paths: Sequence[Path] | Path,
    out_dir: Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    change_points: bool = True,
) -> Site:
    """Load every run under `paths` (results directories or run directories, searched
    recursively; shards of one run_id are one run) and write the site into `out_dir`.

    Raises InputError for unreadable runs (as every analysis verb does) and for an `out_dir`
    that is not empty and was not written by an earlier build.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    frame = load_runs([Path(p) for p in paths])
    out_dir = Path(out_dir)
    dash = collect(frame, threshold, change_points)
    assets = _load_assets()
    _prepare_out(out_dir)
    pages = [("index.html", render_index(dash, assets)), ("trends.html", render_trends(dash, assets))]
    pages += [(run.page, render_run_page(dash, run, out_dir, assets)) for run in dash.runs.values()]
    pages += [(s.page, render_trend_page(dash, s, assets)) for s in dash.series]
    written = []
    for rel, text in pages:
        path = out_dir / rel
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return Site(out_dir, tuple(written), len(dash.runs), len(dash.series), dash.change_note, dash.warnings)
