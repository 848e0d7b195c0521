"""A known slowdown, for `calibrate`: a delay of F x the forward's own time added to every forward.

On CUDA (torch) the delay is a spin kernel (`torch.cuda._sleep`) on the forward's stream, its
cycles per millisecond measured once on the device, so it is device time that a host-bound
forward may partly hide, as a real device regression would be. On a CPU it is a busy wait after
the forward (a sleep is too coarse at these sizes). The size the worker aimed at and the step
time it measured go into the record; `calibrate` also reports the slowdown the runs measured.
Paddle on a GPU has no spin primitive here: such a run is refused (never ran on a GPU anyway).
"""

from __future__ import annotations

import time
from typing import Callable

PROBE_CALLS = 20


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


def delay_for(backend_name: str, gpu: bool, ms: float) -> Callable[[], None]:
    if not gpu:
        return _busy_wait(ms)
    if backend_name == "torch":
        return _cuda_spin(ms)
    raise ValueError(f"--inject-delay on a GPU needs the torch backend (a spin kernel); backend {backend_name} has none")


def with_delay(step: Callable[[], object], delay: Callable[[], None]) -> Callable[[], object]:
    def delayed():
        out = step()
        delay()
        return out
    return delayed
