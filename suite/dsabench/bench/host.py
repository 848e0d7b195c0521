"""What the host was doing around each timed chunk: a speed probe, thread CPU time, the CPU, run
delay and steal. Framework-free; Linux `/proc` where it is there, None where it is not.

Why each figure (issue 22): an eager forward on the H200 ran at two levels, 1.0x and about 1.8x,
switching within a process, and its thread's CPU time equalled its wall time in both, so the
thread was not descheduled: the CPU itself ran slower. Run delay (`/proc/thread-self/schedstat`,
time spent runnable but waiting for a CPU) and steal (`/proc/stat`, time the hypervisor gave the
vCPU to someone else) name the other two ways a host slows a chunk; the probe, a fixed piece of
pure-Python work timed just before the chunk (and again just after it: a mode that switched during
the chunk shows in one of the two), shows a CPU that runs the interpreter slower. Where the host
has hardware counters, the thread's cycles, instructions and reference cycles over the chunk itself
(bench/pmu.py) say whether the clock fell or each cycle did less work.

Cost, outside every timed region (scripts/host_overhead.py on the shared 2-core development
machine, loaded: docs/design.md note 15): a snapshot, two `pread`s on descriptors opened once, one
`clock_gettime(CLOCK_THREAD_CPUTIME_ID)` and one `sched_getcpu`, about 16 us; the probe, PROBE_REPS
x PROBE_LOOPS interpreter iterations, about 110-180 us, twice; the memory probe about 300-500 us
(H200 worker, this machine); about 0.5-1 ms a chunk in all.
"""

from __future__ import annotations

import ctypes
import os
import random
import time
from dataclasses import dataclass

from dsabench.bench.pmu import CHUNK_COUNTERS, Counters

# The probe's work: a fixed integer recurrence in the interpreter, the kind of work an eager
# forward's launch path does (Python frames, small C calls): about 60 us per repetition on the
# shared development machine (scripts/host_overhead.py). The same every time, so its time is a
# reading of the core's speed.
PROBE_LOOPS = 1000
# The probe is the fastest of this many repetitions: the slow mode is a plateau lasting seconds,
# an interrupt is a spike; the minimum keeps the plateau and drops the spike.
PROBE_REPS = 3

_SCHEDSTAT = ("/proc/thread-self/schedstat", "/proc/self/schedstat")
_STAT = "/proc/stat"
_STEAL_FIELD = 8  # cpuN user nice system idle iowait irq softirq steal ...: the 8th value


def probe_work(loops: int = PROBE_LOOPS) -> int:
    """The probe's fixed work; returns its result so nothing can skip it."""
    x = 0
    for i in range(loops):
        x = (x * 31 + i) & 0xFFFFF
    return x


def probe_us(reps: int = PROBE_REPS, loops: int = PROBE_LOOPS) -> float:
    """Microseconds of the probe's work on this thread now: the fastest of `reps` repetitions."""
    best = float("inf")
    clock = time.perf_counter
    for _ in range(reps):
        t0 = clock()
        probe_work(loops)
        best = min(best, clock() - t0)
    return best * 1e6


# The memory probe (issue 22, scripts/host_probes_gpu.py on the H200): random single-byte reads over a
# buffer far larger than any last-level cache. In the slow mode it took 3.0x as long (939 vs 310 us
# median) where the interpreter probe took 1.6x; it separated slow chunks from the others best of
# the probes tried (area under the ROC curve 0.967 against 0.949). The buffer is made once per
# process, on first use; the reads touch MEMORY_READS lines (256 KiB), not the whole cache.
MEMORY_BYTES = 256 << 20
MEMORY_READS = 4096
_memory: tuple[bytearray, list] | None = None


def memory_probe_us() -> float:
    """Microseconds of MEMORY_READS random byte reads over the process's MEMORY_BYTES buffer; only
    the reads are timed."""
    global _memory
    if _memory is None:
        rng = random.Random(0x5EED)
        buf = bytearray(os.urandom(1 << 20)) * (MEMORY_BYTES >> 20)
        _memory = (buf, [rng.randrange(len(buf)) for _ in range(MEMORY_READS)])
    buf, idx = _memory
    x = 0
    t0 = time.perf_counter()
    for i in idx:
        x ^= buf[i]
    return (time.perf_counter() - t0) * 1e6


def _libc_getcpu():
    """glibc's sched_getcpu (Python's os module has no such call), or None off glibc."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = []
    return fn


@dataclass(frozen=True)
class Snapshot:
    """One reading of this thread's counters (None: not available on this host)."""

    thread_cpu_s: float
    cpu: int | None
    run_delay_ns: int | None
    steal_ticks: dict | None  # cpu index -> cumulative steal in USER_HZ ticks
    counts: dict | None = None  # the thread's CPU counters (bench/pmu.py), None where the host has none


class HostReader:
    """Reads a thread's counters cheaply: the `/proc` files are opened once and read with `pread`
    (each read regenerates the file). Make it on the thread that times: `/proc/thread-self` names
    the opening thread."""

    def __init__(self) -> None:
        self._sched_fd = _open_first(_SCHEDSTAT)
        self._stat_fd = _open_first((_STAT,))
        self._getcpu = _libc_getcpu()
        self._pmu = Counters()
        self.tick_ms = 1e3 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 10.0

    def close(self) -> None:
        for fd in (self._sched_fd, self._stat_fd):
            if fd is not None:
                os.close(fd)
        self._sched_fd = self._stat_fd = None
        self._pmu.close()

    def cpu(self) -> int | None:
        if self._getcpu is None:
            return None
        n = self._getcpu()
        return n if n >= 0 else None

    def _run_delay_ns(self) -> int | None:
        if self._sched_fd is None:
            return None
        try:  # "<on-cpu ns> <run-delay ns> <timeslices>"
            return int(os.pread(self._sched_fd, 128, 0).split()[1])
        except (OSError, IndexError, ValueError):
            return None

    def _steal(self) -> dict | None:
        if self._stat_fd is None:
            return None
        try:
            text = os.pread(self._stat_fd, 1 << 16, 0)
        except OSError:
            return None
        out = {}
        for line in text.split(b"\n"):
            if not line.startswith(b"cpu") or line.startswith(b"cpu "):
                continue
            parts = line.split()
            if len(parts) > _STEAL_FIELD:
                out[int(parts[0][3:])] = int(parts[_STEAL_FIELD])
        return out or None

    def before(self) -> Snapshot:
        """Counters just before a chunk; the thread CPU clock and the CPU counters are read last,
        nearest the chunk."""
        steal, delay, cpu = self._steal(), self._run_delay_ns(), self.cpu()
        return Snapshot(time.thread_time(), cpu, delay, steal, self._counts())

    def after(self) -> Snapshot:
        """Counters just after a chunk; the CPU counters and the thread CPU clock are read first."""
        counts = self._counts()
        thread = time.thread_time()
        return Snapshot(thread, self.cpu(), self._run_delay_ns(), self._steal(), counts)

    def _counts(self) -> dict | None:
        return self._pmu.read() if self._pmu.available else None

    def evidence(self, before: Snapshot, after: Snapshot) -> dict:
        """The chunk's host figures from its two snapshots (None where a counter is missing)."""
        delay = None
        if before.run_delay_ns is not None and after.run_delay_ns is not None:
            delay = (after.run_delay_ns - before.run_delay_ns) / 1e6
        return {
            "cpu_ms": (after.thread_cpu_s - before.thread_cpu_s) * 1e3,
            "cpu": before.cpu,
            "cpu_end": after.cpu,
            "run_delay_ms": delay,
            "steal_ms": self._steal_ms(before, after),
            **_count_deltas(before.counts, after.counts),
        }

    def _steal_ms(self, before: Snapshot, after: Snapshot) -> float | None:
        """Steal on the CPUs the chunk started and ended on (both, if it moved)."""
        if before.steal_ticks is None or after.steal_ticks is None or before.cpu is None:
            return None
        cpus = {before.cpu} | ({after.cpu} if after.cpu is not None else set())
        ticks = sum(after.steal_ticks.get(c, 0) - before.steal_ticks.get(c, 0) for c in cpus)
        return ticks * self.tick_ms


def _count_deltas(before: dict | None, after: dict | None) -> dict:
    """cycles, instructions, ref_cycles over the chunk; None each where the host has no such counter."""
    got = Counters.delta(before, after) if before and after else {}
    return {name: got.get(name) for name in CHUNK_COUNTERS}


def _open_first(paths) -> int | None:
    for path in paths:
        try:
            return os.open(path, os.O_RDONLY)
        except OSError:
            continue
    return None
