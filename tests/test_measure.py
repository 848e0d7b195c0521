"""The timing protocol with the real host clock and real work (NumPy), no framework."""

from __future__ import annotations

import numpy as np
import pytest

from dsabench.bench.backends.common import HostClock
from dsabench.bench.protocol import PROBE_ITERS, Protocol, StepFailed, measure, measure_interleaved

QUICK = Protocol(warmup_min_iters=2, warmup_min_ms=1.0, min_sample_ms=2.0, min_samples=5, max_samples=40,
                 precision=0.5, max_time_s=2.0, chunk=5)


def _work(n: int):
    a = np.random.default_rng(0).standard_normal((n, n))
    return lambda: a @ a


class Counted:
    """A real step (a NumPy matmul) that counts its calls and says, in order, which step ran."""

    def __init__(self, n: int, name: str = "", log: list | None = None) -> None:
        self.work, self.name, self.log, self.calls = _work(n), name, log, 0

    def __call__(self):
        self.calls += 1
        if self.log is not None:
            self.log.append(self.name)
        return self.work()


def test_every_sample_is_k_back_to_back_forwards_after_the_warm_up_and_the_probe():
    step = Counted(8)
    t = measure(step, HostClock(lambda: None), lambda: None, QUICK)
    assert len(t.samples_ms) >= QUICK.min_samples
    assert t.iters_per_sample >= 1
    assert step.calls == t.warmup_iters + PROBE_ITERS + t.iters_per_sample * len(t.samples_ms)


def test_stop_reason_names_the_unmet_condition_with_value_and_threshold():
    strict = Protocol(warmup_min_iters=1, warmup_min_ms=0.0, min_sample_ms=0.1, min_samples=5, max_samples=10,
                      precision=1e-9, max_time_s=5.0, chunk=5)
    t = measure(_work(16), HostClock(lambda: None), lambda: None, strict)
    assert t.stop_reason.startswith("sample cap 10 reached while over noise threshold")
    assert "> 0.00%" in t.stop_reason


def test_cold_mode_takes_one_forward_per_sample_and_flushes_before_each():
    flushes = []
    cold = Protocol(warmup_min_iters=1, warmup_min_ms=0.0, min_samples=5, max_samples=10, precision=0.5,
                    max_time_s=2.0, chunk=5, mode="cold")
    t = measure(_work(8), HostClock(lambda: None), lambda: None, cold, flush=lambda: flushes.append(1))
    assert t.iters_per_sample == 1
    assert len(flushes) == len(t.samples_ms)


def test_interleaved_timing_takes_its_samples_in_rounds_with_a_chunk_of_each_variant_in_turn():
    order: list[str] = []
    steps = {"a": Counted(16, "a", order), "b": Counted(32, "b", order)}
    timings = dict(zip(steps, measure_interleaved(list(steps.values()), HostClock(lambda: None), lambda: None, QUICK)))
    assert len(timings["a"].samples_ms) == len(timings["b"].samples_ms)  # the same rounds for both
    chunk_calls = {n: QUICK.chunk * t.iters_per_sample for n, t in timings.items()}
    start = sum(t.warmup_iters + PROBE_ITERS for t in timings.values())  # each variant's warm-up and probe
    assert order[:start] == ["a"] * (start - timings["b"].warmup_iters - PROBE_ITERS) + \
        ["b"] * (timings["b"].warmup_iters + PROBE_ITERS)
    timed, rounds = order[start:], 0
    while timed:  # every round: one chunk of each variant, in either order
        first = timed[0]
        second = "b" if first == "a" else "a"
        n1, n2 = chunk_calls[first], chunk_calls[second]
        assert timed[:n1 + n2] == [first] * n1 + [second] * n2
        timed, rounds = timed[n1 + n2:], rounds + 1
    assert rounds * QUICK.chunk == len(timings["a"].samples_ms)
    assert "interleaved with 1 other variant(s)" in timings["a"].stop_reason


def test_interleaved_timing_names_the_variant_whose_work_raised():
    def failing():
        raise RuntimeError("device error")

    ok = Counted(8)
    with pytest.raises(StepFailed) as caught:
        measure_interleaved([ok, failing], HostClock(lambda: None), lambda: None, QUICK)
    assert caught.value.index == 1 and "device error" in str(caught.value.__cause__)

    exact_warm_up = Protocol(warmup_min_iters=2, warmup_min_ms=0.0, min_sample_ms=0.0001, min_samples=5,
                             max_samples=40, precision=0.5, max_time_s=2.0, chunk=5)
    calls = {"n": 0}

    def fails_in_a_timed_chunk():  # its warm-up and probe pass; its first timed chunk raises
        calls["n"] += 1
        if calls["n"] > exact_warm_up.warmup_min_iters + PROBE_ITERS:
            raise RuntimeError("late device error")
        return ok.work()

    with pytest.raises(StepFailed) as caught:
        measure_interleaved([fails_in_a_timed_chunk, Counted(8)], HostClock(lambda: None), lambda: None,
                            exact_warm_up)
    assert caught.value.index == 0 and "late" in str(caught.value.__cause__)


def test_protocol_refuses_too_few_samples_for_a_median():
    with pytest.raises(ValueError, match="min_samples 2; expected at least 3"):
        Protocol(min_samples=2)
