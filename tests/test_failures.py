"""A case that fails is recorded with its status and message, and the run goes on."""

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

REPO = Path(__file__).resolve().parent.parent

HUGE = """
[[scenario]]
name = "too-big"
phase = "decode"
batch = 1
context_len = 16
heads = 2
topk = 8
num_blocks = [67108864, 4]   # 2.8 TB of cache, then one that fits
variant = "patched"
"""


@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_out_of_memory_is_recorded_as_oom_and_the_next_case_still_runs(tmp_path, backend):
    pytest.importorskip(backend)
    scenario = tmp_path / "huge.toml"
    scenario.write_text(HUGE)
    r = subprocess.run([sys.executable, "-m", "dsabench", "run", str(scenario), "--backend", backend, "--out",
                        str(tmp_path), "--run-id", "o", "--max-time-s", "0.05", "--profile-iters", "0"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    records, _ = store.read_records(tmp_path / "o")
    status = {rec["params"]["num_blocks"]: rec for rec in records}
    assert status[67108864]["status"] == "oom"
    assert "memory" in status[67108864]["message"].lower()
    assert status[4]["status"] == "ok"


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_a_worker_killed_mid_case_is_recorded_crashed_with_the_signal_and_replaced(tmp_path):
    args = [sys.executable, "-m", "dsabench", "run", "smoke", "--filter", r"prefill.*(tensor-contiguous|scalar-view)\.eager",
            "--out", str(tmp_path), "--run-id", "c", "--max-time-s", "5", "--precision", "0.0001", "--profile-iters", "0",
            "--no-interleave"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The worker is the main process's spawned child; once its hello is in the manifest it has
    # started the backend, and the first case (70 ms forwards, 5 s cap, unreachable precision)
    # is in its timing loop a moment later.
    manifest = tmp_path / "c" / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (manifest.exists() and json.loads(manifest.read_text()).get("workers")):
        time.sleep(0.1)
    worker = next(p for p in _children(proc.pid)
                  if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="ignore"))
    time.sleep(1.5)
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    records, _ = store.read_records(tmp_path / "c")
    assert [rec["status"] for rec in records] == ["crashed", "ok"]
    assert "SIGKILL" in records[0]["message"]
    assert records[0]["worker"]["pid"] != records[1]["worker"]["pid"] or records[0]["worker"].get("pid") is None
