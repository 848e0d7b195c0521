"""The timing thread's own CPU counters over a chunk (Linux `perf_event_open`), where the host has them.

Why (issue 22): an eager forward ran 1.8x slower in stretches of seconds while its thread was never
descheduled: the CPU itself executed slower. Two causes fit, and time alone cannot tell them apart:
a lower clock (fewer cycles per second, the same cycles per forward) or a busy sibling on a shared
physical core (the same clock, more cycles per forward: fewer instructions per cycle). Counted over
the chunk itself, cycles against reference cycles (a constant-rate clock) give the clock's share of
its nominal rate, and instructions over cycles give the work done per cycle; both are read inside
the chunk's own time, so a mode that switches between a probe and its chunk cannot hide.

Where the guest has no hardware counters (a KVM guest without a virtual PMU; this development
machine) every figure is None and nothing else changes. The counters count this thread only, in user
space only (`exclude_kernel`: what `perf_event_paranoid` 2 allows without privilege).
Framework-free: ctypes and the syscall, no `perf` binary.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

# perf_event_attr's first fields (PERF_ATTR_SIZE_VER0, 64 bytes): type, size, config, sample_period,
# sample_type, read_format, flag bits, wakeup_events, bp_type, config1.
_ATTR = struct.Struct("=IIQQQQQIIQ")
_FLAG_EXCLUDE_KERNEL = 1 << 5
_FLAG_EXCLUDE_HV = 1 << 6
# read_format: the time the event was enabled and the time it counted beside its value, so a counter
# the hardware time-shared with others (fewer counters than events) reads None instead of too low.
_READ_TIMES = 1 | 2  # PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING
_FD_CLOEXEC = 8  # PERF_FLAG_FD_CLOEXEC: worker children do not inherit the counters
_SYSCALL = {"x86_64": 298, "aarch64": 241}
TYPE_HARDWARE, TYPE_SOFTWARE = 0, 1
# (type, config) of each counter read per chunk: cycles, instructions retired, reference cycles.
HW_CYCLES, HW_INSTRUCTIONS, HW_REF_CYCLES = (TYPE_HARDWARE, 0), (TYPE_HARDWARE, 1), (TYPE_HARDWARE, 9)
SW_TASK_CLOCK = (TYPE_SOFTWARE, 1)  # this thread's CPU time in ns: always there where perf events are
CHUNK_COUNTERS = {"cycles": HW_CYCLES, "instructions": HW_INSTRUCTIONS, "ref_cycles": HW_REF_CYCLES}


def open_counter(kind: tuple[int, int]) -> int | None:
    """A counting (never sampling) event on the calling thread, any CPU, user space only; its file
    descriptor, or None where the kernel, the guest or the policy refuses it."""
    nr = _SYSCALL.get(platform.machine())
    if nr is None:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    attr = ctypes.create_string_buffer(_ATTR.pack(kind[0], _ATTR.size, kind[1], 0, 0, _READ_TIMES,
                                                  _FLAG_EXCLUDE_KERNEL | _FLAG_EXCLUDE_HV, 0, 0, 0), _ATTR.size)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(nr), attr, ctypes.c_int(0), ctypes.c_int(-1), ctypes.c_int(-1), ctypes.c_ulong(_FD_CLOEXEC))
    return int(fd) if fd >= 0 else None


def read_counter(fd: int) -> int | None:
    """The count so far; None where it cannot be read or where the event was not counting all the
    time it was enabled (multiplexed: its count would be a part of the work, silently)."""
    try:
        data = os.read(fd, 24)
    except OSError:
        return None
    if len(data) != 24:
        return None
    value, enabled, running = struct.unpack("=QQQ", data)
    return value if running == enabled else None


class Counters:
    """Named counters on the thread that makes it (`open_counter` each; a refused one is left out).
    `read` before and after a chunk; `delta` of the two readings."""

    def __init__(self, kinds: dict[str, tuple[int, int]] = CHUNK_COUNTERS) -> None:
        self.fds = {name: fd for name, kind in kinds.items() if (fd := open_counter(kind)) is not None}

    @property
    def available(self) -> bool:
        return bool(self.fds)

    def read(self) -> dict[str, int | None]:
        return {name: read_counter(fd) for name, fd in self.fds.items()}

    @staticmethod
    def delta(before: dict, after: dict) -> dict[str, int | None]:
        return {k: (after[k] - before[k] if before.get(k) is not None and after.get(k) is not None else None)
                for k in before}

    def close(self) -> None:
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = {}


def rates(counts: dict) -> dict[str, float | None]:
    """ipc: instructions per cycle; clock_share: cycles over reference cycles (the clock against its
    nominal rate: below 1 a lower clock, the same under a busy sibling). None where a count is missing."""
    cyc, ins, ref = counts.get("cycles"), counts.get("instructions"), counts.get("ref_cycles")
    return {"ipc": ins / cyc if ins is not None and cyc else None,
            "clock_share": cyc / ref if cyc is not None and ref else None}
