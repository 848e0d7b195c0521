"""What each loaded run planned beside what it holds: its filter, its shard of how many, and per
directory the record keys it holds against the count its manifest planned (`cases_planned`, one
per case, impl and kernel, after the filter and the shard). `analysis.unmeasured` reads it to tell a
case a run left out on purpose from one it planned and never recorded (killed, out of time, a shard
never gathered)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


@dataclass(frozen=True)
class PlanDir:
    """One directory of a run: its shard (K, N) or None, the record keys it holds, and the number
    of keys its manifest planned (None: a manifest from before the count, or 0)."""

    path: Path
    shard: tuple[int, int] | None
    keys: frozenset[str]
    planned: int | None


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    filter: str | None
    dirs: tuple[PlanDir, ...]


def _shard(value) -> tuple[int, int] | None:
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(type(v) is int for v in value)
    return (value[0], value[1]) if ok and 1 <= value[0] <= value[1] else None


def run_plans(dirs: Sequence[tuple[Path, str, dict, Sequence[str]]]) -> dict[str, RunPlan]:
    """Per run id, its plan, from (directory, run_id, manifest, record keys held) of every directory
    loaded; the filter is the first directory's (one run is made with one)."""
    out: dict[str, RunPlan] = {}
    for path, run_id, manifest, keys in dirs:
        opts = manifest.get("options") if isinstance(manifest.get("options"), dict) else {}
        planned = manifest.get("cases_planned")
        one = PlanDir(Path(path), _shard(manifest.get("shard")), frozenset(keys),
                      planned if type(planned) is int and planned > 0 else None)
        had = out.get(run_id)
        flt = opts.get("filter") if isinstance(opts.get("filter"), str) else None
        out[run_id] = RunPlan(run_id, had.filter if had else flt, (*(had.dirs if had else ()), one))
    return out
