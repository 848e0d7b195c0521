"""Backends by name, imported lazily: the analysis side must not pull in a framework."""

from __future__ import annotations

import warnings

from dsabench.bench.backends.base import Backend

BACKENDS = ("paddle", "torch")


def quiet_paddle_import() -> None:
    """Before anything imports Paddle in this process: Paddle warns at import that ccache (for
    building C++ extensions, which the suite never does) is missing; not the user's business."""
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)


def get_backend(name: str, device: str | None = None) -> Backend:
    if name == "paddle":
        quiet_paddle_import()
        from dsabench.bench.backends.paddle import PaddleBackend  # noqa: PLC0415

        return PaddleBackend(device)
    if name == "torch":
        from dsabench.bench.backends.torch import TorchBackend  # noqa: PLC0415

        return TorchBackend(device)
    raise ValueError(f"backend {name!r}; expected one of {list(BACKENDS)}")
