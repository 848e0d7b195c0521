"""Runs measured with PyTorch's profiler left attached after each trace: their eager cases say more
about which process traced than about the code, so `compare` warns about them (docs/design.md,
note 14). Pure functions over manifests."""

from __future__ import annotations

from typing import Mapping


def kept_the_profiler(manifest: Mapping) -> bool:
    """A torch run on a GPU that traced, with workers from before the suite set TEARDOWN_CUPTI=1:
    PyTorch's profiler stayed attached after each trace."""
    workers = manifest.get("workers") or []
    return (manifest.get("backend") == "torch" and ((manifest.get("options") or {}).get("profile_iters") or 0) > 0
            and any((w.get("device") or {}).get("kind") == "gpu" and w.get("profiler_teardown") != "1" for w in workers))


def profiler_residue(side: str, manifest: Mapping, run_id: str) -> str:
    """The warning, naming the side and the run."""
    return (f"{side} {run_id!r} was measured with the profiler left attached after each trace (its workers predate "
            "TEARDOWN_CUPTI=1): eager forwards timed after a trace in the same process ran slower, up to 2x on an "
            "H200; its eager cases say more about which process traced than about the code, its graph cases hold")
