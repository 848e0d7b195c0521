"""calibrate's arithmetic on seeded synthetic runs: it counts what the gate says, nothing else."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsabench.analysis.calibrate import calibrate, smallest_detectable


def run(rng, cases, level=1.0, between=0.004, processes=3, n=40):
    return {c: [list(level * math.exp(rng.normal(0, between)) * np.exp(rng.normal(0, 0.005, n)))
                for _ in range(processes)] for c in cases}


def test_quiet_cases_give_no_false_alarm_and_detect_a_five_percent_delay_but_not_one_and_a_half():
    rng = np.random.default_rng(0)
    cases = ["a", "b"]
    aa = [run(rng, cases) for _ in range(3)]
    inj = {0.05: [run(rng, cases, level=1.05)], 0.015: [run(rng, cases, level=1.015)]}
    result = calibrate(aa, inj, threshold=0.03, n_boot=300)
    assert [c.case_id for c in result] == cases
    for c in result:
        assert c.aa_pairs == 3 and c.false_alarms == 0
        hit, total = c.detected[0.05]
        assert total == 3 and hit == 3
        assert c.detected[0.015][0] == 0
        assert 0.03 < c.mde < 0.08


def test_each_injected_run_reports_the_slowdown_it_really_measured_not_the_size_asked_for():
    rng = np.random.default_rng(2)
    aa = [run(rng, ["a"], between=0.0005) for _ in range(3)]
    inj = {0.015: [run(rng, ["a"], level=1.027, between=0.0005)]}  # asked +1.5%, the device saw +2.7%
    (c,) = calibrate(aa, inj, threshold=0.03, n_boot=300)
    assert c.measured[0.015] == pytest.approx(0.027, abs=0.002)


def test_a_case_whose_processes_wander_more_than_the_threshold_is_marked_noisy_and_not_called():
    rng = np.random.default_rng(1)
    aa = [run(rng, ["x"], between=0.08) for _ in range(3)]
    result = calibrate(aa, {}, threshold=0.03, n_boot=300)[0]
    assert result.process_spread > 0.03
    assert result.false_alarms == 0 and result.noisy_pairs >= 1


def test_a_to_a_noise_comes_from_the_other_runs_so_an_odd_pair_is_not_excused_by_itself():
    """Runs 0 and 1 differ by 20%: with 5 A/A runs, the pair (0, 1) is judged with the noise of
    runs 2-4 (quiet), so the gate calls it; had the pair's own runs been in the noise, it would
    have widened its own interval."""
    rng = np.random.default_rng(3)
    aa = [run(rng, ["x"], level=lv) for lv in (1.0, 1.2, 1.0, 1.0, 1.0)]
    (c,) = calibrate(aa, {}, threshold=0.03, n_boot=300)
    assert c.false_alarms >= 4  # the pairs with run 1 are real differences in this synthetic setup


def test_calibrate_needs_two_a_to_a_runs():
    with pytest.raises(ValueError, match="at least 2"):
        calibrate([{}], {}, threshold=0.03)


def test_the_smallest_detectable_change_grows_with_the_noise_and_falls_with_processes():
    assert smallest_detectable(0.03, 0.005, 0.01, 3) < smallest_detectable(0.03, 0.005, 0.02, 3)
    assert smallest_detectable(0.03, 0.001, 0.01, 9) < smallest_detectable(0.03, 0.001, 0.01, 3)
    assert smallest_detectable(0.03, 0.02, 0.001, 9) == pytest.approx(smallest_detectable(0.03, 0.02, 0.001, 3), rel=0.2)
    assert math.isnan(smallest_detectable(0.03, math.nan, math.nan, 3))


def test_detection_is_judged_against_the_size_the_workers_measured_where_the_records_have_it():
    """The workers measured +4.9% (plain against delayed forwards in one process); the runs' levels,
    with their own noise, say +2.7%: the size judged against is the workers', and the level shift is
    kept beside it. A case without a worker figure falls back on its levels."""
    rng = np.random.default_rng(4)
    aa = [run(rng, ["a", "b"], between=0.0005) for _ in range(3)]
    inj = {0.05: [run(rng, ["a", "b"], level=1.027, between=0.0005)]}
    a, b = calibrate(aa, inj, threshold=0.03, sizes={0.05: {"a": 0.049}}, n_boot=300)
    assert a.measured[0.05] == 0.049 and a.size_source[0.05] == "worker"
    assert a.level_shift[0.05] == pytest.approx(0.027, abs=0.002)
    assert b.size_source[0.05] == "levels" and b.measured[0.05] == b.level_shift[0.05]
