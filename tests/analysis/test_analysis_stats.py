import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsabench.analysis.stats import bootstrap_ratio_ci, median_ci_ranks, summarize


def test_summarize_takes_the_median_interval_from_binomial_order_statistics():
    samples = list(range(30, 0, -1))  # 1..30, unsorted
    s = summarize(samples)
    # n = 30 at 95%: ranks 10 and 21 (1-based), coverage 1 - 2 P(Bin(30, 1/2) <= 9) = 0.9572
    assert (s.ci_low, s.ci_high) == (10.0, 21.0)
    assert s.median == 15.5 and s.n == 30
    assert s.coverage == pytest.approx(0.95723, abs=1e-4)
    assert s.iqr == pytest.approx(np.percentile(samples, 75) - np.percentile(samples, 25))
    assert s.rel_ci_halfwidth == pytest.approx(5.5 / 15.5)


def test_summarize_interval_covers_the_true_median_at_least_as_often_as_promised():
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(2000):
        s = summarize(np.exp(rng.normal(0, 0.02, 25)))  # true median is exactly 1
        hits += s.ci_low <= 1.0 <= s.ci_high
    assert hits / 2000 >= 0.94  # nominal 0.95; 2000 trials give +-1% of Monte Carlo error


def test_summarize_with_too_few_samples_reports_min_max_and_its_lower_coverage():
    s = summarize([3.0, 1.0, 2.0])
    assert (s.ci_low, s.ci_high) == (1.0, 3.0)
    assert s.coverage == pytest.approx(0.75)  # 1 - 2 * (1/2)^3: below the 95% asked for
    assert median_ci_ranks(6) == (0, 5, pytest.approx(1 - 2 / 64))


@pytest.mark.parametrize("bad, match", [([], "no samples"), ([1.0, float("nan")], "1 of 2 samples are not finite")])
def test_summarize_rejects_empty_and_non_finite_samples(bad, match):
    with pytest.raises(ValueError, match=match):
        summarize(bad)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=80))
def test_summarize_interval_always_contains_the_median(samples):
    s = summarize(samples)
    assert s.ci_low <= s.median <= s.ci_high
    assert 0 <= s.coverage <= 1


def test_bootstrap_ratio_ci_is_seeded_and_brackets_the_ratio_of_medians():
    rng = np.random.default_rng(1)
    base, cand = np.exp(rng.normal(0, 0.02, 40)), 1.1 * np.exp(rng.normal(0, 0.02, 40))
    first = bootstrap_ratio_ci(base, cand, seed=3)
    assert first == bootstrap_ratio_ci(base, cand, seed=3)
    ratio, lo, hi = first
    assert ratio == pytest.approx(np.median(cand) / np.median(base))
    assert lo < ratio < hi and 1.07 < lo and hi < 1.13


def test_bootstrap_ratio_ci_refuses_a_non_positive_base_median():
    with pytest.raises(ValueError, match="base median is 0.0; expected a positive latency"):
        bootstrap_ratio_ci([0.0] * 5, [1.0] * 5)

