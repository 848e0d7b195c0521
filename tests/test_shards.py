"""A nightly spread over hosts: each shard is its own process with its own output directory,
as a CI matrix job would be; the directories, gathered in one place, load as one run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from dsabench.store.frames import load_runs
from dsabench.workload.scenarios import load_named

from cli_process import REPO, dsabench

FILTER = r"(tensor-contiguous|scalar-view)\.eager$"


def test_three_shards_run_apart_merge_into_one_run_with_every_case_exactly_once(tmp_path):
    procs = []
    for k in (1, 2, 3):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dsabench", "run", "smoke", "--filter", FILTER, "--shard", f"{k}/3",
             "--run-id", "night", "--out", tmp_path / f"host{k}", "--max-time-s", "0.05", "--profile-iters", "0"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    shared = tmp_path / "shared"
    shared.mkdir()
    for k in (1, 2, 3):  # what a merge step does: gather each job's run directory on shared storage
        (shard_dir,) = (tmp_path / f"host{k}").iterdir()
        shutil.copytree(shard_dir, shared / shard_dir.name)

    frame = load_runs([shared])
    expected = {c.id for c in load_named("smoke").cases if re.search(FILTER, c.id)}
    assert list(frame.manifests) == ["night"]
    assert sorted(frame.df["case_id"]) == sorted(expected)  # each case once: no gap, no duplicate
    assert len({tuple(s) for s in frame.df["shard"]}) == 3  # [K, N] per record

    r = dsabench("compare", "--variants", shared)
    assert r.returncode == 0, r.stderr
    assert "night" in r.stdout
    site = dsabench("dashboard", shared, "--out", tmp_path / "site", "--no-change-points")
    assert site.returncode == 0, site.stderr
    assert "1 run(s)" in site.stdout


def test_work_is_handed_out_longest_first_so_devices_finish_together():
    from dsabench.bench.runner import item_cost, schedule, work_items

    cases = load_named("nightly").cases
    items = schedule(work_items(cases))
    costs = [item_cost(i) for i in items]
    assert costs == sorted(costs, reverse=True)
    ids = lambda its: sorted(tuple(c.id for c, _impl in i) for i in its)  # noqa: E731
    assert ids(items) == ids(work_items(cases))  # nothing lost or repeated


def test_two_workers_take_every_item_once_keep_to_their_configuration_and_finish_a_pass_first():
    from dsabench.bench.runner import WorkQueue, _config, schedule, work_items

    cases = load_named("nightly").cases
    items = [(rep, item) for rep in range(2) for item in schedule(work_items(cases))]
    queue = WorkQueue(items)
    last: dict[str, str | None] = {"gpu0": None, "gpu1": None}
    taken, builds = [], 0
    while True:
        for worker in ("gpu0", "gpu1"):
            other = {c for w, c in last.items() if w != worker and c is not None}
            got = queue.take(last[worker], other)
            if got is None:
                break
            taken.append(got)
            builds += _config(got[1]) != last[worker]  # a worker builds inputs when its configuration changes
            last[worker] = _config(got[1])
        else:
            continue
        break
    assert sorted(map(repr, taken)) == sorted(map(repr, items))  # every item once
    passes = [rep for rep, _ in taken]
    assert passes == sorted(passes)  # no item of pass 2 before pass 1 is handed out
    configs = {_config(item) for _, item in items}
    assert builds <= 2 * len(configs) + 4  # about one input build per configuration per pass
