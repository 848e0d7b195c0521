"""The cross-run gate on seeded synthetic samples with known between-process variance.

Each synthetic case has a level per process (lognormal, sd `between`) and samples around it
(sd `within`): the structure real runs have. No real timing is measured here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsabench.analysis.gate import decide
from dsabench.analysis.hierarchy import median_interval, ratio_interval, robust_log_spread
from dsabench.analysis.noise import MIN_RUNS, Noise, series_noise
from dsabench.analysis.stats import bootstrap_ratio_ci


def synthetic(rng, processes=5, n=30, between=0.03, within=0.01, level=1.0):
    return [list(level * math.exp(rng.normal(0, between)) * np.exp(rng.normal(0, within, n))) for _ in range(processes)]


def test_hierarchical_interval_is_wider_than_the_flat_one_when_processes_differ():
    rng = np.random.default_rng(1)
    base, cand = synthetic(rng), synthetic(rng)
    flat = bootstrap_ratio_ci(sum(base, []), sum(cand, []), n_boot=500)
    nested = ratio_interval(base, cand, n_boot=500)
    assert (nested.high - nested.low) > 2 * (flat[2] - flat[1])
    assert nested.processes == 5


def test_hierarchical_interval_matches_the_flat_one_when_processes_do_not_differ():
    rng = np.random.default_rng(2)
    base, cand = synthetic(rng, between=0.0), synthetic(rng, between=0.0)
    flat = bootstrap_ratio_ci(sum(base, []), sum(cand, []), n_boot=1000)
    nested = ratio_interval(base, cand, n_boot=1000)
    assert (nested.high - nested.low) < 1.6 * (flat[2] - flat[1])


def test_median_interval_covers_the_pooled_median():
    rng = np.random.default_rng(3)
    g = synthetic(rng)
    iv = median_interval(g, n_boot=500)
    assert iv.low <= iv.estimate <= iv.high


def test_a_to_a_false_alarms_stay_near_the_nominal_level_with_between_process_variance():
    """With 3% between-process noise, the flat bootstrap calls most A/A pairs different; the
    hierarchical gate keeps false verdicts near its nominal 5% two-sided rate or below."""
    rng = np.random.default_rng(4)
    trials, flat_alarms, gate_alarms = 200, 0, 0
    for i in range(trials):
        base, cand = synthetic(rng, between=0.03), synthetic(rng, between=0.03)
        _, lo, hi = bootstrap_ratio_ci(sum(base, []), sum(cand, []), n_boot=300, seed=i)
        flat_alarms += lo > 1 or hi < 1
        r = decide(base, cand, threshold=0.0, n_boot=300, seed=i, k=0.0)
        gate_alarms += r.verdict in ("slower", "faster")
    assert flat_alarms / trials > 0.3
    assert gate_alarms / trials <= 0.10


def test_a_known_slowdown_well_above_the_noise_is_called_slower():
    rng = np.random.default_rng(5)
    called = 0
    for i in range(50):
        base = synthetic(rng, between=0.005, within=0.01)
        cand = synthetic(rng, between=0.005, within=0.01, level=1.10)
        called += decide(base, cand, threshold=0.03, n_boot=300, seed=i).verdict == "slower"
    assert called >= 45


def test_single_process_runs_without_history_are_never_called_different():
    rng = np.random.default_rng(6)
    base = synthetic(rng, processes=1, n=200, within=0.005)
    cand = synthetic(rng, processes=1, n=200, within=0.005, level=1.2)
    r = decide(base, cand, threshold=0.03, n_boot=300)
    assert r.verdict == "undecided" and r.reason == "within_run_precision_only"


def test_single_process_runs_with_a_quiet_history_are_judged_with_the_noise_inside_the_interval():
    rng = np.random.default_rng(7)
    base = synthetic(rng, processes=1, n=100, within=0.005)
    cand = synthetic(rng, processes=1, n=100, within=0.005, level=1.2)
    r = decide(base, cand, threshold=0.03, noise=Noise(0.005, 10, "history"), n_boot=300)
    assert r.verdict == "slower"
    small = decide(base, synthetic(rng, processes=1, n=100, within=0.005, level=1.02), threshold=0.03,
                   noise=Noise(0.005, 10, "history"), n_boot=300)
    assert small.verdict != "slower"


def test_a_case_whose_history_is_noisier_than_the_threshold_is_noisy_not_slower():
    rng = np.random.default_rng(8)
    base = synthetic(rng, processes=1, n=100, within=0.005)
    cand = synthetic(rng, processes=1, n=100, within=0.005, level=1.08)
    r = decide(base, cand, threshold=0.03, noise=Noise(0.05, 8, "history"), n_boot=300)
    assert r.verdict == "noisy" and "5.0%" in r.message


def test_a_change_far_beyond_even_a_noisy_case_s_band_is_still_called():
    rng = np.random.default_rng(9)
    base = synthetic(rng, processes=1, n=100, within=0.005)
    cand = synthetic(rng, processes=1, n=100, within=0.005, level=2.0)
    r = decide(base, cand, threshold=0.03, noise=Noise(0.05, 8, "history"), n_boot=300)
    assert r.verdict == "slower" and r.band == pytest.approx(0.15)


def test_paired_variants_in_one_process_share_drift_and_are_judged_on_their_difference():
    rng = np.random.default_rng(10)
    drift = np.exp(np.linspace(0, 0.2, 60))  # the machine slows 20% over the rounds
    base = [list(drift * np.exp(rng.normal(0, 0.005, 60)))]
    cand = [list(1.05 * drift * np.exp(rng.normal(0, 0.005, 60)))]
    assert decide(base, cand, threshold=0.03, paired=True, n_boot=300).verdict == "slower"
    assert decide(base, cand, threshold=0.03, paired=False, n_boot=300).verdict != "slower"


def test_run_to_run_noise_needs_enough_runs_and_is_robust_to_one_odd_run():
    assert not series_noise([1.0] * (MIN_RUNS - 1)).known
    levels = [1.00, 1.01, 0.99, 1.00, 1.02, 0.98, 1.50]
    n = series_noise(levels)
    assert n.known and n.runs == len(levels) and n.spread < 0.05
    assert robust_log_spread([1.0]) != robust_log_spread([1.0])  # NaN for one value


def test_non_finite_samples_are_refused_with_the_process_named():
    with pytest.raises(ValueError, match="process 1"):
        ratio_interval([[1.0] * 5, [1.0, math.nan]], [[1.0] * 5])


def test_compare_with_history_calls_noisy_cases_noisy_and_quiet_cases_by_their_noise(builder):
    from dsabench.analysis.compare import compare_runs
    from dsabench.store.frames import load_runs

    quiet, loud = builder.case(batch=1), builder.case(batch=2)
    for i, level in enumerate((1.00, 1.06, 0.95, 1.04, 0.97)):  # loud wanders 5% between runs; quiet does not
        builder.run(f"h{i}", [builder.record(quiet, f"h{i}", builder.samples(10 + i, median_ms=1.0 + 0.001 * i)),
                              builder.record(loud, f"h{i}", builder.samples(20 + i, median_ms=level))],
                    created_at=f"2025-01-0{i + 1}T00:00:00+00:00")
    base = builder.run("base", [builder.record(c, "base", builder.samples(30 + j)) for j, c in enumerate((quiet, loud))],
                       created_at="2025-02-01T00:00:00+00:00")
    cand = builder.run("cand", [builder.record(c, "cand", builder.samples(40 + j, median_ms=1.08))
                                for j, c in enumerate((quiet, loud))], created_at="2025-02-02T00:00:00+00:00")
    history = load_runs([builder.root / f"h{i}" for i in range(5)])
    t = compare_runs(load_runs([base]), load_runs([cand]), history=history).table.set_index("case")
    assert t.loc[quiet.id, "verdict"] == "slower"
    assert t.loc[loud.id, "verdict"] == "noisy" and "noise" in t.loc[loud.id, "message"]
    without = compare_runs(load_runs([base]), load_runs([cand])).table
    assert set(without["verdict"]) == {"undecided"}  # one process a side, no history: cannot tell
