"""Statistics over raw latency samples: pure functions over sequences, no I/O, no pandas.

Every estimator is named in its docstring; the reasoning behind the defaults and the measured
error rates of the regression gate built on them are in docs/statistics.md.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Confidence level of every interval unless the caller asks for another.
CONFIDENCE = 0.95

# Bootstrap resamples. The 2.5% and 97.5% percentiles of 2000 resamples move by about 0.1% of
# the ratio between seeds at n = 30 and 2% noise, an order of magnitude below the 3% threshold
# the gate uses; more resamples cost time linearly for no visible change in its error rates.
N_BOOT = 2000

# Seed of the bootstrap when the caller gives none: the same inputs always give the same interval.
SEED = 0

# A relative interval half-width above this marks a summary as noisy (reports may flag it): at
# 5% the interval alone cannot separate a 5% change from no change.
NOISY_REL_CI_HALFWIDTH = 0.05


@dataclass(frozen=True)
class Summary:
    """Median of the samples with a distribution-free interval around it.

    coverage is the exact coverage of [ci_low, ci_high] under the binomial order-statistic
    argument; it is at least the confidence asked for, except with too few samples (n < 6 at
    95%), where the interval is [min, max] and coverage says how much less it covers.
    """

    median: float
    ci_low: float
    ci_high: float
    n: int
    iqr: float
    rel_ci_halfwidth: float
    confidence: float
    coverage: float


def _finite_array(samples: Sequence[float], name: str) -> np.ndarray:
    x = np.asarray(samples, dtype=float).ravel()
    if x.size == 0:
        raise ValueError(f"{name}: no samples")
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise ValueError(f"{name}: {bad} of {x.size} samples are not finite; expected finite milliseconds")
    return x


@functools.lru_cache(maxsize=1024)  # pure in (n, confidence)
def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int, float]:
    """0-based ranks (lo, hi) of the order statistics bracketing the median, and their coverage.

    Estimator: the number of samples below the population median is Binomial(n, 1/2), so
    [x_(j), x_(n+1-j)] (1-based) covers the median with probability 1 - 2 * P(B <= j - 1).
    j is the largest rank that keeps that at or above `confidence`. With too few samples no
    rank does (n < 6 at 95%); then the interval is [min, max] and the coverage is below the ask.
    """
    if n < 1:
        raise ValueError(f"median_ci_ranks: n is {n}; expected at least 1")
    if not 0 < confidence < 1:
        raise ValueError(f"median_ci_ranks: confidence is {confidence!r}; expected 0 < confidence < 1")
    alpha = 1.0 - confidence
    # P(B <= j - 1) <= alpha / 2  <=>  j - 1 <= the largest k with cdf(k) <= alpha / 2.
    # The cdf of Binomial(n, 1/2) exactly: counts of outcomes in integers, divided once.
    total, below, term, k = 1 << n, 0, 1, -1  # term: comb(n, k + 1)
    cdf_k = 0.0  # P(B <= k)
    while k + 1 <= n // 2 and (below + term) / total <= alpha / 2:
        below += term
        k += 1
        cdf_k = below / total
        term = term * (n - k) // (k + 1)
    j = max(k + 1, 1)  # 1-based rank of the lower bound
    coverage = 1.0 - 2.0 * (cdf_k if k >= 0 else 1 / total)  # P(B <= j - 1)
    return j - 1, n - j, coverage


def summarize(samples_ms: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Median, its distribution-free confidence interval, and the interquartile range.

    Estimators: the sample median (numpy, mean of the two middle values for even n); the CI of
    the median from binomial order statistics (`median_ci_ranks`), which assumes only
    independent, identically distributed samples, not normality; the IQR from numpy's default
    linear-interpolation quantiles (Hyndman and Fan type 7). rel_ci_halfwidth is the half-width
    of the interval over the median, the precision figure that stopping rules and reports use.
    """
    # a sorted list rather than numpy calls, whose per-call cost was 20x the work on a record's few
    # dozen samples (a dashboard summarizes every record of a year of nightlies: 70,000)
    x = sorted(np.asarray(samples_ms, dtype=float).ravel().tolist())
    n = len(x)
    if n == 0 or not all(map(math.isfinite, x)):
        _finite_array(samples_ms, "summarize")  # raises, saying how many are not finite
    lo, hi, coverage = median_ci_ranks(n, confidence)
    median = x[n // 2] if n % 2 else (x[n // 2 - 1] + x[n // 2]) / 2  # numpy's median, bit for bit
    q1, q3 = _type7(x, 0.25), _type7(x, 0.75)
    ci_low, ci_high = x[lo], x[hi]
    half = (ci_high - ci_low) / 2
    rel = half / median if median > 0 else math.inf
    return Summary(median, ci_low, ci_high, n, float(q3 - q1), rel, confidence, coverage)


def _type7(x: list[float], q: float) -> float:
    """numpy's default (linear, Hyndman and Fan type 7) quantile of sorted `x`, bit for bit: its
    virtual index (n - 1) q and its two-sided lerp."""
    v = (len(x) - 1) * q
    i = math.floor(v)
    g = v - i
    a, b = x[i], x[min(i + 1, len(x) - 1)]
    d = b - a
    return b - d * (1 - g) if g >= 0.5 else a + d * g


def bootstrap_ratio_ci(
    base: Sequence[float],
    cand: Sequence[float],
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int | None = SEED,
) -> tuple[float, float, float]:
    """Ratio of medians cand / base, with a percentile-bootstrap confidence interval.

    Estimator: resample each side with replacement (independently, sizes kept), take the
    ratio of the two resample medians, and report the (1 - confidence) / 2 and (1 + confidence)
    / 2 percentiles of n_boot such ratios. Vectorized: one (n_boot, n) index draw per side.
    Seeded, so the same inputs give the same interval. Limits: the bootstrap distribution of a
    median is discrete for small n, and percentile intervals undercover slightly at n ~ 10;
    docs/statistics.md gives the error rates this leads to in the gate.
    """
    b = _finite_array(base, "bootstrap_ratio_ci: base")
    c = _finite_array(cand, "bootstrap_ratio_ci: cand")
    if n_boot < 100:
        raise ValueError(f"bootstrap_ratio_ci: n_boot is {n_boot}; expected at least 100")
    if not 0 < confidence < 1:
        raise ValueError(f"bootstrap_ratio_ci: confidence is {confidence!r}; expected 0 < confidence < 1")
    mb = float(np.median(b))
    if mb <= 0:
        raise ValueError(f"bootstrap_ratio_ci: base median is {mb!r}; expected a positive latency")
    ratio = float(np.median(c)) / mb
    rng = np.random.default_rng(seed)
    boot_b = np.median(b[rng.integers(0, b.size, size=(n_boot, b.size))], axis=1)
    boot_c = np.median(c[rng.integers(0, c.size, size=(n_boot, c.size))], axis=1)
    ratios = boot_c / boot_b
    alpha = 1.0 - confidence
    lo, hi = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    return ratio, float(lo), float(hi)

