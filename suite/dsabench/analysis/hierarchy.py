"""Intervals that include the variance between processes.

A record keeps its samples grouped by the worker process that measured them. Samples of one
process share its allocations, warm-up, clocks at the time and where the host stalls land, so
they are not independent of each other; a flat bootstrap over all samples treats them as if
they were and gives intervals far narrower than the spread between processes, and between runs.

With two or more processes the unit of replication is the process: `level_interval` takes each
process's log median as one observation and gives a Student t interval with the degrees of
freedom those observations have (R - 1 for paired sides, on the per-process log ratios; Rb + Rc
- 2 unpaired, pooled variance). A paired process's log ratio is the median of its per-round log
ratios (`paired_log_ratios`), not the ratio of its two medians: a load burst that hits one side of
one round moves one of many ratios, where it could move one side's median. A percentile bootstrap over 2 or 3 processes cannot do this: it
missed the true ratio in 31% of A/A pairs at R = 2 (docs/statistics.md). A history of earlier
runs adds its run-to-run spread with its own degrees of freedom.

With one process a side and no history nothing varies between processes: `ratio_interval` (a
bootstrap of the samples, paired by round where the sides were interleaved) is the within-process
precision only, and `Interval.source` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

import numpy as np

from dsabench.analysis.stats import CONFIDENCE, N_BOOT, SEED

Groups = Sequence[Sequence[float]]

# Robust standard deviation from the median absolute deviation (consistent for a normal law).
MAD_TO_SD = 1.4826


WITHIN_PROCESS = "within_process"


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval; `processes` is the smaller side's number of processes.

    se and df: the standard error of the log ratio and its degrees of freedom (NaN for a
    within-process bootstrap); spread: the noise behind it, relative (sd of per-process log
    levels, of per-process log ratios when paired, or of run levels from history; the largest);
    source: what the interval's width stands on ("processes", "history", "processes+history",
    or WITHIN_PROCESS: one process a side, no history).
    """

    estimate: float
    low: float
    high: float
    processes: int
    se: float = math.nan
    df: float = math.nan
    spread: float = math.nan
    source: str = WITHIN_PROCESS

    @property
    def within_process_only(self) -> bool:
        return self.source == WITHIN_PROCESS

    @property
    def p_value(self) -> float:
        """Two-sided p of the test this interval inverts: 2 (1 - T_df(|log estimate| / se)), normal
        where df is infinite; below 1 - confidence exactly when the interval excludes 1 (no change).
        NaN for a within-process bootstrap: one process's precision says nothing of the spread
        between processes or runs, so a p from it would call a change where the gate cannot."""
        if self.within_process_only or not self.se >= 0 or not self.estimate > 0:
            return math.nan
        z = abs(math.log(self.estimate))
        if self.se == 0:  # every process alike: the interval is its estimate alone
            return 1.0 if z == 0 else 0.0
        if not math.isfinite(self.df):
            return 2 * NormalDist().cdf(-z / self.se)
        from scipy.stats import t  # noqa: PLC0415 - scipy is 1 s to import; only the analysis verbs need it

        return float(2 * t.sf(z / self.se, self.df))


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
    return row_nanmedians(values, sizes.sum(axis=1))


def row_nanmedians(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """np.nanmedian(values, axis=1), bit for bit, where row i holds counts[i] >= 1 numbers and NaN
    elsewhere: sort (NaN last) and take the middle one, or half the sum of the middle two, as
    numpy does; without numpy's masked-array path, which was half of a report's statistics."""
    ordered = np.sort(values, axis=1)
    low = np.take_along_axis(ordered, ((counts - 1) // 2)[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, (counts // 2)[:, None], axis=1)[:, 0]
    return (low + high) / 2


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


def log_levels(groups: Groups, name: str = "log_levels") -> np.ndarray:
    """Log median of each process: one observation of the case's level per process."""
    levels = np.array([float(np.median(g)) for g in _groups(groups, name)])
    if not np.all(levels > 0):
        raise ValueError(f"{name}: a process median is {levels.min()!r}; expected positive latencies")
    return np.log(levels)


def paired_log_ratios(base: Groups, cand: Groups) -> np.ndarray:
    """Per process, the median of log(cand_i / base_i) over its samples i: sample i of both sides
    was taken in the same interleaved round (the protocol gives the sides one chunk size), so each
    term is one round's ratio. A process whose sides differ in length (an old or damaged record)
    gives the log ratio of its two medians instead. base[i] and cand[i] must be one process: callers
    pair them by the identity each carries (`analysis.pairing`), never by place in a list of the ok
    ones, where a repeat lost on one side shifts every later one."""
    b, c = _groups(base, "paired_log_ratios: base"), _groups(cand, "paired_log_ratios: cand")
    if len(b) != len(c):
        raise ValueError(f"paired_log_ratios: {len(b)} base processes, {len(c)} cand; expected the same processes")
    out = []
    for i, (xb, xc) in enumerate(zip(b, c)):
        if np.any(xb <= 0) or np.any(xc <= 0):
            raise ValueError(f"paired_log_ratios: process {i} holds a latency <= 0; expected positive latencies")
        if xb.size == xc.size:
            out.append(float(np.median(np.log(xc) - np.log(xb))))
        else:
            out.append(float(np.log(np.median(xc)) - np.log(np.median(xb))))
    return np.asarray(out)


def t_quantile(p: float, df: float) -> float:
    """Student t's p quantile with df degrees of freedom; the normal's where df is infinite. The
    one quantile function of the gate, its p, calibrate and the unjudged estimate."""
    if not math.isfinite(df):
        return NormalDist().inv_cdf(p)
    from scipy.stats import t  # noqa: PLC0415 - scipy is 1 s to import; only the analysis verbs need it

    return float(t.ppf(p, df))


def _t(confidence: float, df: float) -> float:
    return t_quantile(0.5 + confidence / 2, df)


def level_interval(base: Groups, cand: Groups, *, paired: bool = False, history: tuple[float, int] | None = None,
                   confidence: float = CONFIDENCE) -> Interval | None:
    """Ratio cand / base of the geometric mean of process medians, with a Student t interval.

    paired (the two sides measured in the same processes, same count): the observations are the
    per-process log ratios (`paired_log_ratios`: each the median of its rounds' ratios), R - 1
    degrees of freedom; pairing cancels what moves a process's two sides together; the ratio is
    the geometric mean of the per-process ratios. Unpaired: the difference of mean log levels, pooled variance, Rb + Rc - 2
    degrees of freedom. history (spread, df): the sd of earlier runs' log levels and its degrees
    of freedom; a run's level varies by it, so the difference of two runs by sqrt(2) x it. With
    both, the two variance estimates of the difference are pooled by their degrees of freedom,
    never below the processes' own. None when nothing measures a spread (one process a side, no
    history, or paired with one process).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"level_interval: confidence is {confidence!r}; expected 0 < confidence < 1")
    xb, xc = log_levels(base, "level_interval: base"), log_levels(cand, "level_interval: cand")
    rb, rc = xb.size, xc.size
    var, df, spread, source = math.nan, 0.0, math.nan, "processes"
    if paired and rb == rc:
        if rb < 2:
            return None
        r = paired_log_ratios(base, cand)
        est = float(r.mean())
        spread = float(r.std(ddof=1))
        var, df = spread**2 / rb, rb - 1.0
    else:
        est = float(xc.mean() - xb.mean())
        dfp = (rb - 1) + (rc - 1)
        if dfp > 0:
            ss = float(((xb - xb.mean()) ** 2).sum() + ((xc - xc.mean()) ** 2).sum())
            spread = math.sqrt(ss / dfp)
            var, df = spread**2 * (1 / rb + 1 / rc), float(dfp)
        if history is not None and math.isfinite(history[0]) and history[1] >= 1:
            h_var, h_df = 2 * history[0] ** 2, float(history[1])
            if df > 0:
                pooled = (df * var + h_df * h_var) / (df + h_df)
                var, df, source = max(pooled, var), df + h_df, "processes+history"
            else:
                var, df, source = h_var, h_df, "history"
            spread = max(history[0], spread) if math.isfinite(spread) else history[0]
    if df <= 0:
        return None
    se = math.sqrt(var)
    h = _t(confidence, df) * se
    return Interval(math.exp(est), math.exp(est - h), math.exp(est + h), min(rb, rc), se, df, spread, source)


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
