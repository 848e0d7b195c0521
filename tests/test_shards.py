"""A nightly spread over hosts: each shard is its own process with its own output directory,
as a CI matrix job would be; the directories, gathered in one place, load as one run."""

from __future__ import annotations

import re
from dataclasses import dataclass
import shutil
import subprocess
import sys

import pytest

from dsabench.store.frames import load_runs
from dsabench.workload.scenarios import load_named

from cli_process import REPO, dsabench

FILTER = r"(tensor-contiguous|scalar-view)\.eager$"


@pytest.mark.slow
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
    from dsabench.bench.schedule import item_cost, schedule, work_items

    cases = load_named("nightly").cases
    items = schedule(work_items(cases))
    costs = [item_cost(i) for i in items]
    assert costs == sorted(costs, reverse=True)
    ids = lambda its: sorted(tuple(c.id for c, *_ in i) for i in its)  # noqa: E731
    assert ids(items) == ids(work_items(cases))  # nothing lost or repeated


@dataclass
class Handout:
    """What devices taking from one WorkQueue in simulated time got (each item takes its item_cost)."""

    processes: list  # per worker process, the (repeat, item) it measured, in order
    device_of: list  # the device of each process
    restarts: int  # fresh processes started after each device's first
    builds: int  # input builds: a worker builds when its configuration changes
    finish: dict  # device -> when it took its last item's end

    @property
    def taken(self) -> list:
        return [got for p in self.processes for got in p]


def _hand_out(items, devices: int, start: float = 10.0) -> Handout:
    from dsabench.bench.schedule import RESTART, WAIT, WorkQueue, config_of, item_cost

    queue = WorkQueue(items)
    devs = [f"gpu{i}" for i in range(devices)]
    now = dict.fromkeys(devs, 0.0)
    last: dict = dict.fromkeys(devs)
    running: dict = {}  # device -> (end, item)
    out = Handout([], [], 0, 0, {})
    current = {}
    for d in devs:
        queue.join(d)
        current[d] = len(out.processes)
        out.processes.append([])
        out.device_of.append(d)
    active = set(devs)
    for _ in range(100 * len(items) + 100):  # every device waiting forever is a failure, not a hang
        if not active:
            break
        d = min(active, key=lambda x: (now[x], x))
        for other, (end, item) in list(running.items()):
            if end <= now[d]:
                queue.finished(item, item_cost(item))
                del running[other]
        busy = {config_of(i) for o, (_, i) in running.items() if o != d}
        got = queue.take(d, last[d], busy, start_s=start)
        if got is None:
            active.discard(d)
            queue.leave(d)
            out.finish[d] = now[d]
        elif got == WAIT:
            later = [now[o] for o in active if now[o] > now[d]]
            now[d] = min(later) if later else now[d] + 1.0
        elif got == RESTART:
            queue.join(d)
            current[d] = len(out.processes)
            out.processes.append([])
            out.device_of.append(d)
            out.restarts += 1
            now[d] += start
        else:
            out.processes[current[d]].append(got)
            out.builds += config_of(got[1]) != last[d]
            last[d] = config_of(got[1])
            running[d] = (now[d] + item_cost(got[1]), got[1])
            now[d] += item_cost(got[1])
    assert not active, f"the hand-out did not finish: {sorted(active)} still waiting"
    return out


def _nightly_items(repeats: int):
    from dsabench.bench.schedule import schedule, work_items

    return [(rep, item) for rep in range(repeats) for item in schedule(work_items(load_named("nightly").cases))]


def test_no_worker_process_measures_a_case_twice_and_every_item_is_handed_out_once():
    for devices, repeats in ((1, 2), (2, 2), (2, 3), (3, 2), (3, 5)):
        items = _nightly_items(repeats)
        got = _hand_out(items, devices)
        assert sorted(map(repr, got.taken)) == sorted(map(repr, items)), (devices, repeats)
        for p in got.processes:
            ids = [c.id for _, item in p for c, *_ in item]
            assert len(ids) == len(set(ids)), (devices, repeats)


def test_one_device_runs_each_repeat_in_its_own_pass_of_a_fresh_process():
    got = _hand_out(_nightly_items(2), 1)
    assert got.restarts == 1
    assert [{rep for rep, _ in p} for p in got.processes] == [{0}, {1}]


def test_two_devices_with_two_repeats_keep_one_process_each_and_about_one_input_build_per_configuration_each():
    from dsabench.bench.schedule import config_of

    items = _nightly_items(2)
    got = _hand_out(items, 2)
    assert got.restarts == 0  # each device measures the repeat of the cases the other measured
    assert got.builds <= 2 * len({config_of(item) for _, item in items}) + 4
    for p in got.processes:
        reps = [rep for rep, _ in p]
        assert reps == sorted(reps)  # earlier repeats first


def test_more_repeats_than_devices_start_fresh_processes_and_keep_both_devices_busy_to_the_end():
    from dsabench.bench.schedule import item_cost

    items = _nightly_items(3)
    got = _hand_out(items, 2)
    assert got.restarts >= 1  # a third repeat needs a third process
    total = sum(item_cost(i) for _, i in items)
    ends = sorted(got.finish.values())
    assert ends[-1] - ends[0] < 0.05 * total  # neither device waits out the other's share


def test_a_group_whose_parts_each_device_measured_is_not_left_waiting_forever():
    """What a resume of hand-edited records can leave: each of three processes measured one variant
    of a group, and the group's next repeat needs all three; a device must restart, not wait."""
    from dsabench.bench.schedule import planned, schedule, work_items

    group = next(i for i in schedule(work_items(load_named("smoke").cases)) if len(i) >= 3)
    a, b, c = planned(group)[:3]
    items = [(0, (a,)), (1, (b,)), (2, (c,)), (3, (a, b, c))]
    got = _hand_out(items, 3, start=1e9)  # a start-up dearer than any wait: only the count rule decides
    assert sorted(map(repr, got.taken)) == sorted(map(repr, items)) and got.restarts >= 1
