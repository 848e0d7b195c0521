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
4. Stopping: after `min_samples` and `min_rounds` rounds, stop as soon as the distribution-free
   95% confidence interval of the median is within `precision` of the median (half-width /
   median); else at `max_samples` or `max_time_s`. The stop reason names the unmet condition with
   its value and threshold.
5. Rounds: the samples are taken in chunks, one chunk per series per round (`measure_interleaved`
   rotates the variants of a case through the rounds). A chunk holds at most `chunk` samples,
   fewer when `min_rounds` rounds would not fit in the time cap or when `min_samples` is reached
   in fewer than `min_rounds` rounds (`per_round`): so a long case is still interleaved in
   `min_rounds` rounds, each side's samples spread over its length instead of in one block.
6. Host evidence: just before each chunk the host speed probe runs and the thread's counters are
   read, just after it they are read again and the probe runs again (`bench/host.py`, its CPU
   counters `bench/pmu.py` where the host has them); nothing but the forwards runs
   between the chunk's first mark and its last. Each chunk is a `schema.Chunk` in the record.
Samples are stored per iteration (sample time / K), raw.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from dsabench.bench.host import HostReader, memory_probe_us, probe_us
from dsabench.store.schema import Chunk, Timing
from dsabench.analysis.stats import summarize

PROBE_ITERS = 3
MIN_SAMPLES = 3  # fewest samples a median and its interval can be computed from


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
    chunk: int = 10  # most samples per chunk: taken between convergence checks (events are read per chunk)
    min_rounds: int = 1  # rounds every series gets before it may stop, whatever its length

    def __post_init__(self) -> None:
        if self.mode not in ("hot", "cold"):
            raise ValueError(f"protocol mode {self.mode!r}; expected 'hot' or 'cold'")
        if self.min_samples < MIN_SAMPLES:
            raise ValueError(f"protocol min_samples {self.min_samples}; expected at least {MIN_SAMPLES} (a median needs them)")
        if not 1 <= self.min_rounds <= self.max_samples:
            raise ValueError(f"protocol min_rounds {self.min_rounds}; expected 1 to max_samples ({self.max_samples})")

    def per_round(self, sample_ms: float) -> int:
        """Samples per chunk for a series whose sample takes `sample_ms`: at most `chunk`; no more
        than reach `min_samples` in `min_rounds` rounds; no more than let `min_rounds` rounds fit
        in `max_time_s`; no more than let `min_rounds` rounds fit under `max_samples`; at least 1."""
        if self.min_rounds <= 1:
            return self.chunk
        fit = int(self.max_time_s * 1e3 / (self.min_rounds * max(sample_ms, 1e-9)))
        return max(1, min(self.chunk, -(-self.min_samples // self.min_rounds), fit,
                          self.max_samples // self.min_rounds))


# A GPU sample of >= 1 ms puts event resolution (~0.5 us) three orders below it. On a CPU the
# forward itself takes milliseconds, and the smoke preset must finish in a minute on two cores.
GPU_PROTOCOL = Protocol()
CPU_PROTOCOL = Protocol(warmup_min_iters=2, warmup_min_ms=10.0, min_sample_ms=5.0, min_samples=6,
                        max_samples=200, precision=0.02, max_time_s=0.5, chunk=6, min_rounds=3)
# min_samples 6: the distribution-free 95% CI of a median needs n >= 6 to reach 95% coverage.
# min_rounds 3 (issue 19): with 6 samples per chunk a case of 150 ms or more got one round, each
# side's samples one block of time, and identical code came out 'slower' or 'faster' between runs.
# Now chunks of 2 samples (1 past 83 ms) give every side 3 or more interleaved rounds for the cost
# of the same 6 samples. The GPU keeps 1: its long cases are device-bound (their processes spread
# 0.37% on the H200) and 3 rounds would triple their time; its host-bound cases take many rounds.


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


@dataclass
class _Series:
    """One step being measured: its K, its samples so far, and why it stopped (if it has)."""

    step: Callable[[], object]
    k: int
    warmup_iters: int
    warmup_ms: float
    per_round: int = 1
    samples: list = field(default_factory=list)
    chunks: list = field(default_factory=list)
    reason: str = ""
    elapsed_s: float = 0.0


def _start(step: Callable[[], object], clock, sync, protocol: Protocol) -> _Series:
    """Warm-up and probe: how many forwards make one sample."""
    warm_n, warm_ms = _warm_up(step, sync, protocol)
    (span,) = clock.spans(1)
    clock.start(span)
    for _ in range(PROBE_ITERS):
        step()
    clock.stop(span)
    estimate_ms = max(clock.elapsed_ms(span) / PROBE_ITERS, 1e-6)
    k = 1 if protocol.mode == "cold" else max(1, math.ceil(protocol.min_sample_ms / estimate_ms))
    return _Series(step, k, warm_n, warm_ms, per_round=protocol.per_round(estimate_ms * k))


def _chunk(series: _Series, clock, protocol: Protocol, flush, sync, host: HostReader, round_no: int) -> None:
    """`series.per_round` samples of K back-to-back forwards; events are read after the chunk.

    Cold mode synchronizes after the flush, outside the clock marks: otherwise the host would run
    ahead during the flush and launch overhead would vanish from the sample of every variant
    that does not block the host, favouring it (seen on the H100: patched 'cold' faster than hot).
    The probes and the host counters are taken before the first mark and after the last.
    """
    spans = clock.spans(series.per_round)  # device events are made here, outside every sample
    step, k, cold = series.step, series.k, protocol.mode == "cold" and flush is not None
    memory = memory_probe_us()
    probe = probe_us()
    before = host.before()
    start_s = time.time()
    t0 = time.perf_counter()
    for span in spans:
        if cold:
            flush()
            sync()
        clock.start(span)
        for _ in range(k):
            step()
        clock.stop(span)
    t1 = time.perf_counter()
    after = host.after()
    probe_after = probe_us()
    series.samples.extend(clock.elapsed_ms(s) / k for s in spans)
    series.chunks.append(Chunk(round=round_no, samples=len(spans), start_s=round(start_s, 6),
                               host_ms=(t1 - t0) * 1e3, device_ms=clock.between_ms(spans[0], spans[-1]),
                               probe_us=probe, probe_after_us=probe_after, memory_probe_us=memory,
                               **host.evidence(before, after)))
    series.elapsed_s += time.perf_counter() - t0


def _stop_reason(series: _Series, protocol: Protocol) -> str:
    """'' while the series should go on, else which rule stopped it, with value and threshold."""
    n = len(series.samples)
    if n < protocol.min_samples or len(series.chunks) < protocol.min_rounds:
        return ""
    rel = summarize(series.samples).rel_ci_halfwidth
    if rel <= protocol.precision:
        return f"precision reached: 95% CI of the median ±{rel:.2%} <= {protocol.precision:.2%} after {n} samples"
    if n >= protocol.max_samples:
        return f"sample cap {protocol.max_samples} reached while over noise threshold (±{rel:.2%} > {protocol.precision:.2%})"
    if series.elapsed_s >= protocol.max_time_s:
        return (f"timed out ({protocol.max_time_s:.2f} s) while over noise threshold "
                f"(±{rel:.2%} > {protocol.precision:.2%}) after {n} samples")
    return ""


def _timing(series: _Series, clock, note: str = "") -> Timing:
    return Timing(
        samples_ms=tuple(series.samples),
        iters_per_sample=series.k,
        warmup_iters=series.warmup_iters,
        warmup_ms=series.warmup_ms,
        clock=clock.name,
        stop_reason=series.reason + note,
        chunks=tuple(series.chunks),
    )


class StepFailed(Exception):
    """Step `index` of `measure_interleaved` raised; `__cause__` is its exception.

    A device error surfaces when a chunk's events are read, and every chunk is read before the
    next step's chunk starts, so the step whose warm-up, probe or chunk raised is the one whose
    work failed: no per-forward bookkeeping is needed to know it.
    """

    def __init__(self, index: int) -> None:
        super().__init__(f"step {index} raised")
        self.index = index


def measure(step: Callable[[], object], clock, sync: Callable[[], None], protocol: Protocol,
            flush: Callable[[], None] | None = None) -> Timing:
    """Time `step` (one forward or one graph replay) by the protocol above."""
    series = _start(step, clock, sync, protocol)
    host = HostReader()
    try:
        while not series.reason:
            _chunk(series, clock, protocol, flush, sync, host, len(series.chunks))
            series.reason = _stop_reason(series, protocol)
    finally:
        host.close()
    return _timing(series, clock, f"; {len(series.chunks)} chunks of <= {series.per_round} samples")


def measure_interleaved(steps: Sequence[Callable[[], object]], clock, sync: Callable[[], None],
                        protocol: Protocol, flush: Callable[[], None] | None = None,
                        seed: int = 0) -> list[Timing]:
    """Time several steps (the variants of one case) in rounds: a chunk of each, in turn.

    Host and device drift (clocks, other tenants, allocator state) then falls on every variant
    alike instead of on whichever ran first. Every step stays in the rotation until all of them
    meet the stopping rule (or the caps, which apply per step), so all get the same rounds; the
    order within a round is a fresh seeded permutation, so no variant always follows another.
    Raises `StepFailed` naming the step whose work raised.
    """
    import numpy as np  # noqa: PLC0415

    series = []
    for i, step in enumerate(steps):
        try:
            series.append(_start(step, clock, sync, protocol))
        except Exception as exc:
            raise StepFailed(i) from exc
    # one chunk size for all, the slowest series': sample i of every series then falls in the same
    # round, which is what pairs them (analysis.hierarchy's paired interval)
    per_round = min(s.per_round for s in series)
    for s in series:
        s.per_round = per_round
    rng = np.random.default_rng(seed)
    round_no = 0
    host = HostReader()
    try:
        while True:
            for i in rng.permutation(len(series)):
                try:
                    _chunk(series[i], clock, protocol, flush, sync, host, round_no)
                except Exception as exc:
                    raise StepFailed(int(i)) from exc
            round_no += 1
            reasons = [_stop_reason(s, protocol) for s in series]
            capped = [r and not r.startswith("precision") for r in reasons]
            if all(reasons) or any(capped):
                break
    finally:
        host.close()
    for s, r in zip(series, reasons):
        s.reason = r or _unmet(s, protocol)
    return [_timing(s, clock, _rounds_note(s, len(steps), round_no)) for s in series]


def _rounds_note(series: _Series, n_steps: int, rounds: int) -> str:
    """How the series was interleaved: rounds, samples per chunk; never silent about too few rounds."""
    if n_steps == 1:
        return f"; {rounds} chunks of <= {series.per_round} samples"
    return (f"; interleaved with {n_steps - 1} other variant(s) in {rounds} rounds of <= {series.per_round} "
            f"samples")


def _unmet(series: _Series, protocol: Protocol) -> str:
    """Why a series stopped before its own rule did: a sibling hit a cap."""
    rel = summarize(series.samples).rel_ci_halfwidth if len(series.samples) >= 3 else float("inf")
    return (f"stopped with its interleaved siblings at a cap while over noise threshold "
            f"(±{rel:.2%} > {protocol.precision:.2%}) after {len(series.samples)} samples")


def protocol_for(gpu: bool, **overrides) -> Protocol:
    base = GPU_PROTOCOL if gpu else CPU_PROTOCOL
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
