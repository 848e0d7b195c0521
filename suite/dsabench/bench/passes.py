"""The untimed passes of a case, after its timed pass: host time per phase with a synchronize at
every phase edge, and the peak memory one forward allocates. Their syncs would distort a latency
sample, so they never share a pass with the timing."""

from __future__ import annotations

import time

from dsabench.bench.backends.base import Backend, Marker
from dsabench.workload.phases import PHASE_NAMES


class PhaseTimer(Marker):
    """Synchronizes at each phase's edges and keeps host time per phase (and memory growth).

    Used only in its own pass: the syncs it adds would distort a latency sample.
    """

    def __init__(self, sync, memory) -> None:
        super().__init__(None, False)
        self._sync, self._memory = sync, memory
        self.times: dict[str, float] = {}
        self.allocated: dict[str, int] = {}

    def __call__(self, name: str):
        import contextlib  # noqa: PLC0415

        @contextlib.contextmanager
        def cm():
            self._sync()
            before = self._memory.allocated() if self._memory else 0
            t0 = time.perf_counter()
            yield
            self._sync()
            self.times[name] = self.times.get(name, 0.0) + (time.perf_counter() - t0) * 1e3
            if self._memory:
                self.allocated[name] = self._memory.allocated() - before

        return cm()


def phase_pass(backend: Backend, state, variant, iters: int) -> dict[str, list[float]]:
    """Per-phase host time with a synchronize at every phase edge, `iters` forwards."""
    samples: dict[str, list[float]] = {}
    for _ in range(iters):
        timer = PhaseTimer(backend.synchronize, None)
        backend.forward(state, variant, timer)
        for name in PHASE_NAMES:
            if name in timer.times:
                samples.setdefault(name, []).append(timer.times[name])
    return samples


def memory_pass(backend: Backend, state, variant) -> dict | None:
    """Peak bytes one forward allocates above what is live before it, and the layout's share."""
    probe = backend.memory()
    if probe is None:
        return None
    backend.synchronize()
    before = probe.allocated()
    probe.reset_peak()
    timer = PhaseTimer(backend.synchronize, probe)
    result = backend.forward(state, variant, timer)
    backend.synchronize()
    peak = probe.peak()
    del result
    return {
        "peak_bytes_above_inputs": int(peak - before),
        "layout_alloc_bytes": int(timer.allocated.get("layout", 0)),
        "inputs_bytes": int(getattr(state, "inputs_bytes", 0)),
    }
