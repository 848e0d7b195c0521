"""The gate's error rates, measured on seeded synthetic samples (the figures in docs/statistics.md
come from `python3 -m dsabench.analysis.power` with more trials)."""

from dsabench.analysis.compare import DEFAULT_THRESHOLD
from dsabench.analysis.power import NOISE_SIGMA, N_SAMPLES, SLOWDOWN, gate_rates, synthetic_history


def test_gate_false_alarms_under_1_percent_and_power_over_90_percent_at_the_stated_noise():
    assert (NOISE_SIGMA, N_SAMPLES, SLOWDOWN, DEFAULT_THRESHOLD) == (0.02, 50, 0.05, 0.03)
    r = gate_rates(trials=400, seed=11)
    assert r.false_alarm_rate < 0.01
    assert r.false_alarm_ci[1] < 0.01  # the upper end of the Clopper-Pearson interval too
    assert r.power > 0.90
    assert r.boundary_alarm_rate < 0.05  # a change of exactly +3% is rarely called slower


def test_gate_stays_quiet_when_noise_is_high_and_says_undecided_instead():
    r = gate_rates(noise_sigma=0.05, n_samples=30, trials=200, seed=12)
    assert r.false_alarm_rate < 0.01
    assert r.undecided_at_slowdown > 0.5  # too noisy to tell: the honest answer is "can't tell"


def test_gate_rates_are_reproducible_from_the_seed():
    assert gate_rates(trials=30, seed=5) == gate_rates(trials=30, seed=5)


def test_synthetic_history_steps_by_the_asked_change_at_the_stated_run():
    s = synthetic_history(0, "step", change=0.06, noise=0.0)
    assert list(s[:17]) == [1.0] * 17 and all(abs(v - 1.06) < 1e-12 for v in s[17:])
