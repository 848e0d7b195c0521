"""The timing thread's CPU counters (bench/pmu.py): the perf_event_open plumbing checked on the
kernel's own software clock of the thread, which every Linux host with perf events has, against
Python's thread CPU clock over real work; the derived rates on their definitions."""

from __future__ import annotations

import os
import time

import pytest

from dsabench.bench import pmu


def _busy(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(range(1000))


def test_a_counter_on_this_thread_counts_its_cpu_time_as_the_thread_clock_does():
    counters = pmu.Counters({"task_ns": pmu.SW_TASK_CLOCK})
    if not counters.available:
        pytest.skip("this host refuses perf events (perf_event_paranoid or a sandbox)")
    try:
        before, t0 = counters.read(), time.thread_time()
        _busy(0.05)
        after, t1 = counters.read(), time.thread_time()
    finally:
        counters.close()
    counted = pmu.Counters.delta(before, after)["task_ns"] / 1e9
    assert counted == pytest.approx(t1 - t0, rel=0.1)
    assert counters.fds == {}  # closed


def test_a_refused_counter_is_left_out_and_reads_nothing():
    counters = pmu.Counters({"bogus": (pmu.TYPE_HARDWARE, 1 << 40)})  # no such hardware event anywhere
    assert not counters.available and counters.read() == {}


def test_deltas_are_none_where_either_reading_is_missing():
    assert pmu.Counters.delta({"a": 5, "b": None}, {"a": 12, "b": 3}) == {"a": 7, "b": None}


def test_rates_are_work_per_cycle_and_the_clock_against_its_nominal_rate():
    r = pmu.rates({"cycles": 2_000, "instructions": 3_000, "ref_cycles": 4_000})
    assert r == {"ipc": 1.5, "clock_share": 0.5}
    assert pmu.rates({"cycles": None, "instructions": 3_000, "ref_cycles": None}) == {"ipc": None, "clock_share": None}


def test_the_counters_are_not_inherited_by_child_processes():
    counters = pmu.Counters({"task_ns": pmu.SW_TASK_CLOCK})
    if not counters.available:
        pytest.skip("this host refuses perf events (perf_event_paranoid or a sandbox)")
    try:
        assert all(not os.get_inheritable(fd) for fd in counters.fds.values())
    finally:
        counters.close()
