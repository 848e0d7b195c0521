"""Change points in the history of each case: where a series of runs shifted, and since when.

Over runs of one device model, backend and attention kernel, ordered by the manifests'
created_at, each case's per-run median latency is a series (calibrate's runs left out unless
asked); E-divisive (Matteson and James 2014) as Apache Otava
implements it (split into windows, keep candidate points whose two sides differ by a two-sided
t-test, then merge away the weak ones, after Fleming et al. 2023; the merge is ours, see
`_merge`) finds where it shifts. Runs
from other devices or backends form series of their own, never mixed into one.

apache-otava is an optional dependency, imported only here and only when asked for: install
it with `pip install --no-deps apache-otava` (docs/statistics.md says why --no-deps and why
Otava rather than MongoDB's signal-processing-algorithms).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from dsabench.analysis.defaults import MAX_PVALUE, MIN_CHANGE
from dsabench.analysis.noise import calibration_run
from dsabench.errors import InputError
from dsabench.store import forked
from dsabench.store.frames import Frame
from dsabench.store.schema import axis_kernel, is_fastdeploy

# Otava analyses the series in windows of this many runs (its default); a change is located
# inside a window, so a history longer than this is still searched end to end.
WINDOW_LEN = 50

# This many case series or more are searched in forked workers (store.forked): a year of nightlies
# is hundreds of series of hundreds of runs, each search CPU-bound and independent.
PARALLEL_MIN_SERIES = 32

# Fewer runs than this (of one case, device and backend) are not searched: each side of a
# change point needs at least two runs for the t-test to have a variance.
MIN_RUNS = 5


class MissingDependency(InputError):
    """An optional package a verb needs is not installed; the message says how to install it."""


def _otava():
    try:
        from otava import analysis
    except ImportError:
        raise MissingDependency(
            "history: change-point detection needs apache-otava, which is not installed; run "
            "`pip install --no-deps apache-otava` (its algorithm needs only numpy and scipy; --no-deps keeps "
            "your numpy and scipy, which its exact numpy==2.2.0 pin would downgrade, and skips the "
            "BigQuery, Postgres and Slack clients of its own command line)"
        ) from None
    return analysis


def _merge(analysis, points: list, series: list[float], max_pvalue: float, min_change: float) -> list:
    """Otava's merge step (drop the weakest point until every one left is significant and big
    enough), with the statistics of every remaining point recomputed after each drop.

    Why not `otava.analysis.merge`: in apache-otava 0.8.0, after deleting the point at index i
    it recomputes the points now at i and i + 1, but the neighbours of the gap are i - 1 and i,
    so the left neighbour keeps the p-value it had against a now-deleted segment and can be
    dropped wrongly. A 6% ramp over 8 runs split into weak points at 16 and 18 lost both that
    way (maintainers suspected the same in apache/otava#96). A point's statistics depend only on
    the segment between its neighbours, so after a drop the two points either side of the gap are
    recomputed, and only they: the same result as recomputing every point, in O(k) t-tests rather
    than O(k^2) (a year of nightlies has dozens of first-pass candidates per case). `points` come
    from `otava.analysis.split`, whose statistics are already those of the segments between them.
    """
    tester = analysis.TTestSignificanceTester(max_pvalue)
    series = np.asarray(series, dtype=float)  # the t-tests' slices as views, not copied lists (the same sums)
    points = sorted(points, key=lambda cp: cp.index)
    while points:
        weakest = max(points, key=lambda cp: cp.stats.pvalue)
        if weakest.stats.pvalue < max_pvalue:
            weakest = min(points, key=lambda cp: cp.stats.change_magnitude())
            if weakest.stats.change_magnitude() > min_change:
                return points
        gap = points.index(weakest)
        del points[gap]
        intervals = tester.get_intervals(points)
        for i in (gap - 1, gap):
            if 0 <= i < len(points):
                points[i] = tester.change_point(points[i].to_candidate(), series, intervals)
    return points


def change_point_indices(
    values: Sequence[float],
    max_pvalue: float = MAX_PVALUE,
    min_change: float = MIN_CHANGE,
    window_len: int = WINDOW_LEN,
) -> list[tuple[int, float]]:
    """(index, p-value) of each change point in a series, oldest first.

    index i means values[i] is the first point after the shift. Method: Otava's split step
    (E-divisive on windows of window_len, candidates kept at the relaxed first-pass level that
    `otava.analysis.compute_change_points` uses, 10 x max_pvalue), then `_merge`. The series
    must be finite.
    """
    x = [float(v) for v in values]
    if any(not math.isfinite(v) for v in x):
        raise ValueError("change_point_indices: series has non-finite values; drop failed runs first")
    analysis = _otava()
    if len(x) < MIN_RUNS:
        return []
    first_pass = max_pvalue * 10 if max_pvalue < 0.05 else max_pvalue  # as compute_change_points does
    weak = analysis.split(x, window_len, first_pass)
    return [(int(cp.index), float(cp.stats.pvalue)) for cp in _merge(analysis, weak, x, max_pvalue, min_change)]


@dataclass(frozen=True)
class ChangePoint:
    """One shift in one case's history: the first run that shows it and the medians either side.

    before/after_median_ms are the medians of the per-run medians in the segments either side
    (each ends at the neighbouring change point, or the end of the history).
    """

    case_id: str
    device_name: str
    backend: str
    index: int  # position of the first shifted run in this case's series, 0 = oldest
    run_id: str
    commit: str | None
    created_at: str
    previous_run_id: str
    previous_commit: str | None
    before_median_ms: float
    after_median_ms: float
    p_value: float
    kernel: str = "reference"

    @property
    def rel_change(self) -> float:
        return self.after_median_ms / self.before_median_ms - 1.0

    @property
    def direction(self) -> str:
        return "slower" if self.after_median_ms > self.before_median_ms else "faster"


@dataclass(frozen=True)
class History:
    """Per-case series (one row per case per run, oldest first) and the change points in them."""

    series: pd.DataFrame
    change_points: tuple[ChangePoint, ...]
    max_pvalue: float
    min_change: float
    warnings: tuple[str, ...] = field(default=())

    def table(self) -> pd.DataFrame:
        rows = [
            {**{k: getattr(cp, k) for k in cp.__dataclass_fields__}, "rel_change": cp.rel_change,
             "direction": cp.direction}
            for cp in self.change_points
        ]  # fmt: skip
        cols = list(ChangePoint.__dataclass_fields__) + ["rel_change", "direction"]
        return pd.DataFrame(rows, columns=cols)


SERIES_COLUMNS = (
    "device_name", "backend", "kernel", "case_id", "position", "run_id", "commit", "created_at", "median_ms", "n_samples",
)  # fmt: skip


SERIES_KEY = ["device_name", "backend", "kernel", "case_id"]


def series_ids(df: pd.DataFrame) -> list[str]:
    """Each row's series id, the one `history` and the dashboard share: the case id; '@fastdeploy'
    for FastDeploy's own code (every commit a point of one series, never mixed with the mirror's);
    '@<label>' for an injected mirror (calibration runs, where asked for); '#kernel' on a kernel
    axis (the kernels of one run side by side are series of their own)."""
    cols = [df[c].tolist() if c in df.columns else [None] * len(df) for c in ("case_id", "impl", "kernel", "kernel_axis")]
    out = []
    for case_id, impl, kernel, axis in zip(*cols):
        impl = impl if isinstance(impl, str) and impl else "mirror"
        sid = str(case_id) + ("" if impl == "mirror" else "@fastdeploy" if is_fastdeploy(impl) else f"@{impl}")
        on_axis = axis_kernel({"kernel": kernel, "kernel_axis": axis}) if kernel else None
        out.append(sid + (f"#{on_axis}" if on_axis else ""))
    return out


def case_series(frame: Frame, include_calibration: bool = False) -> pd.DataFrame:
    """The per-run median of each ok case, ordered by created_at (then run_id) within each
    device model, backend, kernel and case; failed runs, runs without samples and (unless asked)
    calibrate's runs are left out.
    """
    df = frame.df
    calib = [] if include_calibration else [r for r, m in frame.manifests.items() if calibration_run(m)]
    ok = df[(df["status"] == "ok") & df["median_ms"].notna() & ~df["run_id"].isin(calib)].copy()
    # FastDeploy's own code (--impl fastdeploy:...) is a series of its own per case, never mixed
    # with the mirror's; its points are the commits measured (a run of base and head gives both)
    fd = ok["impl"].map(is_fastdeploy).astype(bool)
    ok["case_id"] = series_ids(ok)
    ok.loc[fd & ok["impl_sha"].notna(), "commit"] = ok.loc[fd & ok["impl_sha"].notna(), "impl_sha"]
    for col in ("device_name", "backend"):
        ok[col] = ok[col].fillna("unknown").astype(str)
    ok["kernel"] = ok["kernel"].fillna("reference").astype(str)
    ok = ok.sort_values(SERIES_KEY + ["created_at", "run_id"], kind="stable")
    ok["position"] = ok.groupby(SERIES_KEY).cumcount()
    return ok[list(SERIES_COLUMNS)].reset_index(drop=True)


def _iso(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return "" if value is None or value != value else str(value)


def find_change_points(
    frame: Frame,
    max_pvalue: float = MAX_PVALUE,
    min_change: float = MIN_CHANGE,
    window_len: int = WINDOW_LEN,
    include_calibration: bool = False,
) -> History:
    """Change points of every case's median series in the frame (see the module docstring).

    Raises MissingDependency when apache-otava is not installed, before doing any work.
    """
    _otava()
    series = case_series(frame, include_calibration)
    found: list[ChangePoint] = []
    warnings = list(frame.warnings)
    if frame.df["created_at"].isna().any():
        missing = sorted(frame.df.loc[frame.df["created_at"].isna(), "run_id"].astype(str).unique())
        warnings.append(f"runs {missing} have no readable created_at in their manifest; they sort last")
    groups = list(series.groupby(SERIES_KEY, sort=True))
    search = functools.partial(change_point_indices, max_pvalue=max_pvalue, min_change=min_change,
                               window_len=window_len)
    found_in = forked.fork_map(search, [s["median_ms"].to_numpy(dtype=float) for _, s in groups],
                               min_items=PARALLEL_MIN_SERIES)
    for ((device, backend, kernel, case_id), s), points in zip(groups, found_in):
        values = s["median_ms"].to_numpy(dtype=float)
        edges = [0] + [i for i, _ in points] + [len(values)]
        for k, (i, p) in enumerate(points):
            before = values[edges[k] : i]
            after = values[i : edges[k + 2]]
            here, prev = s.iloc[i], s.iloc[i - 1]
            found.append(
                ChangePoint(
                    case_id=str(case_id), device_name=str(device), backend=str(backend), index=int(i),
                    run_id=str(here["run_id"]), commit=here["commit"] if isinstance(here["commit"], str) else None,
                    created_at=_iso(here["created_at"]), previous_run_id=str(prev["run_id"]),
                    previous_commit=prev["commit"] if isinstance(prev["commit"], str) else None,
                    before_median_ms=float(np.median(before)), after_median_ms=float(np.median(after)), p_value=p,
                    kernel=str(kernel),
                )  # fmt: skip
            )
    found.sort(key=lambda cp: (cp.created_at, cp.case_id))
    return History(series, tuple(found), max_pvalue, min_change, tuple(warnings))
