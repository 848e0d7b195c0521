"""One worker per device: the wiring of --devices. (A/A of real timings is `calibrate`'s job, not a test's.)"""

from __future__ import annotations


from dsabench.store import rundir as store

from cli_process import dsabench


def test_devices_start_one_worker_per_device_and_records_name_the_device(tmp_path):
    """cpu:N devices are CPU workers; the wiring (one process per device, cases spread) is what is checked."""
    r = dsabench("run", "smoke", "--filter", r"decode\.b[14]\.c256.*eager", "--devices", "cpu:0,cpu:1", "--out",
                 tmp_path, "--run-id", "d", "--max-time-s", "0.05", "--profile-iters", "0", "--no-interleave")
    assert r.returncode == 0, r.stderr
    manifest = store.read_manifest(tmp_path / "d")
    assert len(manifest["workers"]) == 2
    records, _ = store.read_records(tmp_path / "d")
    assert len(records) == 12
    used = {rec["worker"]["device_env"] for rec in records}
    assert used == {"cpu:0", "cpu:1"}  # both workers took cases
    pids = {rec["worker"]["device_env"]: set() for rec in records}
    for rec in records:
        pids[rec["worker"]["device_env"]].add(rec["worker"]["pid"])
    assert not (pids["cpu:0"] & pids["cpu:1"])  # a process serves one device only


def test_two_devices_with_two_repeats_measure_each_case_in_two_processes_without_a_second_start_up(tmp_path):
    r = dsabench("run", "smoke", "--filter", r"decode\.b[14]\.c256.*(none|scalar)-view\.eager", "--devices",
                 "cpu:0,cpu:1", "--repeats", "2", "--out", tmp_path, "--run-id", "d", "--max-time-s", "0.05",
                 "--profile-iters", "0")
    assert r.returncode == 0, r.stderr
    records, _ = store.read_records(tmp_path / "d")
    pids: dict = {}
    for rec in records:
        pids.setdefault(rec["case_id"], []).append(rec["worker"]["pid"])
    assert len(pids) == 4 and all(len(set(p)) == 2 for p in pids.values())  # two processes per case
    (attempt,) = store.read_manifest(tmp_path / "d")["attempts"]
    assert sorted(s["why"] for s in attempt["worker_starts"]) == ["first", "first"]
    assert len({pid for p in pids.values() for pid in p}) == 2


def test_a_gpu_device_on_a_machine_without_one_is_refused_with_exit_2_and_no_run_directory(tmp_path):
    r = dsabench("run", "smoke", "--filter", r"decode\.b1\.c256.*scalar-view", "--devices", "0", "--out", tmp_path / "o",
                 "--run-id", "g", "--profile-iters", "0")
    assert r.returncode == 2
    assert "device 0" in r.stderr and "gpu" in r.stderr.lower()
    assert not (tmp_path / "o" / "g").exists()


def test_a_gpu_named_by_uuid_or_index_is_identified_without_parsing_the_uuid_as_a_number():
    from dsabench.bench.backends.common import visible_device

    assert visible_device("GPU-8f0e2c1a-1b2c-4d5e-9f00-123456789abc", 0) == (None, "GPU-8f0e2c1a-1b2c-4d5e-9f00-123456789abc")
    assert visible_device("3", 0) == (3, None)
    assert visible_device("1,2", 0) == (1, None)
    assert visible_device(None, 0) == (0, None)
    assert visible_device("", 0) == (0, None)
