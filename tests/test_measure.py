"""The timing protocol with the real host clock and real work (NumPy), no framework."""

from __future__ import annotations

import numpy as np
import pytest

from dsabench.bench.backends.common import HostClock
from dsabench.bench.protocol import Protocol, measure, measure_interleaved

QUICK = Protocol(warmup_min_iters=2, warmup_min_ms=1.0, min_sample_ms=2.0, min_samples=5, max_samples=40,
                 precision=0.5, max_time_s=2.0, chunk=5)


def _work(n: int):
    a = np.random.default_rng(0).standard_normal((n, n))
    return lambda: a @ a


def test_a_sample_holds_enough_forwards_to_last_min_sample_ms():
    t = measure(_work(8), HostClock(lambda: None), lambda: None, QUICK)
    assert t.iters_per_sample > 1
    assert len(t.samples_ms) >= QUICK.min_samples
    assert all(s * t.iters_per_sample > 0 for s in t.samples_ms)


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


def test_interleaved_timing_keeps_each_variant_apart_and_orders_them_by_their_work():
    small, large = _work(16), _work(160)
    fast, slow = measure_interleaved([small, large], HostClock(lambda: None), lambda: None, QUICK)
    assert np.median(slow.samples_ms) > np.median(fast.samples_ms)
    assert "interleaved with 1 other variant(s)" in fast.stop_reason


def test_protocol_refuses_too_few_samples_for_a_median():
    with pytest.raises(ValueError, match="min_samples 2; expected at least 3"):
        Protocol(min_samples=2)
