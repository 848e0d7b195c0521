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

    def start(self):
        self._sync()
        return time.perf_counter()

    def stop(self, token):
        self._sync()
        return (token, time.perf_counter())

    def elapsed_ms(self, span) -> float:
        return (span[1] - span[0]) * 1e3
