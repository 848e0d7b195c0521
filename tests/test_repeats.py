"""run --repeats: each case measured in R worker processes, one pass of fresh processes per repeat,
kept grouped per process on load; calibrate's runs and its report, end to end on the CPU."""

from __future__ import annotations

import json
import math

import pytest

from dsabench.cli.calibrate_verb import plan
from dsabench.store import rundir as store
from dsabench.store.frames import load_runs

from cli_process import dsabench

TWO = r"decode\.b1\.c256.*(none-view|scalar-view)\.eager"


def test_each_repeat_is_its_own_process_pass_and_loads_as_one_case_grouped_per_process(tmp_path):
    r = dsabench("run", "smoke", "--filter", TWO, "--repeats", "3", "--out", tmp_path, "--run-id", "r",
                 "--max-time-s", "0.05", "--profile-iters", "0")
    assert r.returncode == 0, r.stderr
    records, _ = store.read_records(tmp_path / "r")
    assert sorted((rec["case_id"], rec["repeat"]) for rec in records) == sorted(
        (cid, rep) for cid in {rec["case_id"] for rec in records} for rep in range(3))
    pids = {rep: {rec["worker"]["pid"] for rec in records if rec["repeat"] == rep} for rep in range(3)}
    assert all(len(p) == 1 for p in pids.values())  # the variants of a pass share one process...
    assert len(set().union(*pids.values())) == 3  # ...and every pass has a fresh one
    df = load_runs([tmp_path / "r"]).df
    assert len(df) == 2 and all(len(g) == 3 for g in df["process_samples"])
    assert all(len(s) == sum(map(len, g)) for s, g in zip(df["samples_ms"], df["process_samples"]))
    assert store.read_manifest(tmp_path / "r")["options"]["repeats"] == 3
    again = dsabench("run", "--resume", tmp_path / "r")
    assert again.returncode == 0 and "0 of 6 (2 cases x 3 worker processes) to measure" in again.stderr, again.stderr


def test_calibrate_alternates_a_to_a_and_injected_runs():
    assert plan("c", 3, (0.05, 0.015)) == [("c-aa0", 0.0), ("c-inj050", 0.05), ("c-aa1", 0.0), ("c-inj015", 0.015),
                                           ("c-aa2", 0.0)]


@pytest.mark.slow
def test_calibrate_judges_every_pair_reports_the_measured_size_and_marks_its_runs(tmp_path):
    """A real calibration on the CPU, end to end: every (A/A run, injected run) pair is judged and
    counted, and the measured size is reported beside the size asked for. Whether this shared CPU
    lets a pair be called slower is a timing outcome (a host slow mode withholds it), so only the
    counts' shape is checked here; the detection rule itself is specified on seeded data in
    tests/analysis/test_calibrate.py."""
    args = ["calibrate", "smoke", "--filter", r"decode\.b1\.c256.*scalar-view\.eager", "--aa-runs", "2",
            "--inject", "5", "--repeats", "3", "--max-time-s", "0.1", "--threshold", "0.2", "--out", tmp_path,
            "--run-id", "cal"]
    r = dsabench(*args)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "cal"
    data = json.loads((out / "calibration.json").read_text())
    (case,) = data["cases"]
    assert case["aa_pairs"] == 1
    assert case["detected"]["5.0"][1] == 2  # pairs judged: 2 A/A runs x 1 injected run (how many slower: a timing)
    assert math.isfinite(case["measured"]["5.0"]) and case["size_source"]["5.0"] in ("worker", "levels")
    assert (out / "calibration.png").stat().st_size > 0 and "A/A:" in (out / "calibration.txt").read_text()
    manifest = store.read_manifest(out / "cal-inj5000")
    assert manifest["options"]["inject_delay"] == 5 and manifest["options"]["calibration"] == "cal"
    assert store.read_manifest(out / "cal-aa0")["options"]["calibration"] == "cal"
    rec = store.read_records(out / "cal-inj5000")[0][0]
    inject = rec["output"]["inject"]
    assert inject["fraction"] == 5 and inject["delay_ms"] > 0
    # Measured slower by at least its size, by construction: every timed forward busy-waits the delay
    # on the clock the protocol reads, so no sample can be shorter (a slow host only lengthens them).
    assert min(rec["timing"]["samples_ms"]) >= inject["delay_ms"] * (1 - 1e-9)
    refused = dsabench("compare", out / "cal-aa0", out / "cal-inj5000")
    assert refused.returncode == 2 and "injected delay differs" in refused.stderr
    other = dsabench(*[a if a != "5" else "4" for a in args])
    assert other.returncode == 2 and "was begun with other arguments (--inject [5.0] then, [4.0] now)" in other.stderr
    assert other.stderr.count("\n") == 1
    again = dsabench(*args[:-4], "--no-run", "--out", tmp_path, "--run-id", "cal")
    assert again.returncode == 0, again.stderr


def test_only_the_first_pass_traces_and_the_manifest_says_where_each_invocations_wall_time_went(tmp_path):
    one = r"decode\.b1\.c256.*none-view\.eager"
    r = dsabench("run", "smoke", "--filter", one, "--repeats", "2", "--out", tmp_path, "--run-id", "r",
                 "--max-time-s", "0.05", "--profile-iters", "1")
    assert r.returncode == 0, r.stderr
    records, _ = store.read_records(tmp_path / "r")
    assert {rec["repeat"]: bool(rec.get("trace")) for rec in records} == {0: True, 1: False}
    assert store.merge_repeats(records)[0]["trace"]  # the merged case keeps the first pass's trace
    stages = {rec["repeat"]: rec["worker"]["stages_s"] for rec in records}
    assert set(stages[0]) == {"inputs", "check", "timing", "phases", "memory", "trace"}
    assert set(stages[1]) == {"inputs", "check", "timing", "phases", "memory"}
    (attempt,) = store.read_manifest(tmp_path / "r")["attempts"]
    assert [s["why"] for s in attempt["worker_starts"]] == ["first", "new pass"]
    assert attempt["records"] == 2 and attempt["devices"] == [None]
    spent = sum(sum(s.values()) for s in stages.values()) + sum(s["seconds"] for s in attempt["worker_starts"])
    assert 0 < spent <= attempt["wall_s"]
    assert "worker start-ups 2 (1 first, 1 new pass)" in r.stdout and "trace " in r.stdout
    again = dsabench("run", "--resume", tmp_path / "r")
    assert again.returncode == 0
    attempts = store.read_manifest(tmp_path / "r")["attempts"]
    assert len(attempts) == 2 and attempts[1]["records"] == 0 and "2 invocations" in again.stdout


@pytest.mark.slow
def test_calibrate_paired_times_the_mirror_its_twin_and_its_injected_copy_in_each_run_and_judges_them_paired(tmp_path):
    """`calibrate --paired` end to end on the CPU: each run holds the three impls of every case, marked
    as calibrate's, every (mirror, twin) and (mirror, injected) pair of each run is counted, and a
    rerun with the cross-run calibration's arguments is refused. Verdicts over real timings are not
    asserted; the paired rule is specified on seeded runs in tests/analysis/test_calibrate_paired.py."""
    args = ["calibrate", "smoke", "--filter", r"decode\.b1\.c256.*scalar-view\.eager", "--paired", "--aa-runs", "2",
            "--inject", "3", "--repeats", "2", "--max-time-s", "0.1", "--out", tmp_path, "--run-id", "cp"]
    r = dsabench(*args)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "cp"
    data = json.loads((out / "calibration.json").read_text())
    assert data["paired"] is True
    (case,) = data["cases"]
    assert case["aa_pairs"] == 2 and case["run_to_run"] is None  # one A/A pair a run; no run term
    assert case["detected"]["3.0"][1] == 2 and case["size_source"]["3.0"] == "worker"
    for run in ("cp-paired0", "cp-paired1"):
        manifest = store.read_manifest(out / run)
        assert [i["label"] for i in manifest["impls"]] == ["mirror", "mirror+inject=0", "mirror+inject=3"]
        assert manifest["options"]["calibration"] == "cp" and manifest["options"]["inject_delay"] == 0
        assert sorted(rec["impl"] for rec in store.read_records(out / run)[0]) == [
            "mirror", "mirror", "mirror+inject=0", "mirror+inject=0", "mirror+inject=3", "mirror+inject=3"]
    assert "paired: the mirror against its twin" in (out / "calibration.txt").read_text()
    other = dsabench(*[a for a in args if a != "--paired"])
    assert other.returncode == 2 and "--paired True then, False now" in other.stderr
