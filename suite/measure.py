"""The timing protocol, framework-neutral.

1. Warm-up: at least `warmup_min_iters` forwards and `warmup_min_ms` of host time, so module
   load, allocator growth and kernel selection stay out of the samples.
2. Probe: time 3 forwards with the clock to estimate one forward's time.
3. Samples: each sample is K forwards back to back between two clock marks (device events on a
   GPU, perf_counter after a synchronize on a CPU), K = ceil(min_sample_ms / estimate), so a
   sample is long against the timer's resolution. Back to back on purpose: a forward that blocks
   the host (the baseline's `paddle.tensor(200.0)`) leaves the device idle while the host waits,
   and that idle time must land in the per-iteration time, not between samples. In cold mode
   K = 1 and the L2 cache is flushed before every sample, outside the clock marks.
4. Stopping: after `min_samples`, stop as soon as the distribution-free 95% confidence interval
   of the median is within `precision` of the median (half-width / median); else at
   `max_samples` or `max_time_s`. The stop reason names the unmet condition with its value and
   threshold.
Samples are stored per iteration (sample time / K), raw.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

from .records import Timing
from .stats import summarize

PROBE_ITERS = 3


@dataclass(frozen=True)
class Protocol:
    warmup_min_iters: int = 5
    warmup_min_ms: float = 100.0
    min_sample_ms: float = 1.0
    min_samples: int = 10
    max_samples: int = 500
    precision: float = 0.01
    max_time_s: float = 10.0
    mode: str = "hot"
    chunk: int = 10  # samples taken between convergence checks (events are read per chunk)

    def __post_init__(self) -> None:
        if self.mode not in ("hot", "cold"):
            raise ValueError(f"protocol mode {self.mode!r}; expected 'hot' or 'cold'")
        if self.min_samples < 3:
            raise ValueError(f"protocol min_samples {self.min_samples}; expected at least 3 (a median needs them)")


# A GPU sample of >= 1 ms puts event resolution (~0.5 us) three orders below it. On a CPU the
# forward itself takes milliseconds, and the smoke preset must finish in a minute on two cores.
GPU_PROTOCOL = Protocol()
CPU_PROTOCOL = Protocol(warmup_min_iters=2, warmup_min_ms=10.0, min_sample_ms=5.0, min_samples=5,
                        max_samples=200, precision=0.02, max_time_s=0.5, chunk=5)


def _warm_up(step: Callable[[], object], sync: Callable[[], None], p: Protocol) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = 0
    while n < p.warmup_min_iters or (time.perf_counter() - t0) * 1e3 < p.warmup_min_ms:
        step()
        n += 1
        if n % 8 == 0 or n >= p.warmup_min_iters:
            sync()
    sync()
    return n, (time.perf_counter() - t0) * 1e3


def measure(step: Callable[[], object], clock, sync: Callable[[], None], protocol: Protocol,
            flush: Callable[[], None] | None = None, log: Callable[[str], None] | None = None) -> Timing:
    """Time `step` (one forward or one graph replay) by the protocol above."""
    warm_n, warm_ms = _warm_up(step, sync, protocol)

    span = clock.start()
    for _ in range(PROBE_ITERS):
        step()
    estimate_ms = max(clock.elapsed_ms(clock.stop(span)) / PROBE_ITERS, 1e-6)

    cold = protocol.mode == "cold"
    k = 1 if cold else max(1, math.ceil(protocol.min_sample_ms / estimate_ms))
    samples: list[float] = []
    t0 = time.perf_counter()
    reason = ""
    while True:
        spans = []
        for _ in range(protocol.chunk):
            if cold and flush is not None:
                flush()
            s = clock.start()
            for _ in range(k):
                step()
            spans.append(clock.stop(s))
        samples.extend(clock.elapsed_ms(s) / k for s in spans)
        n = len(samples)
        elapsed_s = time.perf_counter() - t0
        if n < protocol.min_samples:
            continue
        rel = summarize(samples).rel_ci_halfwidth
        if rel <= protocol.precision:
            reason = f"precision reached: 95% CI of the median ±{rel:.2%} <= {protocol.precision:.2%} after {n} samples"
            break
        if n >= protocol.max_samples:
            reason = f"sample cap {protocol.max_samples} reached while over noise threshold (±{rel:.2%} > {protocol.precision:.2%})"
            break
        if elapsed_s >= protocol.max_time_s:
            reason = (f"timed out ({protocol.max_time_s:.2f} s) while over noise threshold "
                      f"(±{rel:.2%} > {protocol.precision:.2%}) after {n} samples")
            break
    if log is not None and not reason.startswith("precision"):
        log(f"Warn: {reason}")
    return Timing(
        samples_ms=tuple(samples),
        iters_per_sample=k,
        warmup_iters=warm_n,
        warmup_ms=warm_ms,
        clock=clock.name,
        stop_reason=reason,
    )


def protocol_for(gpu: bool, **overrides) -> Protocol:
    base = GPU_PROTOCOL if gpu else CPU_PROTOCOL
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
