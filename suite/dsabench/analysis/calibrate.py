"""The gate measured on this machine: false alarms over A/A pairs, detection of injected delays,
and the smallest change this machine can detect, per case.

Input: several runs of the same cases with the same code (A/A), and runs with a known delay
injected into every forward (`run --inject-delay F`, F a fraction of the case's forward). Every
pair is judged by the very gate `compare` uses (`gate.decide`), so what this reports is what
a nightly comparison on this machine would do. Pure functions over per-case sample groups.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy.stats import norm

from dsabench.analysis.gate import K_NOISE, decide
from dsabench.analysis.hierarchy import Groups, robust_log_spread
from dsabench.analysis.noise import UNKNOWN, Noise

# One run: case id -> its samples grouped per process.
RunGroups = Mapping[str, Groups]

POWER = 0.95


@dataclass(frozen=True)
class CaseCalibration:
    case_id: str
    run_to_run: float  # robust sd of the A/A runs' log medians
    aa_pairs: int
    false_alarms: int  # A/A pairs called slower or faster
    noisy_pairs: int
    detected: Mapping[float, tuple[int, int]] = field(default_factory=dict)  # fraction -> (slower, pairs)
    mde: float = math.nan  # smallest slowdown detected with POWER, from the noise model

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.aa_pairs if self.aa_pairs else math.nan


def _median(groups: Groups) -> float:
    return float(np.median(np.concatenate([np.asarray(g, dtype=float) for g in groups if len(g)])))


def smallest_detectable(threshold: float, spread: float, processes: int, k: float = K_NOISE,
                        power: float = POWER) -> float:
    """Slowdown called `slower` with probability `power`: it must put the interval's lower end
    beyond the band max(threshold, k x spread). The interval's half-width is about
    z_0.975 x sqrt(2) x spread / sqrt(processes) on the log scale (normal approximation)."""
    if not math.isfinite(spread):
        return math.nan
    band = max(threshold, k * spread)
    se = math.sqrt(2.0) * spread / math.sqrt(max(processes, 1))
    return (1 + band) * math.exp((norm.ppf(0.975) + norm.ppf(power)) * se) - 1


def calibrate(aa_runs: Sequence[RunGroups], injected: Mapping[float, Sequence[RunGroups]], threshold: float,
              *, n_boot: int = 1000) -> list[CaseCalibration]:
    """Judge every A/A pair and every (A/A run, injected run) pair of each case present in all runs."""
    if len(aa_runs) < 2:
        raise ValueError(f"calibrate: {len(aa_runs)} A/A run(s); expected at least 2 (3 or more for a noise estimate)")
    cases = sorted(set.intersection(*(set(r) for r in aa_runs)))
    out = []
    for case in cases:
        medians = [_median(r[case]) for r in aa_runs]
        spread = robust_log_spread(medians) if len(medians) >= 3 else math.nan
        noise = Noise(spread, len(medians), "history") if math.isfinite(spread) else UNKNOWN
        alarms = noisy = pairs = 0
        for i, (a, b) in enumerate(itertools.combinations(aa_runs, 2)):
            d = decide(a[case], b[case], threshold, noise=noise, n_boot=n_boot, seed=i)
            pairs += 1
            alarms += d.verdict in ("slower", "faster")
            noisy += d.verdict == "noisy"
        detected = {}
        for frac, runs in sorted(injected.items()):
            hit = total = 0
            for j, (a, inj) in enumerate(itertools.product(aa_runs, runs)):
                if case not in inj:
                    continue
                total += 1
                hit += decide(a[case], inj[case], threshold, noise=noise, n_boot=n_boot, seed=j).verdict == "slower"
            detected[frac] = (hit, total)
        procs = min(len(r[case]) for r in aa_runs)
        out.append(CaseCalibration(case, spread, pairs, alarms, noisy, detected,
                                   smallest_detectable(threshold, spread, procs)))
    return out
