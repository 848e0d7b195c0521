"""Many runs load in worker processes (store.frames.PARALLEL_MIN_RUNS, forked workers): the frame, its manifests,
run directories and warnings are exactly those of loading them in this process, in path order
(shards of one run split between loaders, a case two shards both ran, a truncated last line)."""

from __future__ import annotations

import pandas as pd

from dsabench.store import frames
from dsabench.workload.variants import PATCHED


def _runs(builder) -> list:
    a, b = builder.case(), builder.case(variant=PATCHED)
    paths = []
    for day in range(9):
        run_id = f"n{day}"
        when = f"2025-01-{day + 1:02d}T00:00:00+00:00"
        paths.append(builder.run(f"{run_id}-1", [builder.record(a, run_id, builder.samples(day))], run_id=run_id,
                                 shard="1/2", created_at=when))
        paths.append(builder.run(f"{run_id}-2", [builder.record(a, run_id, builder.samples(day + 50)),
                                                 builder.record(b, run_id, builder.samples(day + 99))],
                                 run_id=run_id, shard="2/2", created_at=when))  # case a again: a warning
    with open(paths[5] / "cases.jsonl", "ab") as f:
        f.write(b'{"run_id": "n2", "case_')  # a run killed while writing: skipped with a warning
    return paths


def test_loading_in_worker_processes_gives_the_frame_of_loading_in_this_one(builder, monkeypatch):
    paths = _runs(builder)
    serial = frames.load_frame(paths)
    monkeypatch.setattr(frames, "PARALLEL_MIN_RUNS", 2)
    parallel = frames.load_frame(paths)
    pd.testing.assert_frame_equal(parallel.df, serial.df)
    assert parallel.warnings == serial.warnings and len(serial.warnings) == 10
    assert parallel.manifests == serial.manifests and parallel.run_dirs == serial.run_dirs
    assert len(serial.df) == 18 and set(serial.df["run_id"]) == {f"n{d}" for d in range(9)}
