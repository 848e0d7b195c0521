"""The gate: the one verdict on cand vs base that every command gives (compare, --variants,
--impls, the run summary, evidence, the dashboard, calibrate and power all call `decide`).

The interval of the ratio stands on what varies between runs: per-process log levels with a
Student t quantile of their degrees of freedom (`hierarchy.level_interval`), plus the case's
run-to-run noise from history where given (`noise`). A change is called when the whole interval
lies beyond the band, whatever the noise: a confident change is never swallowed. The band is
symmetric on the log scale, as the interval is: slower beyond 1 + band, faster below 1 / (1 + band)
(`edges`), so swapping base and cand swaps the verdict exactly. `noisy` is a
qualifier, not a verdict: the case's own spread exceeds the threshold, so its interval is wide
and an `undecided` there can hide a change as large as the interval's far end.

The band is the threshold, or with `auto` each case's own: the width that holds A/A false alarms
to AUTO_FALSE_ALARM (two-sided) given the interval's standard error and degrees of freedom, never
below AUTO_FLOOR. One process a side with no history is never called changed: nothing measures
the spread between processes, so no interval could cover it (`within_run_precision_only`).

A cross-run comparison of an eager (host-bound) case may hand in `steady`, its sides' host-steady
chunks by evidence alone (`host_steady.steady_sides`: probe, run delay, steal; never the chunks'
own time). With two processes or more a side left, the verdict rests on them, and says so ("on 412
of 600 chunks host-steady ..."), with what all samples would say where that differs; else on all
samples, saying why. The evidence is blind to the code: a slowdown of the code, uniform or
intermittent, lands in steady and disturbed chunks alike and is judged, never set aside
(docs/statistics.md has the options weighed on the H200's runs). Where it falls back on all samples
and the same evidence says the two runs' hosts differ (`host_change`: the median probe, or the
share of time spent waiting for a CPU, beyond the chunk rule's own lines), all samples would
measure the host: the verdict is `undecided` with reason HOST_CHANGED, the all-sample figures and
the evidence beside it, and `compare --fail-on-regression` counts it apart (exit 4 where nothing is
slower). Never the forwards' times: a slowdown of the code cannot make a changed host. The same
holds, whatever the chunks say, for a host-bound eager case measured on two machines (two GPUs:
`host_steady.machine_change`): the evidence read steady on both and one host's fast level still sat
12% above the other's (docs/design.md note 15).
docs/statistics.md has the coverage, false alarms and power, measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Union

from dsabench.analysis.defaults import AUTO, AUTO_FALSE_ALARM, AUTO_FLOOR, DEFAULT_THRESHOLD
from dsabench.analysis.hierarchy import Groups, Interval, level_interval, log_levels, ratio_interval, t_quantile
from dsabench.analysis.host_steady import SteadySides
from dsabench.analysis.noise import UNKNOWN, Noise
from dsabench.analysis.stats import CONFIDENCE, N_BOOT, SEED

MIN_SAMPLES = 5
HOST_CHANGED = "host_changed"
# Reasons that already say no verdict is possible, whatever the host: they stand.
_NO_VERDICT_ANYWAY = ("too_few_samples", "within_run_precision_only")

Threshold = Union[float, str]  # a fraction in [0, 1), or AUTO


@dataclass(frozen=True)
class GateResult:
    """A verdict, its reason (a code and words), and the numbers behind it.

    why: the reason in words, without the figures (what a table's note shows); message: the
    figures, the reason and what the interval stands on. noise: the spread behind the interval
    (relative sd); noisy: that spread exceeds the threshold (AUTO: the default threshold).
    base_level, cand_level: the levels in ms the ratio is formed from (`levels`), so that
    cand_level / base_level is `ratio`; NaN where no ratio was formed. p_value: two-sided, of the
    test the interval inverts (`Interval.p_value`: t over process levels or per-process ratios, with
    history where given), so p < 1 - confidence exactly when the interval excludes no change (ratio
    1); NaN where the interval stands on no spread between processes or runs. se: the standard error
    of the log ratio behind the interval, with df (NaN for a within-process bootstrap).
    """

    verdict: str  # faster | slower | same | undecided
    reason: str
    why: str
    message: str
    ratio: float
    ci_low: float
    ci_high: float
    band: float
    noise: float
    noisy: bool
    processes: int
    df: float = math.nan
    source: str = ""
    rests_on: str = "all samples"  # or the host-steady chunks it was judged on (SteadySides.text)
    base_level: float = math.nan
    cand_level: float = math.nan
    p_value: float = math.nan
    se: float = math.nan


def _pct(x: float) -> str:
    return f"{(x - 1) * 100:+.1f}%"


def edges(band: float) -> tuple[float, float]:
    """The band's edges on the ratio cand / base: 1 / (1 + band) and 1 + band, the same distance
    from 1 on the log scale, where the interval is symmetric; so a ratio r and its inverse 1 / r are
    judged alike, and swapping base and cand swaps slower and faster exactly (docs/statistics.md)."""
    return 1.0 / (1.0 + band), 1.0 + band


def band_text(band: float) -> str:
    """The band as changes: '-2.9% to +3.0%' for 3%."""
    lo, hi = edges(band)
    return f"{_pct(lo)} to {_pct(hi)}"


def check_threshold(threshold: Threshold, name: str = "decide") -> None:
    if threshold == AUTO:
        return
    if isinstance(threshold, str) or not 0 <= threshold < 1:
        raise ValueError(f"{name}: threshold is {threshold!r}; expected a fraction in [0, 1) or {AUTO!r}")


def band_of(threshold: Threshold, iv: Interval, confidence: float = CONFIDENCE) -> float:
    """The band a change must clear (its edges: `edges`). AUTO: exp((t_(1 - a/2) - t_(0.5 + c/2))
    x se) - 1, so that the interval's lower end clears 1 + band (its upper end 1 / (1 + band))
    exactly when the change is significant at the two-sided level a = AUTO_FALSE_ALARM; at least
    AUTO_FLOOR. A within-process interval's se is read off its width (normal)."""
    if threshold != AUTO:
        return float(threshold)
    se, df = iv.se, iv.df
    if not math.isfinite(se):
        se = math.log(iv.high / iv.low) / (2 * NormalDist().inv_cdf(0.5 + confidence / 2))
        df = math.inf
    extra = t_quantile(1 - AUTO_FALSE_ALARM / 2, df) - t_quantile(0.5 + confidence / 2, df)
    return max(AUTO_FLOOR, math.expm1(extra * se))


def levels(base: Groups, cand: Groups, iv: Interval, paired: bool) -> tuple[float, float]:
    """The two levels (ms) the ratio is formed from, so that a table's 'base ms' and 'cand ms' say
    the same change as its ratio: each side's geometric mean of its process medians (one process:
    its median, the within-process bootstrap's ratio). Sides paired by round (two processes or more)
    have a ratio that is the mean of per-process round ratios, not a ratio of two levels: there
    cand's level is base's times that ratio. Not the pooled median of all samples, whose ratio can
    differ from the gate's (a process weighs by its sample count there, and the median of a mix of
    slow and fast processes lands in one of them)."""
    xb, xc = log_levels(base, "levels: base"), log_levels(cand, "levels: cand")
    b = math.exp(float(xb.mean()))
    if paired and xb.size == xc.size >= 2:  # as level_interval pairs them
        return b, b * iv.estimate
    return b, math.exp(float(xc.mean()))


def _basis(iv: Interval, paired: bool, noise: Noise) -> str:
    df = f"{iv.df:.0f} df" if math.isfinite(iv.df) else ""
    if iv.within_process_only:
        return "one process a side" + (", paired by round" if paired else "") + ": within-process bootstrap"
    if iv.source == "history":
        return f"interval from the run-to-run noise of {noise.runs} earlier runs (t, {df})"
    what = "per-process ratios" if paired else "process levels"
    text = f"interval from {iv.processes} {what}" + (" a side" if not paired else "") + f" (t, {df})"
    if iv.source == "processes+history":
        text += f" and {noise.runs} earlier runs"
    return text


def _noisy_text(iv: Interval, paired: bool, limit: float, threshold: Threshold) -> str:
    what = ("its per-process ratios" if paired else "its runs" if iv.source == "history" else "its levels")
    edge = f"the {limit * 100:.1f}% threshold" if threshold != AUTO else f"{limit * 100:.1f}%"
    return f"noisy: {what} spread {iv.spread * 100:.1f}% (sd), more than {edge}"


def decide(base: Groups, cand: Groups, threshold: Threshold, *, noise: Noise = UNKNOWN, paired: bool = False,
           steady: SteadySides | None = None, confidence: float = CONFIDENCE, n_boot: int = N_BOOT,
           seed: int | None = SEED) -> GateResult:
    """Verdict on cand vs base, each a list of per-process sample lists (ms).

    paired: both sides measured in the same worker processes, interleaved (variants or impls of
    one eager group). noise: the case's run-to-run noise from history (unpaired sides only).
    steady: the host-steady chunks of both sides (unpaired eager cases; module docstring).
    """
    check_threshold(threshold)
    every = _judge(base, cand, threshold, noise, paired, confidence, n_boot, seed)
    if steady is None or paired:
        return every
    if steady.machine and every.reason not in _NO_VERDICT_ANYWAY:
        return _machine_changed(every, steady, confidence)
    if not steady.usable:
        why = f"on all samples: fewer than 2 processes a side were mostly host-steady ({steady.text()})"
        rests_on = f"all samples (host-steady chunks in fewer than 2 processes a side: {steady.text()})"
        if steady.host is not None and steady.host.changed and every.reason not in _NO_VERDICT_ANYWAY:
            return _host_changed(every, steady, rests_on, why, confidence)
        return replace(every, message=f"{every.message}; {why}", rests_on=rests_on)
    st = _judge(steady.base, steady.cand, threshold, noise, paired, confidence, n_boot, seed)
    message = f"{st.message}; on {steady.text()}"
    if every.verdict != st.verdict:  # never silent: what all samples, host-disturbed chunks and all, would say
        message += f"; all samples: {every.verdict} {_pct(every.ratio)} ({_pct(every.ci_low)} to {_pct(every.ci_high)})"
    return replace(st, message=message, rests_on=steady.text())


def _machine_changed(every: GateResult, steady: SteadySides, confidence: float) -> GateResult:
    """No verdict: a host-bound eager case measured on two machines (`host_steady.machine_change`).
    Reason HOST_CHANGED, so CI counts it where it counts a changed host (exit 4 where nothing is slower)."""
    why = (f"{steady.machine}; a host-bound forward on two machines measures their hosts, which the evidence "
           "cannot equate; compare runs of one machine, or within one run (--impls, --variants)")
    numbers = f"{_pct(every.ratio)} ({confidence * 100:g}% CI {_pct(every.ci_low)} to {_pct(every.ci_high)})"
    message = f"{numbers}, not a verdict: {why}; all samples alone would say {every.verdict} ({every.reason})"
    return replace(every, verdict="undecided", reason=HOST_CHANGED, why=why, message=message,
                   rests_on=f"nothing: two machines ({steady.text()})")


def _host_changed(every: GateResult, steady: SteadySides, rests_on: str, fallback: str,
                  confidence: float) -> GateResult:
    """No verdict: the sides fell back on all samples, and the evidence says their hosts differ. The
    all-sample ratio and interval are kept (what CI reports as the most a withheld case could hide),
    with what they would have said."""
    why = (f"{steady.host.text()}; a verdict on all samples would measure the host, not the code; rerun both on a "
           "quiet host, or compare within one run (--impls, --variants)")
    numbers = f"{_pct(every.ratio)} ({confidence * 100:g}% CI {_pct(every.ci_low)} to {_pct(every.ci_high)})"
    message = (f"{numbers}, not a verdict: {why}; {fallback}, which alone would say {every.verdict} "
               f"({every.reason})")
    return replace(every, verdict="undecided", reason=HOST_CHANGED, why=why, message=message, rests_on=rests_on)


def _judge(base: Groups, cand: Groups, threshold: Threshold, noise: Noise, paired: bool, confidence: float,
           n_boot: int, seed: int | None) -> GateResult:
    nb, nc = sum(len(g) for g in base), sum(len(g) for g in cand)
    if min(nb, nc) < MIN_SAMPLES:
        why = f"base has {nb} samples, cand {nc}; a verdict needs at least {MIN_SAMPLES} on each side"
        return GateResult("undecided", "too_few_samples", why, why, math.nan, math.nan, math.nan,
                          math.nan, math.nan, False, 0)
    history = (noise.spread, noise.df) if noise.known and not paired else None
    iv = level_interval(base, cand, paired=paired, history=history, confidence=confidence)
    if iv is None:
        iv = ratio_interval(base, cand, paired=paired, confidence=confidence, n_boot=n_boot, seed=seed)
    band = band_of(threshold, iv, confidence)
    limit = DEFAULT_THRESHOLD if threshold == AUTO else float(threshold)
    noisy = math.isfinite(iv.spread) and iv.spread > limit
    numbers = f"{_pct(iv.estimate)} ({confidence * 100:g}% CI {_pct(iv.low)} to {_pct(iv.high)})"
    auto = " (auto)" if threshold == AUTO else ""
    low_edge, high_edge = edges(band)
    base_level, cand_level = levels(base, cand, iv, paired)

    def result(verdict: str, reason: str, why: str) -> GateResult:
        if noisy:
            why = f"{why}; {_noisy_text(iv, paired, limit, threshold)}"
        return GateResult(verdict, reason, why, f"{numbers} {why}; {_basis(iv, paired, noise)}", iv.estimate,
                          iv.low, iv.high, band, iv.spread, noisy, iv.processes, iv.df, iv.source,
                          base_level=base_level, cand_level=cand_level, p_value=iv.p_value, se=iv.se)

    if iv.within_process_only:
        spread = "the ratio's spread between processes" if paired else "the spread between runs"
        return result("undecided", "within_run_precision_only",
                      f"one process a side{'' if paired else ' and no history'}: the interval is one process's "
                      f"precision, not {spread}; measure with --repeats 2 or more"
                      + ("" if paired else ", or compare with --history"))
    if iv.low > high_edge:
        return result("slower", "ci_above_threshold", f"entirely above {_pct(high_edge)}{auto}")
    if iv.high < low_edge:
        return result("faster", "ci_below_threshold", f"entirely below {_pct(low_edge)}{auto}")
    if low_edge <= iv.low and iv.high <= high_edge:
        if threshold == AUTO and band > DEFAULT_THRESHOLD:
            return result("undecided", "ci_crosses_threshold",
                          f"within {band_text(band)}{auto}, but a band that wide cannot say 'same' (wider than the "
                          f"default {band_text(DEFAULT_THRESHOLD)}); more worker processes (--repeats) narrow it")
        return result("same", "ci_within_threshold", f"within {band_text(band)}{auto}")
    return result("undecided", "ci_crosses_threshold",
                  f"crosses an edge of {band_text(band)}{auto}: the change may be anywhere from {_pct(iv.low)} to "
                  f"{_pct(iv.high)}; more worker processes (--repeats) or earlier runs (--history) narrow it")
