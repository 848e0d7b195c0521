"""Whether two runs' hosts differ, read from the host evidence alone (issue 19, item 5; the rule
and its reasons: docs/statistics.md, "When the host changed between runs").

A cross-run comparison of an eager case that cannot rest on host-steady chunks falls back on all
samples (`host_steady.steady_sides`, `gate.decide`). Between two runs the machine's state can move
as a whole: on the shared 2-core development machine one run's probe read 62 us and the next's 104,
and chunks waited for a CPU 5% of their time in one run and 50% in the next. All samples then
measure the host, and the gate withholds the verdict (`host_changed`) when, over each side's chunks,

- `probe`: one side's median probe (a fixed CPU workload timed before every chunk) is more than
  PROBE_SHIFT x the other's: the CPU itself ran at another speed; or
- `waiting`: waiting for a CPU (run delay and steal, summed, over the chunks' host time: w) makes
  one side's forwards more than WAIT_SHIFT x as long as the other's from waiting alone, by
  (1 - w_fast) / (1 - w_slow), the wall time a forward of fixed CPU time takes at each share.

The lines are the chunk rule's own (host_steady.PROBE_SLOW: a chunk whose probe is more than 1.3x
the reference ran on a slower CPU; SHARE_LIMIT: waiting more than 5% of a chunk disturbs it, a
forward 1 / 0.95 = 1.053x as long), taken to a side's typical chunk: what would set one chunk
aside against another, set apart two runs. A test holds them equal to host_steady's.

Never the forwards' times: the probe and the scheduler's counters do not run the code measured, so
a slowdown of the code cannot make its comparison look like a changed host. (One caveat, said in
docs/statistics.md: run delay is the timing thread's waiting, which a change that adds threads of
its own could raise; such a case is withheld, which `--fail-on-regression` reports, never passes.)

Pure functions over ProcessChunks-like values (an `evidence` tuple of chunk dicts each); no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

PROBE_SHIFT = 1.3  # = host_steady.PROBE_SLOW
WAIT_SHIFT = 1.0 / (1.0 - 0.05)  # = 1 / (1 - host_steady.SHARE_LIMIT)


@dataclass(frozen=True)
class HostState:
    """One side's host over its chunks: the median probe (us; None without one), the share of the
    chunks' host time spent waiting for a CPU (run delay plus steal; None where neither was
    recorded), the chunks it rests on."""

    probe_us: float | None
    waiting: float | None
    chunks: int


def host_state(processes: Iterable) -> HostState:
    """The host state of one case side: every chunk of every process, evidence only."""
    evidence: list[Mapping] = [e for p in processes for e in p.evidence]
    probes = [float(e["probe_us"]) for e in evidence if e.get("probe_us")]
    timed = [e for e in evidence if (e.get("host_ms") or 0) > 0
             and (e.get("run_delay_ms") is not None or e.get("steal_ms") is not None)]
    host = sum(float(e["host_ms"]) for e in timed)
    wait = sum(float(e.get("run_delay_ms") or 0.0) + float(e.get("steal_ms") or 0.0) for e in timed)
    return HostState(float(np.median(probes)) if probes else None, min(wait / host, 1.0) if host > 0 else None,
                     len(evidence))


def _beyond(factor: float | None, limit: float) -> bool:
    return factor is not None and math.isfinite(factor) and max(factor, 1.0 / factor) > limit


@dataclass(frozen=True)
class HostChange:
    """Two sides' host states and what sets them apart. probe_ratio: cand's median probe over base's;
    wait_factor: how much longer a forward of the same CPU time takes on cand's host than on base's
    from waiting alone, (1 - w_base) / (1 - w_cand); either None where a side lacks the evidence."""

    base: HostState
    cand: HostState
    probe_ratio: float | None
    wait_factor: float | None

    @property
    def reasons(self) -> tuple[str, ...]:
        """'probe', 'waiting': the measures beyond their line (PROBE_SHIFT, WAIT_SHIFT)."""
        return tuple(name for name, factor, limit in (("probe", self.probe_ratio, PROBE_SHIFT),
                                                      ("waiting", self.wait_factor, WAIT_SHIFT))
                     if _beyond(factor, limit))

    @property
    def changed(self) -> bool:
        return bool(self.reasons)

    def text(self) -> str:
        """'the host differs between runs: probe median 62 us base vs 104 us cand (1.68x, beyond
        1.3x), waiting for a CPU 31% vs 74% of chunk time (...)': both measures where recorded,
        the ones beyond their line marked."""
        parts = []
        b, c = self.base, self.cand
        if self.probe_ratio is not None:
            mark = f", beyond {PROBE_SHIFT:g}x" if "probe" in self.reasons else ""
            parts.append(f"probe median {b.probe_us:.0f} us base vs {c.probe_us:.0f} us cand "
                         f"({self.probe_ratio:.2f}x{mark})")
        if self.wait_factor is not None:
            mark = f", beyond {WAIT_SHIFT:.2f}x" if "waiting" in self.reasons else ""
            parts.append(f"waiting for a CPU (run delay and steal) {b.waiting:.0%} base vs {c.waiting:.0%} cand of "
                         f"chunk time (a forward {self.wait_factor:.2f}x as long from waiting alone{mark})")
        lead = "the host differs between runs" if self.changed else "the host is alike in both runs"
        return f"{lead}: " + ", ".join(parts) if parts else f"{lead} (no evidence)"


def host_change(base_processes: Iterable, cand_processes: Iterable) -> HostChange:
    """The host states of two sides of one case in two runs, compared (module docstring)."""
    b, c = host_state(base_processes), host_state(cand_processes)
    probe = c.probe_us / b.probe_us if b.probe_us and c.probe_us else None
    wait = (1.0 - b.waiting) / (1.0 - c.waiting) if b.waiting is not None and c.waiting is not None \
        and b.waiting < 1.0 and c.waiting < 1.0 else None
    return HostChange(b, c, probe, wait)
