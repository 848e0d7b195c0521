import re
import sys
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from dsabench.store.frames import load_runs
from dsabench.analysis.history import MissingDependency, change_point_indices, find_change_points
from dsabench.present.history_text import format_history

RUNS = 30


def medians(seed: int, step_at: int | None = None, ramp: tuple[int, int] | None = None, change=0.06, noise=0.01):
    """30 per-run medians around 1 ms with 1% run-to-run noise, and a 6% step or a slow ramp."""
    level = np.ones(RUNS)
    if step_at is not None:
        level[step_at:] *= 1 + change
    if ramp is not None:
        start, stop = ramp
        level *= 1 + change * np.clip((np.arange(RUNS) - start + 1) / (stop - start), 0, 1)
    return level * np.exp(np.random.default_rng(seed).normal(0, noise, RUNS))


def write_history(builder, series_by_case: dict, device=None, prefix="run", start_day=0):
    """One run directory a day, each holding every case with 20 samples around that day's median."""
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for i in range(RUNS):
        run_id = f"{prefix}{i:02d}"
        cases = {
            case: builder.samples(1000 * i + k, median_ms=float(series[i]), sigma=0.005, n=20)
            for k, (case, series) in enumerate(series_by_case.items())
        }
        kw = {"device": device} if device else {}
        builder.simple_run(
            f"results/{run_id}", cases, run_id=run_id, created_at=(t0 + timedelta(days=start_day + i)).isoformat(),
            commit=f"{i:02d}" + "c" * 38, **kw,
        )  # fmt: skip
    return builder.root / "results"


def test_history_without_apache_otava_says_how_to_install_it(builder, monkeypatch):
    monkeypatch.setitem(sys.modules, "otava", None)
    monkeypatch.setitem(sys.modules, "otava.analysis", None)
    root = write_history(builder, {builder.case(): medians(0)})
    with pytest.raises(MissingDependency, match=r"needs apache-otava, which is not installed; run `pip install --no-deps apache-otava`"):
        find_change_points(load_runs([root]))


@pytest.fixture
def otava():
    return pytest.importorskip("otava.analysis", reason="apache-otava not installed: pip install --no-deps apache-otava")


@pytest.mark.parametrize("seed", range(5))
def test_history_finds_a_6_percent_step_at_the_run_where_it_starts(otava, seed):
    assert [i for i, _ in change_point_indices(medians(seed, step_at=17))] == [17]


@pytest.mark.parametrize("seed", range(5))
def test_history_finds_a_slow_6_percent_drift_inside_the_ramp(otava, seed):
    points = change_point_indices(medians(seed, ramp=(12, 20)))
    assert len(points) >= 1 and all(12 <= i <= 20 for i, _ in points)


@pytest.mark.parametrize("seed", range(20))
def test_history_finds_nothing_in_a_flat_series(otava, seed):
    assert change_point_indices(medians(seed)) == []


def test_history_names_the_case_the_first_run_and_commit_and_the_medians_either_side(otava, builder):
    stepped, flat = builder.case(batch=1), builder.case(batch=2)
    root = write_history(builder, {stepped: medians(3, step_at=17), flat: medians(4)})
    history = find_change_points(load_runs([root]))
    assert len(history.change_points) == 1
    cp = history.change_points[0]
    assert (cp.case_id, cp.index, cp.run_id, cp.previous_run_id) == (stepped.id, 17, "run17", "run16")
    assert cp.commit == "17" + "c" * 38 and cp.created_at.startswith("2025-01-18")
    assert (cp.device_name, cp.backend, cp.direction) == (builder.H100, "paddle", "slower")
    assert cp.before_median_ms == pytest.approx(1.0, rel=0.01)
    assert cp.after_median_ms == pytest.approx(1.06, rel=0.01)
    assert cp.rel_change == pytest.approx(0.06, abs=0.015) and cp.p_value < 0.001
    text = format_history(history)
    assert text.startswith("1 change point(s) in 2 case series over 30 run(s)")
    assert stepped.id in text and "run17" in text and re.search(r"\+[56]\.\d%", text)
    assert history.table().iloc[0]["run_id"] == "run17"
    assert "| case | device |" in format_history(history, markdown=True)


def test_history_keeps_each_device_a_series_of_its_own(otava, builder):
    case = builder.case()
    write_history(builder, {case: medians(5, step_at=10)}, device=builder.H100, prefix="h100-")
    write_history(builder, {case: medians(6) * 0.7}, device=builder.H200, prefix="h200-", start_day=1)
    history = find_change_points(load_runs([builder.root / "results"]))
    assert [(cp.device_name, cp.index, cp.run_id) for cp in history.change_points] == [(builder.H100, 10, "h100-10")]
    assert set(history.series.groupby("device_name").size()) == {RUNS}


def test_history_leaves_failed_runs_out_of_a_series(otava, builder):
    case = builder.case()
    root = write_history(builder, {case: medians(7)})
    failed = [builder.record(case, "zz-failed", None, status="oom")]
    builder.run("results/zz-failed", failed, run_id="zz-failed", created_at="2026-01-01T00:00:00Z")
    history = find_change_points(load_runs([root]))
    assert len(history.series) == RUNS and history.change_points == ()


def test_series_ids_keep_the_mirror_bare_gather_fastdeploy_commits_and_split_kernels_on_an_axis():
    """One id for history and the dashboard alike, so a change point lands on the series it was found in."""
    import pandas as pd

    from dsabench.analysis.history import series_ids

    df = pd.DataFrame({"case_id": ["c"] * 5,
                       "impl": [None, "fastdeploy:aaa", "fastdeploy:bbb", "mirror+inject=0.25", "mirror"],
                       "kernel": ["reference", "reference", "reference", "reference", "triton"],
                       "kernel_axis": [float("nan"), False, False, None, True]})
    assert series_ids(df) == ["c", "c@fastdeploy", "c@fastdeploy", "c@mirror+inject=0.25", "c#triton"]
