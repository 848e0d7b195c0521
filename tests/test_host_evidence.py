"""Every timed chunk carries its host evidence, and every side of an interleaved case gets its rounds
(issues 19 and 22): the real host clock, real /proc counters, real work (NumPy) and real Paddle."""

from __future__ import annotations

import os
from dataclasses import replace

import msgspec
import numpy as np
import pytest

from dsabench.bench import host
from dsabench.bench.backends.common import HostClock
from dsabench.bench.protocol import CPU_PROTOCOL, GPU_PROTOCOL, Protocol, measure, measure_interleaved
from dsabench.store.schema import Chunk, Timing

QUICK = Protocol(warmup_min_iters=1, warmup_min_ms=0.0, min_sample_ms=0.5, min_samples=6, max_samples=60,
                 precision=0.5, max_time_s=1.0, chunk=6, min_rounds=3)
# A time cap no sample fits three times in: every series is "long", whatever this machine's speed.
LONG = replace(QUICK, max_time_s=1e-9)


def _work(n: int, log: list | None = None, name: str = ""):
    a = np.random.default_rng(0).standard_normal((n, n))

    def step():
        if log is not None:
            log.append(name)
        return a @ a

    return step


def test_every_chunk_is_recorded_in_order_with_the_host_evidence_taken_around_it():
    t = measure(_work(16), HostClock(lambda: None), lambda: None, QUICK)
    assert t.chunks and sum(c.samples for c in t.chunks) == len(t.samples_ms)
    assert [c.round for c in t.chunks] == list(range(len(t.chunks)))
    starts = [c.start_s for c in t.chunks]
    assert starts == sorted(starts)
    for c in t.chunks:
        assert c.host_ms > 0 and c.probe_us > 0 and c.probe_after_us > 0 and c.memory_probe_us > 0 and c.cpu_ms >= 0
        assert c.device_ms is None  # the host clock has no separate device time
    if os.path.exists("/proc/thread-self/schedstat"):
        assert all(c.run_delay_ms is not None and c.run_delay_ms >= 0 for c in t.chunks)
    if os.path.exists("/proc/stat"):
        assert all(c.steal_ms is not None and c.steal_ms >= 0 for c in t.chunks)
    assert all(c.cpu in os.sched_getaffinity(0) for c in t.chunks)
    # the CPU counters: the same ones in every chunk, positive where counted; none on a host without
    # hardware counters, and a host may refuse one alone (reference cycles on AMD and Arm cores)
    counted = [(c.cycles, c.instructions, c.ref_cycles) for c in t.chunks]
    assert len({tuple(v is None for v in three) for three in counted}) == 1
    assert all(v is None or v > 0 for three in counted for v in three)


def test_a_long_case_is_still_interleaved_in_at_least_three_rounds_of_fewer_samples():
    timings = measure_interleaved([_work(16), _work(24)], HostClock(lambda: None), lambda: None, LONG)
    for t in timings:
        assert len(t.chunks) >= 3 and all(c.samples == 1 for c in t.chunks)
        assert len(t.samples_ms) >= LONG.min_samples
        assert "rounds of <= 1 samples" in t.stop_reason
    rounds = [c.round for c in timings[0].chunks]
    assert rounds == [c.round for c in timings[1].chunks] == list(range(len(rounds)))
    # round r of both sides before round r + 1 of either: neither side's samples are one block of time
    starts = [[c.start_s for c in t.chunks] for t in timings]
    for r in range(len(rounds) - 1):
        assert max(s[r] for s in starts) < min(s[r + 1] for s in starts)


def test_interleaved_sides_take_the_same_samples_per_round_so_that_sample_i_pairs_with_sample_i():
    # a fast and a much slower step: each alone might get another chunk size; together they share one
    mixed = replace(QUICK, min_sample_ms=0.001, max_time_s=0.05)
    timings = measure_interleaved([_work(4), _work(160)], HostClock(lambda: None), lambda: None, mixed)
    assert [c.samples for c in timings[0].chunks] == [c.samples for c in timings[1].chunks]
    assert len(timings[0].samples_ms) == len(timings[1].samples_ms)


def test_samples_per_round_shrink_so_that_the_minimum_rounds_fit_the_time_cap():
    assert CPU_PROTOCOL.min_rounds == 3 and GPU_PROTOCOL.min_rounds == 1
    assert GPU_PROTOCOL.per_round(0.5) == GPU_PROTOCOL.chunk  # the GPU's chunks as before
    assert CPU_PROTOCOL.per_round(5.0) == 2  # 6 samples in 3 rounds of 2
    assert CPU_PROTOCOL.per_round(150.0) == 1  # 3 rounds of 150 ms do not fit 0.5 s in chunks of 2
    tight = replace(CPU_PROTOCOL, max_samples=6, min_samples=6, chunk=6)
    assert tight.per_round(1.0) * tight.min_rounds <= tight.max_samples
    with pytest.raises(ValueError, match="min_rounds 0; expected 1 to max_samples"):
        replace(CPU_PROTOCOL, min_rounds=0)


def test_a_chunk_list_that_does_not_hold_the_samples_is_refused():
    chunk = Chunk(round=0, samples=2, start_s=1.0, host_ms=2.0)
    with pytest.raises(ValueError, match="chunks hold 2 samples; expected the 3 of samples_ms"):
        Timing(samples_ms=(1.0, 1.0, 1.0), iters_per_sample=1, warmup_iters=1, warmup_ms=1.0, clock="host",
               stop_reason="", chunks=(chunk,))
    ok = Timing(samples_ms=(1.0, 1.0), iters_per_sample=1, warmup_iters=1, warmup_ms=1.0, clock="host",
                stop_reason="", chunks=(chunk,))
    assert msgspec.json.decode(msgspec.json.encode(ok), type=Timing) == ok


def test_host_evidence_is_the_difference_of_the_counters_around_the_chunk():
    reader = host.HostReader()
    try:
        before = host.Snapshot(thread_cpu_s=1.0, cpu=2, run_delay_ns=5_000_000, steal_ticks={2: 10, 3: 7})
        after = host.Snapshot(thread_cpu_s=1.004, cpu=3, run_delay_ns=6_500_000, steal_ticks={2: 11, 3: 9})
        ev = reader.evidence(before, after)
        assert ev["cpu_ms"] == pytest.approx(4.0) and ev["run_delay_ms"] == pytest.approx(1.5)
        assert (ev["cpu"], ev["cpu_end"]) == (2, 3)
        assert ev["steal_ms"] == pytest.approx(3 * reader.tick_ms)  # both CPUs it ran on
        missing = host.Snapshot(thread_cpu_s=1.0, cpu=None, run_delay_ns=None, steal_ticks=None)
        ev = reader.evidence(missing, missing)
        assert ev["run_delay_ms"] is None and ev["steal_ms"] is None and ev["cpu"] is None
    finally:
        reader.close()


def test_the_probe_does_the_same_fixed_work_every_time():
    assert host.probe_work() == host.probe_work()
    assert host.probe_us(reps=2, loops=10) > 0


def test_a_paddle_case_records_its_chunks_with_host_evidence(paddle_backend, tmp_path):
    from conftest import make_case
    from dsabench.bench.worker import WorkerOptions, run_group
    from dsabench.workload.variants import BASELINE, PATCHED

    protocol = replace(CPU_PROTOCOL, warmup_min_iters=1, warmup_min_ms=0.0, max_time_s=0.05)
    opts = WorkerOptions(run_id="t", run_dir=str(tmp_path), protocol=protocol, profile_iters=0, phase_iters=1,
                         trace=False)
    cases = [make_case(variant=v) for v in (BASELINE, PATCHED)]
    records = [r.to_json() for r in run_group(paddle_backend, cases, opts)]
    for r in records:
        t = r["timing"]
        assert r["status"] == "ok" and len(t["chunks"]) >= 3
        assert sum(c["samples"] for c in t["chunks"]) == len(t["samples_ms"])
        assert all(c["probe_us"] > 0 and c["host_ms"] > 0 for c in t["chunks"])
    assert [c["round"] for c in records[0]["timing"]["chunks"]] == [c["round"] for c in records[1]["timing"]["chunks"]]
