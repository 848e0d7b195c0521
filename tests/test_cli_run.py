"""`dsabench run` end to end on the CPU with the real Paddle backend, and its refusals of bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsabench.store import rundir as store

from cli_process import REPO, dsabench

SMALL = "decode.b1.c256.*(tensor-contiguous|scalar-view)"


def wait_for_records(cases: Path, n: int, timeout_s: float = 120) -> None:
    """Block until a running run has appended `n` records (or the timeout passes)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and (not cases.exists() or len(cases.read_text().splitlines()) < n):
        time.sleep(0.05)


def test_run_writes_manifest_and_one_record_per_case_with_raw_samples(tmp_path):
    r = dsabench("run", "smoke", "--filter", SMALL, "--out", tmp_path, "--run-id", "r1", "--max-time-s", "0.05",
                 "--profile-iters", "2", "--check")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "r1"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["schema"] == store.SCHEMA_VERSION
    assert manifest["backend"] == "paddle" and manifest["preset"] == "smoke"
    assert len(manifest["scenario_sha256"]) == 64
    assert manifest["workers"][0]["device"]["kind"] == "cpu"
    # the protocol is the one for the device the worker reported, with the flags on top
    from dataclasses import asdict

    from dsabench.bench.protocol import protocol_for

    assert manifest["protocol"] == manifest["workers"][0]["protocol"] == asdict(protocol_for(False, max_time_s=0.05))
    records, warnings = store.read_records(run)
    assert not warnings
    by_status = {}
    for rec in records:
        by_status.setdefault(rec["status"], []).append(rec)
    ok = by_status["ok"]
    assert len(ok) == 2 and all(len(rec["timing"]["samples_ms"]) >= 5 for rec in ok)
    assert all(rec["timing"]["clock"] == "host" for rec in ok)
    # the eager variants of one case are timed in the same worker, interleaved in rounds
    assert all("interleaved with 1 other variant" in rec["timing"]["stop_reason"] for rec in ok)
    assert len({rec["worker"]["pid"] for rec in ok}) == 1
    assert all(set(rec["phases_ms"]) >= {"scale", "slot_mapping", "write_cache", "layout", "decode"} for rec in ok)
    assert all((run / rec["trace"]["file"]).exists() for rec in ok)
    assert all(rec["output"]["oracle_rel_error"] <= rec["output"]["oracle_bound"] for rec in ok)
    assert {rec["message"][:40] for rec in by_status["unsupported"]} == {"graph=on: CUDA Graph needs a CUDA device"}
    words = " ".join(r.stdout.split())  # the summary wraps its notes at 120 columns
    assert "patched vs baseline" in words and "all identical" in words


def test_graph_cases_on_a_cpu_are_recorded_unsupported_with_the_reason(tmp_path):
    r = dsabench("run", "smoke", "--filter", r"decode.b1.c256.*scalar-view\.graph", "--out", tmp_path, "--run-id", "g",
                 "--profile-iters", "0")
    assert r.returncode == 0, r.stderr
    (rec,), _ = store.read_records(tmp_path / "g")
    assert rec["status"] == "unsupported" and "CUDA Graph" in rec["message"]


def test_view_on_a_two_head_cache_is_recorded_invalid_and_the_baseline_still_runs(tmp_path):
    r = dsabench("run", "smoke", "--filter", r"\.ch2\.", "--out", tmp_path, "--run-id", "i", "--max-time-s", "0.05",
                 "--profile-iters", "0")
    assert r.returncode == 0, r.stderr
    records, _ = store.read_records(tmp_path / "i")
    status = {rec["params"]["variant"]: rec for rec in records}
    assert status["patched"]["status"] == "invalid" and "dim 1" in status["patched"]["message"]
    assert status["baseline"]["status"] == "ok"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "no-such-preset"], "no-such-preset"),
        (["run", "missing.toml"], "missing.toml"),
        (["run", "smoke", "--shard", "3/2"], "--shard '3/2'"),
        (["run", "smoke", "--devices", "0,0"], "--devices '0,0'"),
        (["run", "smoke", "--backend", "jax"], "--backend"),
        (["run", "smoke", "--precision", "-1"], "--precision '-1'"),
        (["run", "smoke", "--bogus"], "--bogus"),
        (["run", "smoke", "--filter", "("], "--filter '('"),
        (["run", "smoke", "--filter", "matches-nothing"], "no case left"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_it_and_writes_no_run_directory(tmp_path, args, needle):
    r = dsabench(*args, "--out", tmp_path / "out")
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip() and "warn" not in line.lower()]
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_malformed_scenario_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[scenario]]\nname = 'x'\nbatch = = 1\nseed = 0\n")
    r = dsabench("run", bad, "--out", tmp_path / "out")
    assert r.returncode == 2 and "bad.toml" in r.stderr and "line" in r.stderr


def test_a_killed_run_keeps_finished_cases_and_resume_finishes_it_without_redoing_them(tmp_path):
    args = [sys.executable, "-m", "dsabench", "run", "smoke", "--filter", r"decode\.b[14]\.c256.*eager",
            "--out", str(tmp_path), "--run-id", "k", "--max-time-s", "0.05", "--profile-iters", "0"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    cases = tmp_path / "k" / "cases.jsonl"
    wait_for_records(cases, 3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first, _ = store.read_records(tmp_path / "k")
    assert 3 <= len(first) < 12
    r = dsabench("run", "--resume", tmp_path / "k")
    assert r.returncode == 0, r.stderr
    after, _ = store.read_records(tmp_path / "k")
    ids = [rec["case_id"] for rec in after]
    assert len(ids) == len(set(ids)) == 12
    assert ids[: len(first)] == [rec["case_id"] for rec in first]
    # the counts are of the whole file, the earlier invocation's records too
    assert f"12 records in {cases} (12 ok); {12 - len(first)} written now, {len(first)} by an earlier" in r.stdout


def test_shards_partition_the_cases_deterministically():
    from dsabench.bench.schedule import select_shard
    from dsabench.workload.scenarios import load_named

    cases = load_named("smoke").cases
    parts = [select_shard(cases, k, 3) for k in (1, 2, 3)]
    assert sum(len(p) for p in parts) == len(cases)
    assert set().union(*[{c.id for c in p} for p in parts]) == {c.id for c in cases}
    assert parts == [select_shard(cases, k, 3) for k in (1, 2, 3)]


def test_sigterm_stops_the_run_kills_its_workers_and_keeps_finished_cases(tmp_path):
    args = [sys.executable, "-m", "dsabench", "run", "smoke", "--filter", r"decode\.b[14]\.c256.*eager",
            "--out", str(tmp_path), "--run-id", "t", "--max-time-s", "0.05", "--profile-iters", "0"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cases = tmp_path / "t" / "cases.jsonl"
    wait_for_records(cases, 2)
    workers = _workers_of(proc.pid)
    assert workers
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    records, _ = store.read_records(tmp_path / "t")
    assert len(records) >= 2
    assert [w for w in workers if _alive(w)] == []  # the run killed its own workers before exiting


def test_a_run_stopped_before_its_first_case_finished_says_nothing_was_compared(tmp_path):
    # one long case (70 ms forwards, a 5 s cap, a precision it cannot reach): stopped while in it
    args = [sys.executable, "-m", "dsabench", "run", "smoke", "--filter", r"prefill.*tensor-contiguous\.eager",
            "--out", str(tmp_path), "--run-id", "e", "--max-time-s", "5", "--precision", "0.0001",
            "--profile-iters", "0"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = tmp_path / "e" / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (manifest.exists() and json.loads(manifest.read_text()).get("workers")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert store.read_records(tmp_path / "e")[0] == []
    assert "correctness: nothing to compare: no case finished" in out
    assert "identical" not in out and "reasons below" not in out


def _workers_of(pid: int) -> list[int]:
    """The worker processes a run started: its direct children running multiprocessing's spawn_main."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(c) for c in out.split() if "spawn_main" in _cmdline(int(c))]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="ignore")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running (not a zombie) and still the worker (a reused pid would run something else)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and "spawn_main" in _cmdline(pid)


def test_resume_after_a_truncated_last_line_cuts_it_and_the_run_loads_again(tmp_path):
    r = dsabench("run", "smoke", "--filter", r"decode\.b1\.c256.*(tensor-contiguous|scalar-view)\.eager", "--out",
                 tmp_path, "--run-id", "t", "--max-time-s", "0.05", "--profile-iters", "0", "--no-interleave")
    assert r.returncode == 0, r.stderr
    cases = tmp_path / "t" / "cases.jsonl"
    lines = cases.read_bytes().splitlines(keepends=True)
    cases.write_bytes(lines[0] + lines[1][: len(lines[1]) // 2])  # killed while writing the second record
    records, warnings = store.read_records(tmp_path / "t")
    assert len(records) == 1 and "truncated" in warnings[0]
    r = dsabench("run", "--resume", tmp_path / "t")
    assert r.returncode == 0, r.stderr
    records, warnings = store.read_records(tmp_path / "t")
    assert not warnings and len(records) == 2
