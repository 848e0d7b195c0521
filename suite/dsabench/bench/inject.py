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


def _cuda_spin(ms: float) -> Callable[[], None]:
    import torch  # noqa: PLC0415

    probe = 2_000_000
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(probe)  # warm
    start.record()
    torch.cuda._sleep(probe)
    stop.record()
    stop.synchronize()
    cycles = max(1, int(probe * ms / max(start.elapsed_time(stop), 1e-6)))
    return lambda: torch.cuda._sleep(cycles)


def delay_for(backend_name: str, gpu: bool, graph: bool, ms: float) -> tuple[str, Callable[[], None]]:
    """The delay's kind (module docstring) and the call that adds it after a forward."""
    if not gpu:
        return HOST_WAIT, _busy_wait(ms)
    if backend_name != "torch":
        raise ValueError(f"--inject-delay on a GPU needs the torch backend (a spin kernel); backend {backend_name} "
                         "has none")
    spin = _cuda_spin(ms)
    if graph:
        return DEVICE_SPIN, spin
    wait = _busy_wait(ms)

    def both() -> None:
        spin()
        wait()
    return BOTH, both


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
