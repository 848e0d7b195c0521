"""A case that fails is recorded with its status and message, and the run goes on."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsabench.store import rundir as store

REPO = Path(__file__).resolve().parent.parent

HUGE = """
[[scenario]]
name = "too-big"
phase = "decode"
batch = 1
context_len = 16
heads = 2
topk = 8
num_blocks = [262144, 4]   # 10.25 GiB of cache (over the address-space limit below), then one that fits
variant = "patched"
"""


ADDRESS_SPACE = 6 << 30


def _address_space_limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_out_of_memory_is_recorded_as_oom_and_the_next_case_still_runs(tmp_path, backend):
    pytest.importorskip(backend)
    scenario = tmp_path / "huge.toml"
    scenario.write_text(HUGE)
    # The case fits the host on paper (the run's up-front check passes), but the process may map
    # only 6 GiB: the cache allocation really fails, as a device running out of memory does.
    r = subprocess.run([sys.executable, "-m", "dsabench", "run", str(scenario), "--backend", backend, "--out",
                        str(tmp_path), "--run-id", "o", "--max-time-s", "0.05", "--profile-iters", "0"],
                       cwd=REPO, capture_output=True, text=True, timeout=300, preexec_fn=_address_space_limit)
    assert r.returncode == 0, r.stderr
    records, _ = store.read_records(tmp_path / "o")
    status = {rec["params"]["num_blocks"]: rec for rec in records}
    assert status[262144]["status"] == "oom"
    assert "memory" in status[262144]["message"].lower()
    assert status[4]["status"] == "ok"


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@pytest.mark.slow
def test_a_worker_killed_mid_case_is_recorded_crashed_with_the_signal_and_replaced(tmp_path):
    args = [sys.executable, "-m", "dsabench", "run", "smoke", "--filter", r"prefill.*(tensor-contiguous|scalar-view)\.eager",
            "--out", str(tmp_path), "--run-id", "c", "--max-time-s", "5", "--precision", "0.0001", "--profile-iters", "0",
            "--no-interleave"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The worker is the main process's spawned child. Once its hello is in the manifest it waits
    # for a case, using no CPU; once it has used half a second of CPU it is inside the first case
    # (70 ms forwards, 5 s cap, unreachable precision), which is where it is killed.
    manifest = tmp_path / "c" / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (manifest.exists() and json.loads(manifest.read_text()).get("workers")):
        time.sleep(0.1)
    worker = next(p for p in _children(proc.pid)
                  if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="ignore"))
    idle = _cpu_ticks(worker)
    while time.time() < deadline and _cpu_ticks(worker) < idle + os.sysconf("SC_CLK_TCK") // 2:
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    records, _ = store.read_records(tmp_path / "c")
    assert [rec["status"] for rec in records] == ["crashed", "ok"]
    assert "SIGKILL" in records[0]["message"]
    assert records[0]["worker"]["pid"] == worker
    assert records[1]["worker"]["pid"] != worker  # the second case ran in a fresh worker


# A `dsabench run` whose progress callback injects a real fault after the first record: FAULT
# "restart" kills the idle worker and breaks the interpreter its replacement would start
# (PYTHONHOME); "disk" caps the size of files this process may write at what cases.jsonl holds
# now (RLIMIT_FSIZE, SIGXFSZ ignored), so the next append fails in write(2) as on a full disk.
FAULTY_RUN = r"""
import os, signal, sys, time
from pathlib import Path
from dsabench.bench import runner
from dsabench.cli.main import main

fault, run_dir = sys.argv[1], Path(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over the size cap then fails with EFBIG
printer = runner.progress_printer

def with_fault(stream=sys.stderr):
    show = printer(stream)
    def hook(record, done, total, *eta):
        show(record, done, total, *eta)
        if done != 1:
            return
        if fault == "restart":
            pid = record["worker"]["pid"]
            os.kill(pid, 9)
            # dead with all its threads (a zombie whose threads still exit is not reapable yet)
            while (Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
                   or len(os.listdir(f"/proc/{pid}/task")) > 1):
                time.sleep(0.01)
            os.environ["PYTHONHOME"] = "/nonexistent"
        else:
            import resource
            size = (run_dir / "cases.jsonl").stat().st_size
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return hook

runner.progress_printer = with_fault
sys.exit(main(sys.argv[3:]))
"""

THREE_CASES = r"decode\.b1\.c256.*(tensor-contiguous|scalar-view|scalar-contiguous)\.eager"


def _faulty_run(fault: str, tmp_path: Path, run_id: str):
    args = [sys.executable, "-c", FAULTY_RUN, fault, str(tmp_path / run_id), "run", "smoke", "--filter", THREE_CASES,
            "--out", str(tmp_path), "--run-id", run_id, "--max-time-s", "0.05", "--profile-iters", "0",
            "--no-interleave"]
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_a_worker_that_cannot_restart_records_its_case_crashed_stops_with_a_resume_hint_and_retry_failed_finishes():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        r = _faulty_run("restart", tmp_path, "w")
        assert r.returncode == 3, r.stderr
        assert "--backend" not in r.stderr
        assert "could not restart: the worker for the default device died while starting (exit code 1)" in r.stderr
        assert f"dsabench run --resume {tmp_path / 'w'} --retry-failed" in r.stderr
        records, _ = store.read_records(tmp_path / "w")
        assert [rec["status"] for rec in records] == ["ok", "crashed"]
        assert records[1]["message"].startswith("not measured: could not restart: the worker")

        again = subprocess.run([sys.executable, "-m", "dsabench", "run", "--resume", str(tmp_path / "w"),
                                "--retry-failed"], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        after, _ = store.read_records(tmp_path / "w")
        assert [rec["status"] for rec in after] == ["ok", "ok", "ok"]
        assert len({rec["case_id"] for rec in after}) == 3
        (retried,) = (tmp_path / "w" / "cases.retried.jsonl").read_text().splitlines()
        assert json.loads(retried)["case_id"] == records[1]["case_id"]


def test_a_record_that_cannot_be_written_names_the_file_keeps_the_finished_cases_and_resume_finishes_it(tmp_path):
    r = _faulty_run("disk", tmp_path, "f")
    assert r.returncode == 3, r.stderr
    cases = tmp_path / "f" / "cases.jsonl"
    assert f"could not write {cases}: File too large" in r.stderr
    assert "--backend" not in r.stderr and "Traceback" not in r.stderr
    assert f"dsabench run --resume {tmp_path / 'f'}" in r.stderr
    kept, warnings = store.read_records(tmp_path / "f")
    assert len(kept) == 1 and not warnings  # the finished case, and no partial line after it
    again = subprocess.run([sys.executable, "-m", "dsabench", "run", "--resume", str(tmp_path / "f")],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    after, _ = store.read_records(tmp_path / "f")
    assert [rec["case_id"] for rec in after][:1] == [kept[0]["case_id"]] and len(after) == 3


@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_a_failed_capture_keeps_its_worker_when_the_device_probe_finds_it_working(backend):
    from dsabench.bench.backends.registry import get_backend
    from dsabench.bench.worker import Outcome, _fail
    from dsabench.errors import CaptureFailed

    out = Outcome()
    _fail(out, get_backend(backend), CaptureFailed("RuntimeError: a host copy during capture"))
    assert (out.status, out.recycle, out.unhealthy) == ("capture_failed", False, "")


def test_a_backend_without_a_device_probe_is_replaced_after_a_failed_capture():
    from dsabench.bench.backends.base import Backend
    from dsabench.bench.worker import Outcome, _fail
    from dsabench.errors import CaptureFailed

    class NoProbe(Backend):  # the base class's own answer, with nothing else of a backend needed
        name = "noprobe"
        availability = prepare = forward = layout_copy_bytes = output_bytes = output_numpy = None
        cache_numpy = synchronize = clock = capture = flush_l2 = memory = record_trace = None
        marker = device_identity = None

        def is_out_of_memory(self, exc):
            return False

    out = Outcome()
    _fail(out, NoProbe(), CaptureFailed("x"))
    assert out.recycle and "no device health probe" in out.unhealthy


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_a_refused_host_copy_fails_capture_and_the_same_worker_measures_the_next_graph_case(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dsabench", "run", "smoke", "--backend", "torch", "--filter",
                        r"decode\.b4\.c256.*\.graph$", "--out", str(tmp_path), "--run-id", "g", "--max-time-s", "0.2",
                        "--profile-iters", "0", "--check"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    records, _ = store.read_records(tmp_path / "g")
    by_scale = {}
    for rec in records:
        by_scale.setdefault(rec["params"]["scale_mode"], set()).add(rec["status"])
    assert by_scale == {"tensor": {"capture_failed"}, "scalar": {"ok"}, "none": {"ok"}}
    failed = [rec for rec in records if rec["status"] == "capture_failed"]
    assert all(rec["worker"]["unhealthy"] == "" and not rec["worker"]["recycle"] for rec in failed)
    assert len({rec["worker"]["pid"] for rec in records}) == 1  # no restart after a failed capture
    assert len({rec["output"]["digest"] for rec in records if rec["status"] == "ok"}) == 1


def test_the_health_probe_accepts_only_the_exact_sum():
    from dsabench.bench.backends.base import PROBE_N, probe_answer

    assert probe_answer(PROBE_N * (PROBE_N - 1) // 2) == ""
    assert "gave 0" in probe_answer(0)
