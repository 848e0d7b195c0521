"""The gate's error rates, measured on seeded synthetic runs through `gate.decide` (the figures in
docs/statistics.md come from `python3 scripts/gate_coverage.py` with more trials)."""

from dsabench.analysis.defaults import DEFAULT_THRESHOLD
from dsabench.analysis.power import Setting, measure, rates_table, synthetic_history


def test_quiet_cases_at_the_pr_repeats_give_no_false_alarm_and_catch_five_percent():
    s = Setting(processes=3, between=0.002, threshold=DEFAULT_THRESHOLD)
    aa, slow = measure(s, 0.0, 300, seed=11), measure(s, 0.05, 300, seed=12)
    assert aa.alarms == 0 and aa.same / aa.trials > 0.95
    assert slow.slower / slow.trials > 0.95


def test_noisy_cases_pay_for_never_hiding_a_change_with_false_alarms_near_the_intervals_five_percent():
    """At 25% spread the 3% band is nothing: a 95% interval beyond it by chance is ~5% of A/A
    pairs (2.5% each way). The gate does not widen its band to hide them (docs/statistics.md)."""
    r = measure(Setting(processes=3, between=0.25), 0.0, 400, seed=13)
    assert 0.01 < r.alarms / r.trials < 0.09
    assert r.noisy / r.trials > 0.95


def test_the_misses_at_high_noise_are_undecided_never_same_or_faster():
    r = measure(Setting(processes=3, between=0.03), 0.05, 300, seed=14)
    assert r.faster == 0 and r.same == 0 and r.undecided > r.slower


def test_gate_rates_are_reproducible_from_the_seed():
    s = Setting(processes=2, between=0.03)
    assert measure(s, 0.0, 40, seed=5) == measure(s, 0.0, 40, seed=5)
    assert rates_table(trials=20, grid=((2, 0.03, False, 0, 0.05),)).count("\n") == 2


def test_synthetic_history_steps_by_the_asked_change_at_the_stated_run():
    s = synthetic_history(0, "step", change=0.06, noise=0.0)
    assert list(s[:17]) == [1.0] * 17 and all(abs(v - 1.06) < 1e-12 for v in s[17:])
