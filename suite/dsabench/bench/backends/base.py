"""The interface every framework backend implements, and what it hands back.

Everything framework-specific (tensors, device timers, CUDA Graph capture, profiler, memory
statistics) lives behind this interface; `measure`, `runner` and the analysis never import a
framework. A backend instance lives in one worker process and serves many cases.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

from dsabench.errors import Unsupported
from dsabench.workload.cases import Case
from dsabench.workload.inputs import HostInputs
from dsabench.workload.phases import NVTX_DOMAIN
from dsabench.workload.variants import Variant


@dataclass(frozen=True)
class Capability:
    """Whether one feature is usable here, and if not, why (said to the user verbatim)."""

    usable: bool
    reason: str = ""


@dataclass(frozen=True)
class Availability:
    backend: str
    framework_version: str
    device: Capability
    graph: Capability
    profiler_targets: tuple[str, ...]
    nvtx: Capability
    details: dict = field(default_factory=dict)


class Clock(ABC):
    """Times a region of device work; `elapsed_ms` may block until the device is done.

    `spans(n)` makes the n span objects of a chunk (device events on a GPU) before the timed
    region, so that creating them costs nothing inside a sample: `start` and `stop` only mark.
    """

    name: str

    @abstractmethod
    def spans(self, n: int) -> list[Any]: ...

    @abstractmethod
    def start(self, span: Any) -> None: ...

    @abstractmethod
    def stop(self, span: Any) -> None: ...

    @abstractmethod
    def elapsed_ms(self, span: Any) -> float: ...

    def between_ms(self, first: Any, last: Any) -> float | None:
        """Device time from `first`'s start to `last`'s stop (a chunk's device time), read after
        `elapsed_ms` of `last`; None where the clock is the host's own (no separate device time)."""
        return None


class _NoOp:
    """A context that does nothing; one shared instance, so entering it allocates nothing."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        return None


_NO_OP = _NoOp()


class _Ranges:
    """The ranges one phase opens (NVTX and/or the framework's), closed in reverse order."""

    __slots__ = ("_contexts",)

    def __init__(self, contexts: list) -> None:
        self._contexts = contexts

    def __enter__(self) -> None:
        for c in self._contexts:
            c.__enter__()

    def __exit__(self, *exc) -> None:
        for c in reversed(self._contexts):
            c.__exit__(*exc)


class Marker:
    """Opens a named phase range: NVTX (domain `dsabench`) and/or the framework profiler range.

    The timed passes use `NULL_MARKER` (whose call returns one shared no-op context) unless
    `--nvtx` asks for NVTX ranges, which they then get alone, never the framework's profiler
    ranges; the profiled pass marks both.
    """

    def __init__(self, framework_range: Callable[[str], ContextManager] | None, use_nvtx: bool) -> None:
        self._framework_range = framework_range
        self._nvtx = None
        if use_nvtx:
            try:
                import nvtx  # noqa: PLC0415

                self._nvtx = nvtx
            except ImportError:
                self._nvtx = None

    def __call__(self, name: str) -> ContextManager:
        contexts = []
        if self._nvtx is not None:
            contexts.append(self._nvtx.annotate(name, domain=NVTX_DOMAIN))
        if self._framework_range is not None:
            contexts.append(self._framework_range(name))
        return _Ranges(contexts) if contexts else _NO_OP


class _NullMarker(Marker):
    """Marks nothing: a timed forward pays one call returning a shared no-op context per phase."""

    def __init__(self) -> None:
        super().__init__(None, False)

    def __call__(self, name: str) -> ContextManager:
        return _NO_OP


NULL_MARKER = _NullMarker()


def nvtx_marker() -> Marker:
    """NVTX ranges only (domain `dsabench`): what `--nvtx` adds to the timed passes."""
    return Marker(None, True)


PROBE_N = 4096  # the health probe sums arange(PROBE_N) on the device


def probe_answer(total: int) -> str:
    """'' when the device's sum of arange(PROBE_N) is exact, else what it gave."""
    want = PROBE_N * (PROBE_N - 1) // 2
    return "" if total == want else f"a reduction on the device gave {total}, not {want}"


class Backend(ABC):
    name: str
    kernel: str = "reference"  # the attention kernel forward uses (kernels/select.py)

    def use_kernel(self, kernel: str) -> None:
        """Make forward's decode and prefill attention run on `kernel` (resolved by select first)."""
        if kernel != "reference":
            raise Unsupported(f"kernel {kernel!r}: backend {self.name} runs only the reference attention")

    def attention_ran(self, state: Any) -> dict | None:
        """What each attention call of the last forward on `state` really ran, where the forward's
        ops can differ from the backend's kernel (a FastDeploy commit's); None: the backend's kernel."""
        return None

    def kernel_refusal(self, case: Case) -> str:
        """'' when forward's attention kernel takes `case`, else why not (kernels/attention.refusal)."""
        from dsabench.bench.kernels.attention import refusal  # noqa: PLC0415

        return refusal(self.kernel, case)

    @abstractmethod
    def availability(self) -> Availability: ...

    @abstractmethod
    def prepare(self, case: Case, host: HostInputs) -> Any:
        """Device tensors of the case: inputs, the cache (background random, context records)."""

    @abstractmethod
    def forward(self, state: Any, variant: Variant, mark: Marker = NULL_MARKER) -> Any:
        """One forward_mixed of the variant; returns the output tensor [T, H, 512] bf16."""

    @abstractmethod
    def layout_copy_bytes(self, state: Any, variant: Variant) -> int:
        """Bytes the `layout` phase copies: 0 when its result shares the cache's memory."""

    @abstractmethod
    def output_bytes(self, out: Any) -> bytes:
        """The output's raw bytes, for bit-for-bit comparison across variants."""

    @abstractmethod
    def output_numpy(self, out: Any):
        """The output as float32 NumPy, for comparison with the oracle."""

    @abstractmethod
    def cache_numpy(self, state: Any):
        """The cache as uint8 NumPy (tests and the oracle read the background from it)."""

    @abstractmethod
    def synchronize(self) -> None: ...

    @abstractmethod
    def clock(self) -> Clock: ...

    @abstractmethod
    def capture(self, fn: Callable[[], Any]) -> tuple[Callable[[], None], Any]:
        """Capture `fn` into a CUDA Graph: (replay, the graph's static output tensor), which a
        replay overwrites; raises CaptureFailed or Unsupported."""

    @abstractmethod
    def flush_l2(self) -> None:
        """Evict the device's L2 cache (cold mode); a no-op where there is none to evict."""

    @abstractmethod
    def memory(self) -> "MemoryProbe | None": ...

    @abstractmethod
    def record_trace(self, step: Callable[[], None], iters: int, path: Path) -> Path: ...

    @abstractmethod
    def marker(self, use_nvtx: bool) -> Marker: ...

    @abstractmethod
    def is_out_of_memory(self, exc: BaseException) -> bool: ...

    @abstractmethod
    def device_identity(self) -> dict:
        """name, index, uuid of the device this worker runs on (cpu: the processor)."""

    def all_finite(self, out: Any) -> bool | None:
        """Whether every output element is finite, found where the output lives (one reduction on
        the device instead of a scan of a prefill's half gigabyte on the host); None: unknown."""
        return None

    def unhealthy(self) -> str:
        """Why this process should not measure another case after a failed capture ('' when it
        may): a worker restart costs seconds, and most failed captures (a host copy refused before
        any device work) leave the device as it was. A backend without a probe is always replaced."""
        return f"backend {self.name} has no device health probe"


class MemoryProbe(ABC):
    @abstractmethod
    def allocated(self) -> int: ...

    @abstractmethod
    def reset_peak(self) -> None: ...

    @abstractmethod
    def peak(self) -> int: ...
