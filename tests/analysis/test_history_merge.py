"""The change-point merge recomputes only the neighbours of a dropped point, and so finds exactly
what recomputing every remaining point after each drop finds (seeded synthetic series)."""

from __future__ import annotations

import numpy as np
import pytest

from dsabench.analysis.history import _merge

analysis = pytest.importorskip("otava.analysis")


def _merge_recomputing_all(points, series, max_pvalue, min_change):
    tester = analysis.TTestSignificanceTester(max_pvalue)
    points = sorted(points, key=lambda cp: cp.index)
    while points:
        intervals = tester.get_intervals(points)
        points = [tester.change_point(cp.to_candidate(), series, intervals) for cp in points]
        weakest = max(points, key=lambda cp: cp.stats.pvalue)
        if weakest.stats.pvalue < max_pvalue:
            weakest = min(points, key=lambda cp: cp.stats.change_magnitude())
            if weakest.stats.change_magnitude() > min_change:
                return points
        points.remove(weakest)
    return points


@pytest.mark.parametrize("seed", range(12))
def test_merging_by_neighbours_equals_recomputing_every_point(seed):
    rng = np.random.default_rng(seed)
    n = 365
    step = 1 + 0.05 * (np.arange(n) >= rng.integers(30, 330))
    drift = 1 + 0.03 * np.sin(np.arange(n) / rng.uniform(5, 60))
    series = [float(v) for v in np.exp(rng.normal(0, 0.02, n)) * step * drift]
    weak = analysis.split(series, 50, 0.01)
    for max_pvalue, min_change in ((0.001, 0.0), (0.001, 0.02), (0.05, 0.01)):
        ours = [(cp.index, cp.stats.pvalue) for cp in _merge(analysis, weak, series, max_pvalue, min_change)]
        every = [(cp.index, cp.stats.pvalue) for cp in _merge_recomputing_all(weak, series, max_pvalue, min_change)]
        assert ours == every


@pytest.mark.parametrize("seed", range(4))
def test_split_gives_points_carrying_the_statistics_of_the_segments_between_them(seed):
    """What `_merge` starts from as it comes, without recomputing it first."""
    rng = np.random.default_rng(seed)
    drift = 1 + 0.03 * np.sin(np.arange(365) / rng.uniform(5, 60))
    series = [float(v) for v in np.exp(rng.normal(0, 0.02, 365)) * (1 + 0.05 * (np.arange(365) >= 120)) * drift]
    weak = analysis.split(series, 50, 0.01)
    tester = analysis.TTestSignificanceTester(0.01)
    intervals = tester.get_intervals(weak)
    again = [tester.change_point(cp.to_candidate(), series, intervals) for cp in weak]
    assert len(weak) >= 2 and [(cp.index, cp.stats) for cp in again] == [(cp.index, cp.stats) for cp in weak]


def test_series_searched_in_worker_processes_give_the_change_points_of_one_process(builder, monkeypatch):
    from analysis.test_analysis_history import medians, write_history
    from dsabench.analysis import history
    from dsabench.store.frames import load_runs

    cases = {builder.case(batch=b): medians(b, step_at=10 + b) for b in (1, 2, 4, 8)}
    frame = load_runs([write_history(builder, cases)])
    one = history.find_change_points(frame)
    monkeypatch.setattr(history, "PARALLEL_MIN_SERIES", 2)
    forked = history.find_change_points(frame)
    assert forked.change_points == one.change_points and len(one.change_points) >= 3
