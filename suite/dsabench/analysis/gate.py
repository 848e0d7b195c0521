"""The gate: a verdict that holds across runs.

A change is called only when the ratio's interval, which includes the variance between
processes (hierarchical bootstrap) or, for single-process runs, the case's run-to-run noise from
history, lies entirely beyond max(threshold, K_NOISE x noise). A case whose own noise exceeds
the threshold is `noisy`, with its figure, unless the change clears even the widened band. Two
single-process runs with no history are never called different: their interval is the
precision of one series, not the spread between runs (docs/statistics.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

import numpy as np

from dsabench.analysis.hierarchy import Groups, Interval, process_spread, ratio_interval
from dsabench.analysis.noise import UNKNOWN, Noise
from dsabench.analysis.stats import CONFIDENCE, N_BOOT, SEED

# How many run-to-run standard deviations a change must clear. The difference of two runs has
# sd sqrt(2) x spread, and 1.96 x sqrt(2) = 2.77; rounded up to 3 for a spread estimated from a
# handful of runs (calibrate measures the resulting false alarms and power per machine).
K_NOISE = 3.0

MIN_SAMPLES = 5


@dataclass(frozen=True)
class GateResult:
    verdict: str  # faster | slower | same | undecided | noisy
    reason: str
    message: str
    ratio: float
    ci_low: float
    ci_high: float
    band: float
    noise: float
    processes: int


def _pct(x: float) -> str:
    return f"{(x - 1) * 100:+.1f}%"


def widen(iv: Interval, spread: float, confidence: float = CONFIDENCE) -> Interval:
    """Add two runs' level noise (sd `spread` each, on the log scale) to an interval."""
    if not math.isfinite(spread) or spread <= 0:
        return iv
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    lr = math.log(iv.estimate)
    h_in = max(lr - math.log(iv.low), math.log(iv.high) - lr)
    h = math.hypot(h_in, z * math.sqrt(2.0) * spread)
    return Interval(iv.estimate, math.exp(lr - h), math.exp(lr + h), iv.processes)


def decide(base: Groups, cand: Groups, threshold: float, *, noise: Noise = UNKNOWN, paired: bool = False,
           k: float = K_NOISE, confidence: float = CONFIDENCE, n_boot: int = N_BOOT,
           seed: int | None = SEED) -> GateResult:
    """Verdict on cand vs base, each a list of per-process sample lists (ms)."""
    if not 0 <= threshold < 1:
        raise ValueError(f"decide: threshold is {threshold!r}; expected a fraction in [0, 1)")
    nb, nc = sum(len(g) for g in base), sum(len(g) for g in cand)
    if min(nb, nc) < MIN_SAMPLES:
        return GateResult("undecided", "too_few_samples",
                          f"base has {nb} samples, cand {nc}; a verdict needs at least {MIN_SAMPLES} on each side",
                          math.nan, math.nan, math.nan, threshold, math.nan, 0)
    iv = ratio_interval(base, cand, paired=paired, confidence=confidence, n_boot=n_boot, seed=seed)
    spreads = [noise.spread] if noise.known else []
    if iv.processes >= 2:
        spreads += [process_spread(base), process_spread(cand)]
    elif not paired and noise.known:
        iv = widen(iv, noise.spread, confidence)
    spread = max((s for s in spreads if math.isfinite(s)), default=math.nan)
    band = max(threshold, k * spread) if math.isfinite(spread) else threshold
    within_only = iv.processes < 2 and not paired and not noise.known
    numbers = f"{_pct(iv.estimate)} ({confidence * 100:g}% CI {_pct(iv.low)} to {_pct(iv.high)})"
    noise_txt = f"run-to-run noise {spread * 100:.1f}%" if math.isfinite(spread) else "no run-to-run noise estimate"

    def result(verdict: str, reason: str, text: str) -> GateResult:
        return GateResult(verdict, reason, f"{numbers} {text}", iv.estimate, iv.low, iv.high, band,
                          spread, iv.processes)

    inside = 1 - threshold <= iv.low and iv.high <= 1 + threshold
    if within_only:
        if inside:
            return result("same", "ci_within_threshold",
                          f"within +-{threshold * 100:.1f}% (one process a side, no history: within-run precision only)")
        return result("undecided", "within_run_precision_only",
                      "one process a side and no history: the interval is one series' precision, not the spread "
                      "between runs; measure with --repeats or compare with --history")
    if iv.low > 1 + band:
        return result("slower", "ci_above_threshold", f"entirely above +{band * 100:.1f}% ({noise_txt})")
    if iv.high < 1 - band:
        return result("faster", "ci_below_threshold", f"entirely below -{band * 100:.1f}% ({noise_txt})")
    if math.isfinite(spread) and spread > threshold:
        return result("noisy", "noise_above_threshold",
                      f"{noise_txt} exceeds the {threshold * 100:.1f}% threshold; a change must clear "
                      f"+-{band * 100:.1f}% to be called")
    if 1 - band <= iv.low and iv.high <= 1 + band:
        return result("same", "ci_within_threshold", f"within +-{band * 100:.1f}% ({noise_txt})")
    return result("undecided", "ci_crosses_threshold", f"crosses the edge of +-{band * 100:.1f}% ({noise_txt})")


def flat_groups(samples: Sequence[float]) -> list[list[float]]:
    """Samples of a record without process grouping (old runs): one process."""
    return [list(np.asarray(samples, dtype=float))]
