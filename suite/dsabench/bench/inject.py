"""A known slowdown, for `calibrate`: a delay of F x the forward's own time added to every forward.

The delay must add what it says to the time the protocol measures, so its kind follows what
bounds the forward:

- CUDA Graph replay (device-bound, the host idle while the graph runs): a spin kernel
  (`torch.cuda._sleep`) on the forward's stream, its cycles per millisecond measured once on the
  device (`device_spin`).
- Eager on CUDA: the forward is host-bound (launches, a blocking copy), so a device spin would
  mostly run while the device waits for the host and add little (a nominal +5% measured +1.3 to
  +8.5% on the H200's eager decode cases). The host busy-waits instead, after launching a spin of
  the same size, so the delay adds its size whichever side bounds the forward: the host's wait
  where the host does, the device's spin where the device does (`device_spin+host_wait`).
- On a CPU: a busy wait after the forward (a sleep is too coarse at these sizes) (`host_wait`).

Every kind is sized from one synchronized step's wall time, then measured: `measured_size` times
the plain and the delayed step in alternating loops of back-to-back forwards, and the record keeps
the slowdown it saw beside the size asked for; `calibrate` judges detection against that.
A spin after a graph replay adds more than its cycles: its own launch and the gap before the next
replay (on the H200 a nominal +1% measured +1.7 to +2.4%). So a graph case's spin is fitted
(`fit_spin`): a one-cycle spin and the nominal one are measured, and the spin is sized on the line
through them, so that a 1% injection is near 1% rather than 2%.
Paddle on a GPU has no spin primitive here: such a run is refused (never ran on a GPU anyway).
"""

from __future__ import annotations

import math
import time
from typing import Callable

PROBE_CALLS = 20
MEASURE_PAIRS = 5  # alternating (plain, delayed) loops whose ratios give the measured size
MEASURE_LOOP_MS = 5.0  # a loop's length at least: many forwards against the timer and the sync

HOST_WAIT, DEVICE_SPIN, BOTH = "host_wait", "device_spin", "device_spin+host_wait"


def step_ms(step: Callable[[], object], synchronize: Callable[[], None]) -> float:
    """Median wall time of one call of `step`, each call synchronized (the delay's yardstick)."""
    times = []
    step()
    synchronize()
    for _ in range(PROBE_CALLS):
        t0 = time.perf_counter()
        step()
        synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def _busy_wait(ms: float) -> Callable[[], None]:
    def wait() -> None:
        end = time.perf_counter() + ms / 1e3
        while time.perf_counter() < end:
            pass
    return wait


def _cuda_spin_factory() -> Callable[[float], Callable[[], None]]:
    """ms -> a spin of that many milliseconds of device time, its cycles per ms measured once."""
    import torch  # noqa: PLC0415

    probe = 2_000_000
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(probe)  # warm
    start.record()
    torch.cuda._sleep(probe)
    stop.record()
    stop.synchronize()
    per_ms = probe / max(start.elapsed_time(stop), 1e-6)

    def spin(ms: float) -> Callable[[], None]:
        cycles = max(1, int(per_ms * ms))
        return lambda: torch.cuda._sleep(cycles)
    return spin


def fitted_ms(target: float, nominal_ms: float, zero: float, nominal: float) -> tuple[float, str]:
    """The spin length that adds `target` (a fraction of the step), from two measured points of
    the line measured(ms) = overhead + slope * ms: `zero` (a one-cycle spin) and `nominal` (a spin of
    `nominal_ms`). Returns (ms, how): the nominal length unchanged where the two points give no
    rising line (noise larger than the spin: nothing to fit) or a line that asks for more than the
    nominal length (a spin adds at least its cycles, so that is noise too), 0 where the overhead
    alone reaches the target (the smallest delay this kind can add; the measured size then says by
    how much it overshoots)."""
    slope = (nominal - zero) / nominal_ms if nominal_ms > 0 else 0.0
    if not (slope > 0 and math.isfinite(slope) and math.isfinite(zero)):
        return nominal_ms, "unfitted"
    if zero >= target:
        return 0.0, "overhead_exceeds"
    ms = (target - zero) / slope
    return (ms, "fitted") if ms <= nominal_ms else (nominal_ms, "unfitted")


def fit_spin(step: Callable[[], object], synchronize: Callable[[], None], step_ms_: float, fraction: float,
             spin: Callable[[float], Callable[[], None]] | None = None) -> tuple[Callable[[], None], dict]:
    """A graph replay's spin sized so that the slowdown measured is near `fraction` (module
    docstring): measure a one-cycle spin and the nominal one, size the spin on the line through
    them (`fitted_ms`). Returns the delay and what the fit saw, for the record."""
    spin = spin or _cuda_spin_factory()
    nominal_ms = fraction * step_ms_
    zero = measured_size(step, with_delay(step, spin(0.0)), synchronize, step_ms_)["measured"]
    nominal = measured_size(step, with_delay(step, spin(nominal_ms)), synchronize, step_ms_)["measured"]
    ms, how = fitted_ms(fraction, nominal_ms, zero, nominal)
    return spin(ms), {"fit": how, "nominal_ms": nominal_ms, "delay_ms": ms, "overhead": zero,
                      "nominal_measured": nominal}


def delay_kind(backend_name: str, gpu: bool, graph: bool) -> str:
    """The kind of delay that adds its size to this forward (module docstring); ValueError where
    there is none (Paddle on a GPU)."""
    if not gpu:
        return HOST_WAIT
    if backend_name != "torch":
        raise ValueError(f"--inject-delay on a GPU needs the torch backend (a spin kernel); backend {backend_name} "
                         "has none")
    return DEVICE_SPIN if graph else BOTH


def delay_for(backend_name: str, gpu: bool, graph: bool, ms: float) -> tuple[str, Callable[[], None]]:
    """The delay's kind and the call that adds `ms` after a forward, unfitted."""
    kind = delay_kind(backend_name, gpu, graph)
    if kind == HOST_WAIT:
        return kind, _busy_wait(ms)
    spin = _cuda_spin_factory()(ms)
    if kind == DEVICE_SPIN:
        return kind, spin
    wait = _busy_wait(ms)

    def both() -> None:
        spin()
        wait()
    return BOTH, both


def sized_delay(backend_name: str, gpu: bool, graph: bool, step: Callable[[], object],
                synchronize: Callable[[], None], step_ms_: float, fraction: float
                ) -> tuple[str, Callable[[], None], float, dict]:
    """What calibrate adds to every call of `step`: the kind, the call, its length in ms, and what
    the fit saw (a graph replay's spin, `fit_spin`; {} for the other kinds, sized as asked)."""
    if delay_kind(backend_name, gpu, graph) == DEVICE_SPIN:
        delay, fit = fit_spin(step, synchronize, step_ms_, fraction)
        return DEVICE_SPIN, delay, fit.pop("delay_ms"), fit
    kind, delay = delay_for(backend_name, gpu, graph, fraction * step_ms_)
    return kind, delay, fraction * step_ms_, {}


def with_delay(step: Callable[[], object], delay: Callable[[], None]) -> Callable[[], object]:
    def delayed():
        out = step()
        delay()
        return out
    return delayed


def _loop_ms(step: Callable[[], object], synchronize: Callable[[], None], iters: int) -> float:
    synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    synchronize()
    return (time.perf_counter() - t0) * 1e3 / iters


def measured_size(plain: Callable[[], object], delayed: Callable[[], object], synchronize: Callable[[], None],
                  step_ms_: float, pairs: int = MEASURE_PAIRS) -> dict:
    """The slowdown the delay really adds: `pairs` loops of each, alternating which goes first,
    each loop back-to-back forwards (as the protocol's samples are) long enough for the timer;
    measured = median of the per-pair ratios delayed / plain, minus 1. What it is not: the
    timed run's figure, which has its own noise; it is the same process at the same moment."""
    iters = max(1, math.ceil(MEASURE_LOOP_MS / max(step_ms_, 1e-6)))
    plain_ms, delayed_ms, ratios = [], [], []
    for i in range(pairs):
        if i % 2 == 0:
            p = _loop_ms(plain, synchronize, iters)
            d = _loop_ms(delayed, synchronize, iters)
        else:
            d = _loop_ms(delayed, synchronize, iters)
            p = _loop_ms(plain, synchronize, iters)
        plain_ms.append(p)
        delayed_ms.append(d)
        ratios.append(d / p)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731 - an odd count: the middle value
    return {"measured": med(ratios) - 1, "plain_ms": med(plain_ms), "delayed_ms": med(delayed_ms),
            "measure_pairs": pairs, "measure_iters": iters}
