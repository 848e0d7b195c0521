"""calibrate's known slowdown (`bench/inject.py`): the delay adds what it says to a real eager
forward and the record says its kind and the size measured. Real Paddle on the CPU."""

from __future__ import annotations

import math
from dataclasses import replace

from dsabench.bench import inject
from dsabench.bench.protocol import CPU_PROTOCOL

F = 1.0  # +100%: far above this shared CPU's noise, so the measured size is about the delay, not the load


def _measure(backend, tmp_path, fraction: float) -> dict:
    from conftest import make_case
    from dsabench.bench.worker import WorkerOptions, run_group

    protocol = replace(CPU_PROTOCOL, warmup_min_iters=1, warmup_min_ms=0.0, max_time_s=0.1)
    opts = WorkerOptions(run_id="inj", run_dir=str(tmp_path), protocol=protocol, profile_iters=0, phase_iters=1,
                         trace=False, inject_delay=fraction)
    (record,) = [r.to_json() for r in run_group(backend, [make_case()], opts)]
    assert record["status"] == "ok", record["message"]
    return record


def test_an_injected_eager_forward_records_its_kind_and_measured_size_and_lasts_at_least_its_delay(paddle_backend, tmp_path):
    """+100% busy-waited after every eager forward: the record names the kind (a host wait: a CPU has
    no device to spin) and the slowdown measured in the worker, plain and delayed forwards of one
    process alternating (a run without injection records none). What holds on any host, however slow:
    every delayed forward, timed or measured, lasts at least the delay, which it busy-waits on the
    clock the timing reads. How near the measured size comes to the one asked for is a timing (this
    shared CPU's forwards vary by up to 60%), and whether the gate calls such a run slower is a
    question for seeded samples (tests/analysis) and for `calibrate` on a machine."""
    plain = _measure(paddle_backend, tmp_path, 0.0)
    injected = _measure(paddle_backend, tmp_path, F)
    assert "inject" not in plain["output"]
    size = injected["output"]["inject"]
    assert size["kind"] == inject.HOST_WAIT and size["fraction"] == F
    assert size["delay_ms"] > 0 and size["plain_ms"] > 0 and math.isfinite(size["measured"])
    assert size["delayed_ms"] >= size["delay_ms"] * (1 - 1e-9)
    assert min(injected["timing"]["samples_ms"]) >= size["delay_ms"] * (1 - 1e-9)


def test_the_delay_kind_follows_what_bounds_the_forward():
    kind, wait = inject.delay_for("paddle", False, False, 0.01)
    assert kind == inject.HOST_WAIT
    wait()  # a busy wait of 10 us returns
    try:
        inject.delay_for("paddle", True, True, 0.01)
    except ValueError as exc:
        assert "needs the torch backend" in str(exc)
    else:
        raise AssertionError("Paddle on a GPU has no spin kernel: refused")
