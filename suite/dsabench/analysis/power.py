"""How often the gate cries wolf, how often it catches a real slowdown, whether its intervals cover.

Simulation, not theory: seeded synthetic runs go through the very function every command judges
with (`gate.decide`), and the verdicts are counted.

The model is the structure real runs have. A run measures a case in R worker processes; process
p's level is exp(N(0, between)), and its n samples lie around that level with lognormal spread
`within` (x = level x exp(N(0, within))). `between` is the spread the H200 showed between
processes: 0.2% for CUDA Graph replays, 3% for a middle case, 25% for eager decode. Paired sides
(variants or impls timed in the same processes) share each process's level and differ by a
per-process log ratio drawn with sd `between`: for them `between` is the spread of the ratios.
A history is `history_runs` earlier runs of the same case drawn from the same model; their levels
give the case's run-to-run noise exactly as `compare --history` computes it (`noise.run_level`,
`noise.series_noise`).

- coverage: the share of trials whose 95% interval holds the true ratio (1 + change);
- false alarms (A/A): change 0; any `slower` or `faster` is false;
- power: the share of trials called `slower` at a true slowdown (`undecided` and `same` are misses).

The tables in docs/statistics.md come from `python3 scripts/gate_coverage.py`; the change-point
figures from `python3 -m dsabench.analysis.power --table changepoints` (needs apache-otava).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dsabench.analysis.defaults import AUTO, DEFAULT_THRESHOLD
from dsabench.analysis.gate import Threshold, decide
from dsabench.analysis.noise import UNKNOWN, run_level, series_noise

SEED = 0
TRIALS = 2000


@dataclass(frozen=True)
class Setting:
    """One simulated comparison: processes a side, their spread, samples, pairing, history, band."""

    processes: int = 3
    between: float = 0.03
    within: float = 0.01
    n: int = 30
    paired: bool = False
    history_runs: int = 0
    threshold: Threshold = DEFAULT_THRESHOLD


@dataclass(frozen=True)
class Rates:
    """Verdict counts of `trials` seeded comparisons at one setting and one true change."""

    setting: Setting
    change: float
    trials: int
    slower: int
    faster: int
    same: int
    undecided: int
    noisy: int
    covered: int

    def share(self, count: int) -> float:
        return count / self.trials

    @property
    def alarms(self) -> int:
        return self.slower + self.faster


def _side(rng: np.random.Generator, s: Setting, log_levels: np.ndarray) -> list[np.ndarray]:
    return [np.exp(lv + rng.normal(0.0, s.within, s.n)) for lv in log_levels]


def draw_pair(rng: np.random.Generator, s: Setting, change: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Base and cand of one comparison: per-process sample arrays."""
    shift = np.log1p(change)
    base_levels = rng.normal(0.0, s.between, s.processes)
    if s.paired:
        cand_levels = base_levels + shift + rng.normal(0.0, s.between, s.processes)
    else:
        cand_levels = shift + rng.normal(0.0, s.between, s.processes)
    return _side(rng, s, base_levels), _side(rng, s, cand_levels)


def draw_history(rng: np.random.Generator, s: Setting):
    """The case's noise from `history_runs` earlier A/A runs, as compare --history computes it."""
    if not s.history_runs:
        return UNKNOWN
    levels = [run_level(_side(rng, s, rng.normal(0.0, s.between, s.processes))) for _ in range(s.history_runs)]
    return series_noise(levels)


def measure(s: Setting, change: float = 0.0, trials: int = TRIALS, seed: int = SEED, n_boot: int = 500) -> Rates:
    """Judge `trials` seeded comparisons at one setting with `gate.decide`; the same arguments
    always give the same counts (trial t draws from seed and t, and bootstraps with seed t)."""
    counts = dict(slower=0, faster=0, same=0, undecided=0, noisy=0, covered=0)
    for t in range(trials):
        rng = np.random.default_rng([seed, t])
        noise = draw_history(rng, s)
        base, cand = draw_pair(rng, s, change)
        r = decide(base, cand, s.threshold, noise=noise, paired=s.paired, n_boot=n_boot, seed=t)
        counts[r.verdict] += 1
        counts["noisy"] += r.noisy
        counts["covered"] += bool(r.ci_low <= 1 + change <= r.ci_high)
    return Rates(s, change, trials, **counts)


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """Exact 95% interval of a binomial proportion."""
    from scipy.stats import binomtest  # noqa: PLC0415

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return float(ci.low), float(ci.high)


def _pct(x: float, digits: int = 1) -> str:
    return f"{x * 100:.{digits}f}%"


def _rate(k: int, n: int, digits: int = 1) -> str:
    lo, hi = clopper_pearson(k, n)
    return f"{_pct(k / n, digits)} ({_pct(lo, digits)}-{_pct(hi, digits)})"


SPREADS = (0.002, 0.03, 0.25)  # the H200's graph cases, a middle case, its eager decode cases
PROCESSES = (1, 2, 3, 5)


def coverage_table(trials: int = TRIALS, seed: int = SEED) -> str:
    """Coverage of the gate's 95% interval in A/A trials, per processes, spread and pairing."""
    out = ["| pairing | processes a side | " + " | ".join(f"spread {_pct(b)}" for b in SPREADS) + " |",
           "| --- | ---: |" + " ---: |" * len(SPREADS)]
    for paired in (False, True):
        for r in PROCESSES:
            cells = [_rate(measure(Setting(r, b, paired=paired), 0.0, trials, seed).covered, trials)
                     for b in SPREADS]
            out.append(f"| {'paired' if paired else 'unpaired'} | {r} | " + " | ".join(cells) + " |")
    return "\n".join(out)


RATE_GRID = (  # processes, between, paired, history runs, change
    (3, 0.002, False, 0, 0.05), (3, 0.01, False, 0, 0.05), (3, 0.03, False, 0, 0.05), (3, 0.25, False, 0, 0.25),
    (2, 0.002, False, 0, 0.05), (2, 0.03, False, 0, 0.05), (2, 0.03, False, 10, 0.05), (2, 0.25, False, 0, 0.25),
    (3, 0.03, True, 0, 0.05), (3, 0.25, True, 0, 0.25), (5, 0.25, False, 0, 0.25), (1, 0.02, False, 3, 0.05),
    (1, 0.02, False, 10, 0.05),
)


def rates_table(threshold: Threshold = DEFAULT_THRESHOLD, trials: int = TRIALS, seed: int = SEED,
                grid=RATE_GRID) -> str:
    """A/A false alarms and power at each setting of `grid`, at one threshold."""
    out = ["| processes a side | spread | pairing | history runs | A/A slower or faster (95% CI) | A/A same "
           "| A/A noisy | change | called slower (95% CI) | undecided |",
           "| ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | --- | ---: |"]
    for procs, between, paired, hist, change in grid:
        s = Setting(procs, between, paired=paired, history_runs=hist, threshold=threshold)
        aa, alt = measure(s, 0.0, trials, seed), measure(s, change, trials, seed + 1)
        out.append(f"| {procs} | {_pct(between)} | {'paired' if paired else 'unpaired'} | {hist} "
                   f"| {_rate(aa.alarms, trials, 2)} | {_pct(aa.share(aa.same))} | {_pct(aa.share(aa.noisy))} "
                   f"| +{_pct(change, 0)} | {_rate(alt.slower, trials)} | {_pct(alt.share(alt.undecided))} |")
    return "\n".join(out)


def history_alarm_table(trials: int = TRIALS, seed: int = SEED) -> str:
    """Single-process A/A false alarms with the noise from 3, 5 and 10 history runs at sigma 2%."""
    out = ["| history runs | run-to-run sigma | threshold | A/A slower or faster (95% CI) | +5% called slower |",
           "| ---: | ---: | ---: | --- | --- |"]
    for runs in (3, 5, 10):
        s = Setting(1, 0.02, within=0.005, history_runs=runs)
        aa, alt = measure(s, 0.0, trials, seed), measure(s, 0.05, trials, seed + 1)
        out.append(f"| {runs} | 2.0% | {_pct(DEFAULT_THRESHOLD)} | {_rate(aa.alarms, trials, 2)} "
                   f"| {_rate(alt.slower, trials)} |")
    return "\n".join(out)


def auto_table(trials: int = TRIALS, seed: int = SEED, processes: int = 3) -> str:
    """--threshold auto: a 1% slowdown at 0.2% spread (CUDA Graph replays, whose samples lie within
    0.1% of each other: within = 0.1%), with and without history, and at the other spreads."""
    out = ["| processes a side | spread | history runs | A/A slower or faster (95% CI) | +1% called slower (95% CI) "
           "| +0.5% called slower |",
           "| ---: | ---: | ---: | --- | --- | --- |"]
    for between in (0.002, 0.03, 0.25):
        for hist in ((0, 5, 10) if between == 0.002 else (0,)):
            s = Setting(processes, between, within=0.001, history_runs=hist, threshold=AUTO)
            aa = measure(s, 0.0, trials, seed)
            one = measure(s, 0.01, trials, seed + 1)
            half = measure(s, 0.005, trials, seed + 2)
            out.append(f"| {processes} | {_pct(between)} | {hist} | {_rate(aa.alarms, trials, 2)} "
                       f"| {_rate(one.slower, trials)} | {_pct(half.share(half.slower))} |")
    return "\n".join(out)


HISTORY_RUNS = 30
STEP_AT = 17  # first run of the shifted level in the step series
RAMP = (12, 20)  # the ramp series climbs over runs 12..19 and is fully shifted from run 20


def synthetic_history(
    seed: int, kind: str, change: float = 0.06, noise: float = 0.01, runs: int = HISTORY_RUNS
) -> np.ndarray:
    """Per-run medians around 1 ms with lognormal run-to-run noise: 'flat', 'step' (a jump of
    `change` at STEP_AT) or 'ramp' (a linear climb by `change` across RAMP)."""
    level = np.ones(runs)
    if kind == "step":
        level[STEP_AT:] *= 1 + change
    elif kind == "ramp":
        start, stop = RAMP
        level *= 1 + change * np.clip((np.arange(runs) - start + 1) / (stop - start), 0, 1)
    elif kind != "flat":
        raise ValueError(f"synthetic_history: kind {kind!r}; expected 'flat', 'step' or 'ramp'")
    return level * np.exp(np.random.default_rng(seed).normal(0.0, noise, runs))


@dataclass(frozen=True)
class HistoryRates:
    """Measured outcomes of history's change-point search over seeded synthetic series."""

    noise_sigma: float
    max_pvalue: float
    trials: int
    flat_false_rate: float  # flat series with any change point
    step_exact_rate: float  # 6% step series whose only change point is STEP_AT
    step_near_rate: float  # 6% step series with a change point within one run of STEP_AT (extras allowed)
    ramp_inside_rate: float  # ramp series with at least one point, all inside the ramp
    small_step_found_rate: float  # 3% step series with a change point at STEP_AT


def history_rates(noise_sigma: float = 0.01, max_pvalue: float | None = None, trials: int = 500) -> HistoryRates:
    """Detection rates of `history.change_point_indices` at one noise level (series seeds 0..trials-1)."""
    from dsabench.analysis.history import MAX_PVALUE, change_point_indices

    p = MAX_PVALUE if max_pvalue is None else max_pvalue

    def found(kind: str, seed: int, change: float = 0.06) -> list[int]:
        series = synthetic_history(seed, kind, change=change, noise=noise_sigma)
        return [i for i, _ in change_point_indices(series, max_pvalue=p)]

    flat = exact = hit = ramp = small = 0
    lo, hi = RAMP
    for seed in range(trials):
        flat += bool(found("flat", seed))
        step = found("step", seed)
        exact += step == [STEP_AT]
        hit += any(abs(i - STEP_AT) <= 1 for i in step)
        r = found("ramp", seed)
        ramp += bool(r) and all(lo <= i <= hi for i in r)
        small += STEP_AT in found("step", seed, change=0.03)
    n = trials
    return HistoryRates(noise_sigma, p, n, flat / n, exact / n, hit / n, ramp / n, small / n)


def format_history_rates(rows: Sequence[HistoryRates]) -> str:
    out = [
        "| run-to-run noise | max p | series | flat: any change point | 6% step: only at 17 | 6% step: found at 16-18 "
        "| 6% ramp 12-20: found inside | 3% step: found at 17 |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        out.append(
            f"| {r.noise_sigma * 100:.0f}% | {r.max_pvalue:g} | {r.trials} | {r.flat_false_rate * 100:.1f}% "
            f"| {r.step_exact_rate * 100:.1f}% | {r.step_near_rate * 100:.1f}% | {r.ramp_inside_rate * 100:.1f}% "
            f"| {r.small_step_found_rate * 100:.1f}% |"
        )
    return "\n".join(out)


TABLES = ("coverage", "rates", "auto-rates", "history-noise", "auto", "changepoints")


def table(name: str, trials: int = TRIALS, seed: int = SEED) -> str:
    """One of TABLES as markdown."""
    if name == "coverage":
        return coverage_table(trials, seed)
    if name == "rates":
        return rates_table(DEFAULT_THRESHOLD, trials, seed)
    if name == "auto-rates":
        return rates_table(AUTO, trials, seed)
    if name == "history-noise":
        return history_alarm_table(trials, seed)
    if name == "auto":
        return auto_table(trials, seed)
    if name == "changepoints":
        return format_history_rates([history_rates(noise, p, min(trials, 500)) for p in (0.001, None)
                                     for noise in (0.01, 0.02)])
    raise ValueError(f"table {name!r}; expected one of {', '.join(TABLES)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m dsabench.analysis.power",
        description="Measure the gate's coverage, false alarms and power on seeded synthetic runs (or history's "
                    "change-point search).",
    )
    parser.add_argument("--table", choices=TABLES, action="append",
                        help="which table(s) to print (default: every gate table, not changepoints)")
    parser.add_argument("--trials", type=int, default=TRIALS, help=f"trials per cell (default {TRIALS})")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    if args.trials < 1:
        print(f"--trials is {args.trials}; expected at least 1", file=sys.stderr)
        return 2
    from dsabench.errors import InputError  # noqa: PLC0415

    for name in args.table or TABLES[:-1]:
        started = time.perf_counter()
        try:
            text = table(name, args.trials, args.seed)
        except InputError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(f"## {name}\n\n{text}\n\n{args.trials} trials per cell, seed {args.seed}; "
              f"{time.perf_counter() - started:.0f} s\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
