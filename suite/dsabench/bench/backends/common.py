"""Framework-free pieces both backends share."""

from __future__ import annotations

import time
from typing import Callable

from dsabench.bench.backends.base import Clock


def view_refusal(shape) -> str:
    return (
        f"layout 'view' needs cache heads (dim 1) == 1, got cache shape {list(shape)}: swapping dims 1 and 2 "
        "with a view is a transpose only when dim 1 is 1; otherwise it reinterprets memory and scrambles "
        "rows (FastDeploy asserts new_cache_shape[1] == 1)"
    )


class HostClock(Clock):
    """perf_counter after a synchronize: for CPU, where there are no device events."""

    name = "host"

    def __init__(self, sync: Callable[[], None]) -> None:
        self._sync = sync

    def spans(self, n: int) -> list[list[float]]:
        return [[0.0, 0.0] for _ in range(n)]

    def start(self, span) -> None:
        self._sync()
        span[0] = time.perf_counter()

    def stop(self, span) -> None:
        self._sync()
        span[1] = time.perf_counter()

    def elapsed_ms(self, span) -> float:
        return (span[1] - span[0]) * 1e3


def visible_device(cuda_visible_devices: str | None, fallback_index: int | None) -> tuple[int | None, str | None]:
    """(index, uuid) of a worker's GPU from the first entry of CUDA_VISIBLE_DEVICES, which
    `--devices` sets to an index (`0`) or a UUID (`GPU-...`); the backend's own index otherwise."""
    first = (cuda_visible_devices or "").split(",")[0].strip()
    if first.isdigit():
        return int(first), None
    if first.startswith("GPU-"):
        return None, first
    return fallback_index, None
