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


def test_a_spin_is_sized_on_the_line_through_a_one_cycle_spin_and_the_nominal_one():
    """A graph replay's spin costs its launch and a gap besides its cycles: measured +0.8% with one
    cycle and +1.8% with the nominal 0.01 ms of a 1 ms step (the line's slope: 1% per 0.01 ms), so a
    1% target takes 0.002 ms of spin, not 0.01."""
    ms, how = inject.fitted_ms(0.01, 0.01, zero=0.008, nominal=0.018)
    assert how == "fitted" and math.isclose(ms, 0.002)
    assert inject.fitted_ms(0.05, 0.05, zero=0.0, nominal=0.05) == (0.05, "fitted")


def test_a_spin_whose_overhead_alone_reaches_the_target_is_cut_to_nothing_and_says_so():
    assert inject.fitted_ms(0.01, 0.01, zero=0.012, nominal=0.022) == (0.0, "overhead_exceeds")


def test_a_spin_is_left_at_its_nominal_length_when_noise_hides_the_line():
    """Two points that do not rise (noise larger than the spin) fit nothing: the nominal length stays,
    and the measured size recorded beside it is what calibrate judges against."""
    assert inject.fitted_ms(0.01, 0.01, zero=0.02, nominal=0.015) == (0.01, "unfitted")
    assert inject.fitted_ms(0.01, 0.01, zero=float("nan"), nominal=0.015) == (0.01, "unfitted")
    assert inject.fitted_ms(0.01, 0.0, zero=0.0, nominal=0.0) == (0.0, "unfitted")


def test_a_line_that_asks_for_more_than_the_nominal_spin_is_noise_and_keeps_the_nominal_length():
    """+0.1% with one cycle, +0.2% with the nominal spin: the line would ask 9x the nominal length for
    +1%, a +50% injection labelled +1%. A spin adds at least its cycles, so the nominal stays."""
    assert inject.fitted_ms(0.01, 0.01, zero=0.001, nominal=0.002) == (0.01, "unfitted")


def test_fit_spin_measures_both_points_on_the_step_and_returns_a_delay_of_the_fitted_length():
    """The fit with a real delay on the CPU (a busy wait standing where the device spin goes): it
    records both measured points and the length chosen, and the delay it returns waits that long."""
    calls = []

    def step():
        inject._busy_wait(0.2)()

    def busy(ms):
        calls.append(ms)
        return inject._busy_wait(ms)

    delay, fit = inject.fit_spin(step, lambda: None, 0.2, 0.5, spin=busy)
    assert calls[:2] == [0.0, 0.1] and calls[-1] == fit["delay_ms"]
    assert fit["fit"] in {"fitted", "unfitted", "overhead_exceeds"} and fit["nominal_ms"] == 0.1
    assert fit["delay_ms"] >= 0 and math.isfinite(fit["overhead"]) and math.isfinite(fit["nominal_measured"])
    delay()
