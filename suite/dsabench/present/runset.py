"""One run as the report reads it: its frame, its shards' manifests and raw records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from dsabench.errors import InputError
from dsabench.store.frames import Frame, expand_run_paths, load_frame
from dsabench.store.rundir import LoadedRun, load_manifest, load_run


@dataclass(frozen=True)
class RunSet:
    """One run as the report reads it: the frame, and each shard's directory, manifest and raw
    records (check_outputs works on records, the tables on the frame). frozen=True stops
    reassigning fields; the frame and the dicts are shared, treat them as read-only."""

    run_id: str
    frame: Frame
    shards: tuple[LoadedRun, ...]

    @property
    def records(self) -> list[dict]:
        return [r for shard in self.shards for r in shard.records]


def load_run_set(paths: Sequence[Path], run_id: str | None = None, what: str = "RUN") -> RunSet:
    """The one run named by `paths` (run directories, or directories holding runs or shards).

    With several runs below the paths, `run_id` picks one; without it that is an InputError
    listing the run ids found. A run without cases is an InputError too: there is nothing to report.
    """
    dirs = expand_run_paths(paths)
    found = [(d, load_manifest(d).run_id) for d in dirs]  # every manifest checked; records of the run picked only
    ids = sorted({rid for _, rid in found})
    if run_id is not None:
        dirs = [d for d, rid in found if rid == run_id]
        if not dirs:
            raise InputError(f"{what} {', '.join(map(str, paths))}: no run with run_id {run_id!r}; found {ids}")
    elif len(ids) > 1:
        raise InputError(
            f"{what} {', '.join(map(str, paths))}: holds {len(ids)} runs ({', '.join(ids)}); expected one run "
            "(pass its directory, the directories of its shards, or --run-id to pick one)"
        )
    runs = [load_run(d) for d in dirs]
    frame = load_frame([r.path for r in runs])
    rid = next(iter(frame.manifests), None) or str(runs[0].manifest.get("run_id"))
    if frame.df.empty:
        raise InputError(f"{what} {', '.join(str(r.path) for r in runs)}: run {rid!r} has no cases recorded")
    shards = sorted(runs, key=lambda r: (tuple(r.manifest.get("shard") or (0, 0)), str(r.path)))
    return RunSet(rid, frame, tuple(shards))
