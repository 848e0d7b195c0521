"""The gate measured on this machine: false alarms over A/A pairs, detection of injected delays,
and the smallest change this machine can detect, per case.

Input: several runs of the same cases with the same code (A/A), and runs with a known delay
injected into every forward (`run --inject-delay F`, F a fraction of the case's step time).
Every pair is judged by the very gate `compare` uses (`gate.decide`), so what this reports is
what a comparison on this machine would do. The run-to-run noise a pair is judged with comes
from the A/A runs *other* than the ones in the pair (a run never vouches for its own noise).
Detection is judged against the slowdown each injected run really carried, not the size asked for
(a delay sized from a step's wall time is not what the forward sees): the size the workers
measured, plain against delayed forwards in the same process (`bench/inject.measured_size`), where
the records have it, else the injected runs' level over the A/A runs' (runs before it: a cross-run
figure with the runs' own noise in it). Pure functions over per-case sample groups.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence, Union

import numpy as np

from dsabench.analysis.defaults import AUTO, AUTO_FALSE_ALARM, AUTO_FLOOR
from dsabench.analysis.gate import HOST_CHANGED, Threshold, decide
from dsabench.analysis.hierarchy import t_quantile
from dsabench.analysis.hierarchy import Groups, log_levels
from dsabench.analysis.host_steady import steady_sides
from dsabench.analysis.noise import UNKNOWN, Noise, run_level, series_noise

# One run: case id -> its samples grouped per process, or its frame row (process_samples beside
# process_chunks: an eager case is then judged on its host-steady chunks, as compare judges it).
RunGroups = Mapping[str, Union[Groups, Mapping]]


def _groups(side) -> Groups:
    return side["process_samples"] if isinstance(side, Mapping) else side


def _judge(base, cand, threshold: Threshold, noise: Noise, n_boot: int, seed: int):
    steady = steady_sides(base, cand) if isinstance(base, Mapping) and isinstance(cand, Mapping) else None
    return decide(_groups(base), _groups(cand), threshold, noise=noise, steady=steady, n_boot=n_boot, seed=seed)

POWER = 0.95


@dataclass(frozen=True)
class CaseCalibration:
    """One case's calibration. measured maps an injected fraction to the slowdown detection is
    judged against: the workers' measured size (median over the injected processes) where
    recorded (size_source 'worker'), else level_shift (size_source 'levels'); level_shift: the
    injected runs' level over the mean A/A level, minus 1 (what the timed runs showed, noise and all)."""

    case_id: str
    run_to_run: float  # sd of the A/A runs' log levels
    process_spread: float  # pooled sd of the A/A runs' per-process log levels
    aa_pairs: int
    false_alarms: int  # A/A pairs called slower or faster
    noisy_pairs: int
    detected: Mapping[float, tuple[int, int]] = field(default_factory=dict)  # fraction -> (slower, pairs)
    measured: Mapping[float, float] = field(default_factory=dict)  # fraction -> measured slowdown
    level_shift: Mapping[float, float] = field(default_factory=dict)  # fraction -> injected level / A/A level - 1
    size_source: Mapping[float, str] = field(default_factory=dict)  # fraction -> 'worker' or 'levels'
    mde: float = math.nan  # smallest slowdown detected with POWER, from the noise model
    withheld: int = 0  # pairs (A/A and injected) given no verdict: the two runs' hosts differ (host_changed)


def smallest_detectable(threshold: Threshold, run_spread: float, process_spread: float, processes: int,
                        power: float = POWER) -> float:
    """Slowdown called `slower` with probability `power` (approximately): it must put the
    interval's lower end beyond the band. The standard error of the log ratio of two runs is the
    larger of sqrt(2) x the spread of run levels (already over whole runs: not divided again)
    and process_spread x sqrt(2 / processes); its t quantiles have 2 x processes - 2 degrees of
    freedom. With AUTO the change must also be significant at AUTO_FALSE_ALARM and clear AUTO_FLOOR."""
    spreads = [s for s in (math.sqrt(2.0) * run_spread,
                           process_spread * math.sqrt(2.0 / max(processes, 1))) if math.isfinite(s)]
    if not spreads or processes < 2:
        return math.nan
    return detectable(threshold, max(spreads), 2 * processes - 2, power)


def detectable(threshold: Threshold, se: float, df: float, power: float = POWER) -> float:
    """Slowdown called `slower` with probability `power` (approximately) by an interval of standard
    error `se` (of the log ratio) and `df` degrees of freedom: its lower end must clear the band.
    With AUTO the change must also be significant at AUTO_FALSE_ALARM and clear AUTO_FLOOR."""
    if not (df >= 1 and math.isfinite(se) and se >= 0):
        return math.nan
    if threshold == AUTO:
        return max((1 + AUTO_FLOOR) * math.exp((t_quantile(0.975, df) + t_quantile(power, df)) * se),
                   math.exp((t_quantile(1 - AUTO_FALSE_ALARM / 2, df) + t_quantile(power, df)) * se)) - 1
    return (1 + float(threshold)) * math.exp((t_quantile(0.975, df) + t_quantile(power, df)) * se) - 1


def pooled_process_spread(runs: Sequence[Groups]) -> float:
    """Pooled sd of per-process log levels within each run (each run's own mean taken out)."""
    ss, df = 0.0, 0
    for groups in runs:
        x = log_levels(groups)
        ss += float(((x - x.mean()) ** 2).sum())
        df += x.size - 1
    return math.sqrt(ss / df) if df > 0 else math.nan


def _noise_without(levels: Sequence[float], skip: set[int]) -> Noise:
    kept = [v for i, v in enumerate(levels) if i not in skip]
    noise = series_noise(kept)
    return noise if noise.known else UNKNOWN


def calibrate(aa_runs: Sequence[RunGroups], injected: Mapping[float, Sequence[RunGroups]], threshold: Threshold,
              *, sizes: Mapping[float, Mapping[str, float]] | None = None, n_boot: int = 1000) -> list[CaseCalibration]:
    """Judge every A/A pair and every (A/A run, injected run) pair of each case present in all
    A/A runs; each pair's noise comes from the other A/A runs (3 or more of them give one).
    sizes: per injected fraction, per case, the slowdown the workers measured (module docstring)."""
    if len(aa_runs) < 2:
        raise ValueError(f"calibrate: {len(aa_runs)} A/A run(s); expected at least 2 (3 or more for a noise estimate)")
    cases = sorted(set.intersection(*(set(r) for r in aa_runs)))
    out = []
    for case in cases:
        levels = [run_level(_groups(r[case])) for r in aa_runs]
        alarms = noisy = pairs = withheld = 0
        for k, (i, j) in enumerate(itertools.combinations(range(len(aa_runs)), 2)):
            d = _judge(aa_runs[i][case], aa_runs[j][case], threshold, _noise_without(levels, {i, j}), n_boot, k)
            pairs += 1
            alarms += d.verdict in ("slower", "faster")
            noisy += d.noisy
            withheld += d.reason == HOST_CHANGED
        detected, measured, shift, source = {}, {}, {}, {}
        for frac, runs in sorted(injected.items()):
            hit = total = 0
            for j, (i, inj) in enumerate(itertools.product(range(len(aa_runs)), runs)):
                if case not in inj:
                    continue
                total += 1
                d = _judge(aa_runs[i][case], inj[case], threshold, _noise_without(levels, {i}), n_boot, j)
                hit += d.verdict == "slower"
                withheld += d.reason == HOST_CHANGED
            inj_levels = [run_level(_groups(r[case])) for r in runs if case in r]
            detected[frac] = (hit, total)
            if inj_levels:
                shift[frac] = float(np.mean(inj_levels) / np.mean(levels) - 1)
            worker = (sizes or {}).get(frac, {}).get(case)
            if worker is not None and math.isfinite(worker):
                measured[frac], source[frac] = float(worker), "worker"
            elif frac in shift:
                measured[frac], source[frac] = shift[frac], "levels"
        procs = min(len(_groups(r[case])) for r in aa_runs)
        run_spread = series_noise(levels).spread if len(levels) >= 3 else math.nan
        proc_spread = pooled_process_spread([_groups(r[case]) for r in aa_runs])
        out.append(CaseCalibration(case, run_spread, proc_spread, pairs, alarms, noisy, detected, measured, shift,
                                   source, smallest_detectable(threshold, run_spread, proc_spread, procs), withheld))
    return out
