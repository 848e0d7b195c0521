"""--pin probe: a worker's timing thread on a probed core of its own, the runner on another, and what
it found in the manifest and the records. Real sched_setaffinity and a real Paddle run on this
machine; the topology of a bigger machine is written as the kernel writes it."""

from __future__ import annotations

import os
import threading

import pytest

from dsabench.bench import pin
from dsabench.errors import InputError
from dsabench.store import rundir as store

from cli_process import dsabench


def _topology(tmp_path, siblings: dict[int, str]):
    for cpu, text in siblings.items():
        d = tmp_path / f"cpu{cpu}" / "topology"
        d.mkdir(parents=True)
        (d / "thread_siblings_list").write_text(text + "\n")
    return tmp_path


def test_cpu_lists_are_read_as_the_kernel_writes_them():
    assert pin.parse_cpu_list("0-3,8,10-11") == {0, 1, 2, 3, 8, 10, 11}
    assert pin.parse_cpu_list("5\n") == {5}


def test_the_runner_and_each_worker_get_disjoint_physical_cores(tmp_path):
    # 8 CPUs, SMT pairs (0,4) (1,5) (2,6) (3,7): the runner takes a whole core, no worker shares one
    topo = _topology(tmp_path, {c: f"{c % 4},{c % 4 + 4}" for c in range(8)})
    runner, workers = pin.plan(set(range(8)), 2, topo)
    assert runner == (0, 4)
    assert workers == [(1, 5, 3, 7), (2, 6)]
    owned = [set(runner)] + [set(w) for w in workers]
    assert sum(len(o) for o in owned) == len(set().union(*owned)) == 8


def test_without_enough_physical_cores_single_cpus_are_shared_out(tmp_path):
    topo = _topology(tmp_path, {0: "0,1", 1: "0,1", 2: "2,3", 3: "2,3"})
    runner, workers = pin.plan({0, 1, 2, 3}, 2, topo)
    assert runner == (0,) and workers == [(1, 3), (2,)]


def test_pinning_more_workers_than_cores_allow_is_refused_naming_the_count(tmp_path):
    with pytest.raises(InputError, match=r"--pin probe: 2 CPU\(s\) allowed \(\[0, 1\]\) for 2 worker\(s\); expected at least 3"):
        pin.plan({0, 1}, 2, tmp_path)


def test_auto_pins_only_where_every_worker_runs_on_a_gpu_and_each_has_a_choice_of_cores():
    assert pin.auto_mode([True], 16)[0] == "probe"
    assert pin.auto_mode([True, True], 5)[0] == "probe"  # two workers: 2 CPUs each and one for the runner
    mode, why = pin.auto_mode([True, True], 4)
    assert mode == "off" and "4 CPU(s) for 2 GPU worker(s); probing needs 5" in why
    assert pin.auto_mode([False], 128) == ("off", "not every worker runs on a GPU")
    assert pin.auto_mode([True, False], 128)[0] == "off"  # a CPU worker would time its forward on one core
    assert pin.auto_mode([], 128)[0] == "off"


def test_a_run_by_default_records_what_auto_resolved_to_and_never_pins_a_cpu_worker(tmp_path):
    from dsabench.bench.env import gpus
    from dsabench.cli.run_verb import _auto_pin

    assert _auto_pin(("cpu:0",)) == "off"
    assert _auto_pin(None) == pin.auto_mode([bool(gpus())], len(os.sched_getaffinity(0)))[0]
    r = dsabench("run", "smoke", "--filter", r"^prefill.*scalar-view\.eager$", "--devices", "cpu:0", "--out", tmp_path,
                 "--run-id", "d", "--max-time-s", "0.05", "--profile-iters", "0")
    assert r.returncode == 0, r.stderr
    manifest = store.read_manifest(tmp_path / "d")
    assert manifest["options"]["pin"] == "off" and manifest["workers"][0]["pin"] is None


def test_a_pinned_thread_runs_on_the_fastest_probed_core_and_its_other_threads_elsewhere():
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("needs 2 CPUs")
    cpus = tuple(sorted(allowed))[:2]
    found: dict = {}

    def worker_thread():  # a thread of its own, so the test process keeps its CPUs
        helper_started = threading.Event()
        stop = threading.Event()

        def helper():
            helper_started.set()
            stop.wait(10)

        h = threading.Thread(target=helper)
        h.start()
        helper_started.wait()
        try:
            p = pin.Pinner(cpus)
            found["info"] = p.repin()
            found["mine"] = os.sched_getaffinity(0)
            found["helper"] = os.sched_getaffinity(h.native_id)
        finally:
            stop.set()
            h.join()

    t = threading.Thread(target=worker_thread)
    t.start()
    t.join()
    pin.set_process_affinity(allowed)  # repin moved every other thread of this process (as in a worker)
    info = found["info"]
    assert set(info["probe_us"]) == {str(c) for c in cpus}
    assert info["core"] == min(cpus, key=lambda c: info["probe_us"][str(c)])
    assert found["mine"] == {info["core"]}
    assert found["helper"] == set(cpus) - {info["core"]}


def test_a_pinned_run_records_each_workers_core_and_probes_in_the_manifest_and_records(tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs: one for the runner, one for the worker")
    r = dsabench("run", "smoke", "--filter", r"^prefill.*eager", "--pin", "probe", "--out", tmp_path, "--run-id", "p",
                 "--max-time-s", "0.05", "--profile-iters", "0")
    assert r.returncode == 0, r.stderr
    manifest = store.read_manifest(tmp_path / "p")
    assert manifest["options"]["pin"] == "probe"
    (worker,) = manifest["workers"]
    assert worker["pin"]["core"] in worker["pin"]["cpus"]
    assert worker["protocol"]["min_rounds"] == 3
    records, _ = store.read_records(tmp_path / "p")
    assert records and all(rec["worker"]["pin"]["core"] in worker["pin"]["cpus"] for rec in records)
    assert all(c["cpu"] == rec["worker"]["pin"]["core"] for rec in records for c in rec["timing"]["chunks"])


def test_pinning_two_workers_on_a_machine_with_too_few_cpus_is_refused_with_exit_2(tmp_path):
    n = len(os.sched_getaffinity(0))
    devices = ",".join(f"cpu:{i}" for i in range(n))
    r = dsabench("run", "smoke", "--filter", r"^prefill", "--pin", "probe", "--devices", devices, "--out",
                 tmp_path / "o", "--run-id", "x", "--profile-iters", "0")
    assert r.returncode == 2
    assert f"--pin probe: {n} CPU(s) allowed" in r.stderr and "or --pin off" in r.stderr
    assert not (tmp_path / "o" / "x").exists()
