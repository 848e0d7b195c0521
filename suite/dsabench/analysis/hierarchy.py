"""Intervals that include the variance between processes: a hierarchical (two-stage) bootstrap.

A record keeps its samples grouped by the worker process that measured them. Samples of one
process share its allocations, warm-up, clocks at the time and where the host stalls land, so
they are not independent of each other; a flat bootstrap over all samples treats them as if
they were and gives intervals far narrower than the spread between processes, and between runs.
Resampling processes first, then samples within each chosen process, puts that spread inside
the interval (Davison and Hinkley 1997, section 3.8; Saravanan et al. 2020 for the same idea
applied to nested measurements). With one process per side nothing varies between processes
and the interval is the within-process precision only: `Interval.processes` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dsabench.analysis.stats import CONFIDENCE, N_BOOT, SEED

Groups = Sequence[Sequence[float]]

# Robust standard deviation from the median absolute deviation (consistent for a normal law).
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval; `processes` is the smaller side's number of processes."""

    estimate: float
    low: float
    high: float
    processes: int

    @property
    def within_process_only(self) -> bool:
        return self.processes < 2


def _groups(groups: Groups, name: str) -> list[np.ndarray]:
    out = []
    for i, g in enumerate(groups):
        x = np.asarray(g, dtype=float).ravel()
        if x.size == 0:
            continue
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name}: process {i} holds non-finite samples; expected finite milliseconds")
        out.append(x)
    if not out:
        raise ValueError(f"{name}: no samples")
    return out


def _padded(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    n = np.array([g.size for g in groups])
    pad = np.full((len(groups), int(n.max())), np.nan)
    for i, g in enumerate(groups):
        pad[i, : g.size] = g
    return pad, n


def pooled_median(groups: Groups) -> float:
    return float(np.median(np.concatenate(_groups(groups, "pooled_median"))))


def _boot_medians(groups: list[np.ndarray], rng: np.random.Generator, n_boot: int,
                  procs: np.ndarray | None = None, unit: np.ndarray | None = None) -> np.ndarray:
    """n_boot medians of two-stage resamples: processes with replacement, then each chosen
    process's samples with replacement (its size kept). `procs` and `unit` (uniforms in [0, 1)
    of shape (n_boot, R, max_n)) may be given to pair two sides on the same draws."""
    pad, n = _padded(groups)
    r, width = pad.shape
    if procs is None:
        procs = rng.integers(0, r, size=(n_boot, r)) if r > 1 else np.zeros((n_boot, 1), dtype=int)
    if unit is None:
        unit = rng.random((n_boot, r, width))
    sizes = n[procs]  # (n_boot, r)
    pos = np.minimum((unit * sizes[:, :, None]).astype(int), sizes[:, :, None] - 1)
    values = pad[procs[:, :, None], pos]  # (n_boot, r, width)
    mask = np.arange(width)[None, None, :] < sizes[:, :, None]
    values = np.where(mask, values, np.nan).reshape(n_boot, -1)
    return np.nanmedian(values, axis=1)


def _check(confidence: float, n_boot: int, name: str) -> None:
    if n_boot < 100:
        raise ValueError(f"{name}: n_boot is {n_boot}; expected at least 100")
    if not 0 < confidence < 1:
        raise ValueError(f"{name}: confidence is {confidence!r}; expected 0 < confidence < 1")


def median_interval(groups: Groups, confidence: float = CONFIDENCE, n_boot: int = N_BOOT,
                    seed: int | None = SEED) -> Interval:
    """Pooled median of all samples, with a hierarchical percentile-bootstrap interval."""
    _check(confidence, n_boot, "median_interval")
    g = _groups(groups, "median_interval")
    rng = np.random.default_rng(seed)
    boot = _boot_medians(g, rng, n_boot)
    a = 1 - confidence
    lo, hi = np.quantile(boot, [a / 2, 1 - a / 2])
    return Interval(float(np.median(np.concatenate(g))), float(lo), float(hi), len(g))


def _pairable(base: list[np.ndarray], cand: list[np.ndarray]) -> bool:
    return len(base) == len(cand) and all(b.size == c.size for b, c in zip(base, cand))


def ratio_interval(base: Groups, cand: Groups, *, paired: bool = False, confidence: float = CONFIDENCE,
                   n_boot: int = N_BOOT, seed: int | None = SEED) -> Interval:
    """Ratio of pooled medians cand / base with a hierarchical percentile-bootstrap interval.

    paired: the two sides were measured in the same processes, sample i of process p of both
    in the same interleaved round (variants of one case). Then one draw of processes and rounds
    serves both sides, so drift that moves both together cancels in the ratio, as it should.
    Unpaired (two runs), each side is resampled on its own draws.
    """
    _check(confidence, n_boot, "ratio_interval")
    b, c = _groups(base, "ratio_interval: base"), _groups(cand, "ratio_interval: cand")
    mb = float(np.median(np.concatenate(b)))
    if not mb > 0:
        raise ValueError(f"ratio_interval: base median is {mb!r}; expected a positive latency")
    rng = np.random.default_rng(seed)
    if paired and _pairable(b, c):
        r, width = len(b), max(x.size for x in b)
        procs = rng.integers(0, r, size=(n_boot, r)) if r > 1 else np.zeros((n_boot, 1), dtype=int)
        unit = rng.random((n_boot, r, width))
        boot_b = _boot_medians(b, rng, n_boot, procs, unit)
        boot_c = _boot_medians(c, rng, n_boot, procs, unit)
    else:
        boot_b = _boot_medians(b, rng, n_boot)
        boot_c = _boot_medians(c, rng, n_boot)
    ratios = boot_c / boot_b
    a = 1 - confidence
    lo, hi = np.quantile(ratios, [a / 2, 1 - a / 2])
    ratio = float(np.median(np.concatenate(c))) / mb
    return Interval(ratio, float(lo), float(hi), min(len(b), len(c)))


def robust_log_spread(values: Sequence[float]) -> float:
    """Robust standard deviation of log(values): 1.4826 x the median absolute deviation.

    Applied to per-process or per-run medians it is the relative spread of a case's level
    (0.02 = about 2%), unmoved by one odd process or run. NaN with fewer than 2 values.
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v) and v > 0], dtype=float)
    if x.size < 2:
        return math.nan
    logs = np.log(x)
    return float(MAD_TO_SD * np.median(np.abs(logs - np.median(logs))))


def process_spread(groups: Groups) -> float:
    """Spread of a case's level between its processes (robust sd of log process medians)."""
    return robust_log_spread([float(np.median(g)) for g in _groups(groups, "process_spread")])
