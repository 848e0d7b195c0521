"""Workers pinned to a dedicated core each, the core chosen by the host speed probe (`--pin probe`).

Why (issue 22): on the H200 an eager forward ran at 1.0x or about 1.8x of its fast level, the
mode switching within a process; pinned to a fixed core with one torch thread, one core ran fast
and another steadily slow. A steady 2x plateau fits a shared physical core (an SMT sibling, a
busy neighbour on the VM's host) better than preemption. So the core is not fixed but measured:

- `plan` splits the CPUs this process may use into one set for the runner (its threads, the
  progress display) and a disjoint set of candidates per worker, whole SMT sibling groups where
  the topology shows them, so no worker shares a physical core with the runner or another worker;
- each worker probes each of its candidates (`host.probe_us` with its thread on that core alone)
  when it starts and again before each work item, and moves its timing thread to the fastest,
  staying where it is unless another probes faster by SWITCH_MARGIN;
- the worker's other threads (framework helpers) go to its other candidates, so they never take
  the timing thread's core;
- OpenMP, MKL and OpenBLAS get one thread (THREAD_ENV, before any framework import), and torch
  one intra-op thread, so the forward itself does not spread over cores it does not own.

What the worker found is in the manifest (`WorkerInfo.pin`) and, per item, in each record's
`worker.pin`. Framework-free except for `one_framework_thread`, which asks torch only when loaded.

`--pin auto`, the default, is `probe` where every worker runs on a GPU and `off` elsewhere
(`auto_mode`): on the H200, with no other load on the host, 47% of an unpinned timing thread's
chunks fell in the slow mode against 16% pinned to a probed core (docs/design.md note 15); on a
CPU the forward is the CPU's own work, and one core with one thread would change what is measured.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Sequence

from dsabench.bench.host import probe_us
from dsabench.errors import InputError

# What --pin takes; a run records the mode auto resolved to (manifest options.pin: off or probe)
PIN_CHOICES = ("auto", "off", "probe")
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
# Probes per candidate core, the fastest kept (host.probe_us already takes the best of 3).
PROBES_PER_CORE = 3
# Move the timing thread only when another core probes this much faster: probes of one core
# differ by a few percent from call to call; the slow mode is tens of percent.
SWITCH_MARGIN = 0.10
_TOPOLOGY = Path("/sys/devices/system/cpu")


def parse_cpu_list(text: str) -> set[int]:
    """'0-3,8,10-11' -> {0, 1, 2, 3, 8, 10, 11} (the kernel's cpu list format)."""
    out: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def sibling_groups(cpus: set[int], topology: Path = _TOPOLOGY) -> list[tuple[int, ...]]:
    """The CPUs grouped by physical core (SMT siblings together), each group restricted to `cpus`,
    ordered by their lowest CPU; a CPU whose topology cannot be read is a group of its own."""
    groups: dict[tuple[int, ...], None] = {}
    for cpu in sorted(cpus):
        try:
            sib = parse_cpu_list((topology / f"cpu{cpu}" / "topology" / "thread_siblings_list").read_text())
        except (OSError, ValueError):
            sib = {cpu}
        groups[tuple(sorted((sib & cpus) | {cpu}))] = None
    seen: set[int] = set()
    out = []
    for g in groups:
        g = tuple(c for c in g if c not in seen)
        if g:
            out.append(g)
            seen.update(g)
    return sorted(out)


def plan(allowed: set[int], workers: int, topology: Path = _TOPOLOGY) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """(the runner's CPUs, each worker's candidate CPUs), disjoint: the runner takes the first
    physical core, the workers the others in turn (worker i: groups 1 + i, 1 + i + n, ...).
    Falls back to single CPUs when there are fewer physical cores than workers + 1. Raises
    InputError when there are fewer CPUs than workers + 1: no worker could own a core."""
    groups = sibling_groups(allowed, topology)
    if len(groups) < workers + 1:
        groups = [(c,) for c in sorted(allowed)]
    if len(groups) < workers + 1:
        raise InputError(f"--pin probe: {len(allowed)} CPU(s) allowed ({sorted(allowed)}) for {workers} worker(s); "
                         f"expected at least {workers + 1} (a core per worker and one for the runner), or --pin off")
    rest = groups[1:]
    return groups[0], [tuple(c for g in rest[i::workers] for c in g) for i in range(workers)]


def auto_mode(gpu_workers: Sequence[bool], cpus: int) -> tuple[str, str]:
    """What `--pin auto` resolves to, and why: 'probe' when every worker runs on a GPU and there
    are two CPUs per worker and one for the runner (a choice of core for each worker's timing
    thread and another for its other threads); 'off' otherwise."""
    if not gpu_workers or not all(gpu_workers):
        return "off", "not every worker runs on a GPU"
    need = 2 * len(gpu_workers) + 1
    if cpus < need:
        return "off", f"{cpus} CPU(s) for {len(gpu_workers)} GPU worker(s); probing needs {need}"
    return "probe", f"{len(gpu_workers)} GPU worker(s), {cpus} CPUs"


def set_process_affinity(cpus) -> None:
    """Every thread of this process on `cpus` (sched_setaffinity(0) moves only the calling thread)."""
    for tid in _threads():
        try:
            os.sched_setaffinity(tid, set(cpus))
        except OSError:
            pass  # a thread that ended meanwhile


def _threads() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def one_framework_thread() -> None:
    """torch's intra-op pool to one thread when torch is loaded (OMP_NUM_THREADS covers Paddle and
    the BLAS libraries, read when they load)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


class Pinner:
    """A worker's dedicated core: chosen among `cpus` by probing, re-chosen by `repin`."""

    def __init__(self, cpus) -> None:
        self.cpus = tuple(sorted(cpus))
        self.core: int | None = None
        self.probes_us: dict[int, float] = {}
        self.moves = 0

    def probe_cores(self) -> dict[int, float]:
        """Each candidate's probe (us) with this thread on that core alone."""
        out = {}
        for cpu in self.cpus:
            os.sched_setaffinity(0, {cpu})
            out[cpu] = min(probe_us() for _ in range(PROBES_PER_CORE))
        return out

    def repin(self) -> dict:
        """Probe the candidates and move the timing thread to the fastest (unless its own core is
        within SWITCH_MARGIN of it); the other threads to the other candidates. What it found."""
        self.probes_us = self.probe_cores()
        best = min(self.probes_us, key=self.probes_us.get)
        stay = self.core is not None and self.probes_us[self.core] <= self.probes_us[best] * (1 + SWITCH_MARGIN)
        if not stay:
            self.moves += self.core is not None
            self.core = best
        others = set(self.cpus) - {self.core} or {self.core}
        me = threading.get_native_id()
        for tid in _threads():
            if tid != me:
                try:
                    os.sched_setaffinity(tid, others)
                except OSError:
                    pass  # a thread that ended meanwhile
        os.sched_setaffinity(0, {self.core})
        return self.describe()

    def describe(self) -> dict:
        return {"cpus": list(self.cpus), "core": self.core, "moves": self.moves,
                "probe_us": {str(c): round(us, 2) for c, us in self.probes_us.items()}}

