"""Whether the gate's host-steady judgement of eager cases across runs keeps its promises, on seeded
synthetic chunks with a host slow mode: intervals that cover, A/A false calls, and slowdowns called.

The model is what the H200's gate runs showed (results/h200-2026-12-03/gate, docs/statistics.md):
a run measures a case in R processes of `chunks` chunks of `samples` samples. A process's fast
level is exp(N(0, between)); a share of processes (`slow_process`) sit in the slow mode
throughout, the others switch into it for a share of their chunks drawn from U(0, `slow_share`);
a slow chunk takes `slow_factor` x the fast level. Each chunk carries a speed probe: a slow chunk's
probe reads slow with probability `sensitivity` (the H200: 76% of upper-level chunks), a fast
chunk's with probability `false_flag` (4.6%). The code's change multiplies every chunk of the
candidate (`change`), or, with `intermittent`, that share of its chunks only. The evidence never
sees the change: it is drawn from the host alone, as the real probe is.

Every trial goes through the very functions compare uses: `host_steady.steady_sides` on rows
shaped as a frame's, and `gate.decide`. What this is not: the H200. The model's slow mode is
independent from chunk to chunk within a process's share; the real one lasts seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsabench.analysis.defaults import DEFAULT_THRESHOLD
from dsabench.analysis.gate import HOST_CHANGED, Threshold, decide
from dsabench.analysis.host_steady import steady_sides

PROBE_FAST_US, PROBE_SLOW_US = 60.0, 100.0


@dataclass(frozen=True)
class HostSetting:
    processes: int = 3
    chunks: int = 12
    samples: int = 10
    between: float = 0.05
    within: float = 0.02
    slow_process: float = 0.3
    slow_share: float = 0.4
    slow_factor: float = 1.8
    sensitivity: float = 0.76
    false_flag: float = 0.046
    threshold: Threshold = DEFAULT_THRESHOLD


def draw_row(rng: np.random.Generator, s: HostSetting, change: float = 0.0, intermittent: float = 1.0) -> dict:
    """One run's eager case as a frame row: process_samples beside process_chunks with a probe each."""
    groups, entries = [], []
    for p in range(s.processes):
        level = float(np.exp(rng.normal(0.0, s.between)))
        share = 0.95 if rng.random() < s.slow_process else float(rng.uniform(0.0, s.slow_share))
        samples, chunks = [], []
        for r in range(s.chunks):
            slow = rng.random() < share
            flagged = rng.random() < (s.sensitivity if slow else s.false_flag)
            factor = (s.slow_factor if slow else 1.0) * ((1.0 + change) if rng.random() < intermittent else 1.0)
            samples += list(level * factor * np.exp(rng.normal(0.0, s.within, s.samples)))
            probe = (PROBE_SLOW_US if flagged else PROBE_FAST_US) * float(np.exp(rng.normal(0.0, 0.03)))
            chunks.append({"round": r, "samples": s.samples, "start_s": float(r), "host_ms": 1.0, "probe_us": probe,
                           "run_delay_ms": 0.0, "steal_ms": 0.0})
        groups.append(samples)
        entries.append({"key": [p, p], "chunks": chunks})
    return {"process_samples": groups, "process_chunks": entries, "graph": False}


@dataclass(frozen=True)
class HostRates:
    trials: int
    slower: int
    faster: int
    same: int
    undecided: int
    covered: int  # intervals holding 1 + change (uniform changes only: an intermittent one has no single truth)
    steady: int  # trials judged on host-steady chunks (the rest fell back on all samples)
    withheld: int = 0  # of the undecided: fell back, and the sides' hosts differ (gate.HOST_CHANGED)


def measure_host(s: HostSetting, change: float = 0.0, trials: int = 1000, seed: int = 0, intermittent: float = 1.0,
                 use_steady: bool = True) -> HostRates:
    """Judge `trials` seeded cross-run pairs; use_steady False: the gate on all samples (today's)."""
    counts = dict(slower=0, faster=0, same=0, undecided=0, covered=0, steady=0, withheld=0)
    for t in range(trials):
        rng = np.random.default_rng([seed, t])
        base, cand = draw_row(rng, s), draw_row(rng, s, change, intermittent)
        st = steady_sides(base, cand) if use_steady else None
        r = decide(base["process_samples"], cand["process_samples"], s.threshold, steady=st, n_boot=200, seed=t)
        counts[r.verdict] += 1
        counts["covered"] += bool(r.ci_low <= 1 + change <= r.ci_high)
        counts["steady"] += r.rests_on != "all samples" and not r.rests_on.startswith("all samples")
        counts["withheld"] += r.reason == HOST_CHANGED
    return HostRates(trials, **counts)


HOST_SHIFTS = ((0.015, 1.0), (0.05, 1.0), (0.25, 1.0), (0.25, 1 / 3))


def host_table(trials: int = 1000, seed: int = 0) -> str:
    """Markdown: per processes a side and judgement (all samples, host-steady chunks), A/A false calls
    and coverage, and the share called slower at each shift of HOST_SHIFTS (the last intermittent);
    on host-steady chunks, the A/A and +25% trials withheld because the sides' hosts differed."""
    from dsabench.analysis.power import _pct, _rate  # noqa: PLC0415 - the tables' own formatting

    head = ("| processes a side | judged on | A/A slower or faster (95% CI) | A/A interval covers | "
            + " | ".join(f"+{_pct(c)}{'' if share == 1 else ' on 1/3 of chunks'} called slower" for c, share in HOST_SHIFTS)
            + " | judged on steady chunks | withheld, host changed (A/A, +25%) |")
    out = [head, "| ---: | --- | --- | ---: |" + " ---: |" * len(HOST_SHIFTS) + " ---: | ---: |"]
    for procs in (3, 5):
        s = HostSetting(processes=procs)
        for use in (False, True):
            aa = measure_host(s, 0.0, trials, seed, use_steady=use)
            shifted = [measure_host(s, c, trials, seed + 1 + i, share, use) for i, (c, share) in enumerate(HOST_SHIFTS)]
            cells = [_pct(r.slower / trials) for r in shifted]
            held = f"{_pct(aa.withheld / trials)}, {_pct(shifted[2].withheld / trials)}" if use else "-"
            out.append(f"| {procs} | {'host-steady chunks' if use else 'all samples'} | "
                       f"{_rate(aa.slower + aa.faster, trials)} | {_pct(aa.covered / trials)} | " + " | ".join(cells)
                       + f" | {_pct(aa.steady / trials) if use else '-'} | {held} |")
    return "\n".join(out)
