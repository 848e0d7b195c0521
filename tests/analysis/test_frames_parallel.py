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


def test_fork_map_gives_results_in_order_from_closures_and_raises_a_workers_error(capfd):
    import pytest

    from dsabench.errors import InputError
    from dsabench.store.forked import fork_map

    scale = 3
    assert fork_map(lambda x: x * scale, list(range(40)), min_items=2) == [3 * x for x in range(40)]

    def bad(x):
        if x == 7:
            raise InputError("item 7 is damaged")
        return x

    with pytest.raises(InputError, match="item 7 is damaged"):
        fork_map(bad, list(range(20)), min_items=2)
    assert "Traceback" not in capfd.readouterr().err  # the stopped workers end without a word


def test_fork_map_says_when_a_worker_is_killed_and_leaves_no_worker_behind():
    """The out-of-memory killer's SIGKILL on a loader: an error naming it, not a wait without end."""
    import multiprocessing
    import os
    import signal

    import pytest

    from dsabench.store.forked import fork_map, workers

    if workers(8, 2) < 2:
        pytest.skip("no fork, or a single CPU: fork_map runs in this process")

    def killed(x):
        if x == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return x

    def stuck(signum, frame):
        raise AssertionError("fork_map waited 60 s for a worker that was killed")

    before = set(multiprocessing.active_children())
    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)
    try:
        with pytest.raises(ChildProcessError, match=r"ended abruptly \(exit .*-9"):
            fork_map(killed, list(range(8)), min_items=2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert set(multiprocessing.active_children()) <= before
