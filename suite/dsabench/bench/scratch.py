"""Profiler scratch space beside the traces, and its removal when a worker is killed.

A profiler exports its raw trace to a temporary directory first; a worker killed mid-export never
runs that directory's cleanup, so the directory is named with the worker's pid and lives in the
run's traces/ folder, where the runner finds and removes it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


SCRATCH_PREFIX = ".scratch-"


def scratch_dir(trace_path: Path):
    """A temporary directory for a profiler's raw export, beside the trace it becomes, named
    with this process's id so that the runner can remove it if the worker is killed mid-export
    (a temporary directory's own cleanup never runs then)."""
    parent = Path(trace_path).parent
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=parent)


def remove_scratch(traces_dir: Path, pid: int | None = None) -> None:
    """Remove the profiler scratch directories of worker `pid` (every worker's when None) and
    the partial traces it was writing: what a killed worker leaves behind."""
    traces_dir = Path(traces_dir)
    if not traces_dir.is_dir():
        return
    tag = "*" if pid is None else str(pid)
    for d in traces_dir.glob(f"{SCRATCH_PREFIX}{tag}-*"):
        shutil.rmtree(d, ignore_errors=True)
    for f in traces_dir.glob(f".*.{tag}.partial"):
        f.unlink(missing_ok=True)
