"""Every refusal is one line, exit 2, and leaves the disk as it found it: bad flags at parse time
(empty, digits other than 0-9, out of range), flags that --resume would ignore, a run into a
directory that holds a run, and a run or a resume whose workers cannot start (a framework that
fails to import: the refusal comes after worker start-up)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from cli_process import REPO, dsabench
from dsabench.cli.main import build_parser
from test_store_writes import _limit_file_size  # a file size limit: writes past it fail as on a full disk

SMALL = "decode.b1.c256.*(tensor-contiguous|scalar-view)"


def snapshot(root: Path) -> dict:
    """Every path under root with its kind, size, mtime and (for files) bytes: the disk as found."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                         p.read_bytes() if p.is_file() and not p.is_symlink() else None)
    return out


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real CPU run of two cases."""
    home = tmp_path_factory.mktemp("home")
    r = dsabench("run", "smoke", "--filter", SMALL, "--out", home / "out", "--run-id", "r", "--max-time-s", "0.05",
                 "--profile-iters", "0")  # fmt: skip
    assert r.returncode == 0, r.stderr
    return home / "out" / "r"


@pytest.fixture
def broken_framework(tmp_path) -> dict:
    """An environment whose paddle and torch fail to import, in the CLI and in every worker it starts."""
    site = tmp_path / "broken-site"
    for name in ("paddle", "torch"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text(f"raise ImportError('{name} is broken in this environment')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO / "suite")])}


# ------------------------------------------------------------------------------- parse time


@pytest.mark.parametrize("argv, said", [
    (["run", "--out", ""], "--out '': expected a non-empty value"),
    (["run", ""], "scenarios '': expected a non-empty value"),
    (["run", "--resume", " "], "--resume ' ': expected a non-empty value"),
    (["compare", "", "x"], "BASE '': expected a non-empty value"),
    (["dashboard", "x", "--out", ""], "--out '': expected a non-empty value"),
    (["run", "--shard", "١/٢"], "--shard '١/٢': expected the digits 0-9"),
    (["run", "--repeats", "٣"], "--repeats '٣': expected the digits 0-9"),
    (["run", "--max-time-s", "１"], "--max-time-s '１': expected the digits 0-9"),
    (["compare", "a", "b", "--threshold", "٠.٠٣"], "--threshold '٠.٠٣': expected the digits 0-9"),
    (["run", "--devices", "٠"], "--devices '٠': expected the digits 0-9"),
    (["run", "--case-timeout-s", "1e10"], "--case-timeout-s '1e10': expected a number > 0 and <= 604800 (a week)"),
    (["run", "--max-time-s", "1e300"], "--max-time-s '1e300': expected a number > 0 and <= 604800"),
    (["run", "--shard", "1/99999999"], "--shard '1/99999999': expected K/N"),
])
def test_an_empty_non_ascii_or_out_of_range_value_is_refused_at_parse_time_naming_the_flag(argv, said, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert said in one_line(capsys.readouterr().err)


def test_the_largest_case_timeout_passes():
    assert build_parser().parse_args(["run", "--case-timeout-s", "604800"]).case_timeout_s == 604800


# ------------------------------------------------------------------------------- --resume


def test_resume_refuses_every_flag_the_run_fixes_in_one_line_and_changes_nothing(finished_run):
    before = snapshot(finished_run)
    r = dsabench("run", "pr", "--resume", finished_run, "--backend", "torch", "--filter", "x", "--repeats", "2",
                 "--check", "--kernel", "reference", "--out", "elsewhere", "--pin", "off", "--profile-iters", "5")
    assert r.returncode == 2
    line = one_line(r.stderr)
    for flag in ("SCENARIOS", "--out", "--backend", "--check", "--filter", "--profile-iters", "--pin", "--repeats",
                 "--kernel"):
        assert flag in line, line
    assert "cannot be given with --resume" in line and "manifest.json" in line
    assert snapshot(finished_run) == before


def test_resume_takes_the_flags_of_this_invocation_only(finished_run):
    r = dsabench("run", "--resume", finished_run, "--case-timeout-s", "600")
    assert r.returncode == 0, r.stderr  # nothing left to measure; the flag is this invocation's


def test_a_run_into_a_directory_that_holds_a_run_leaves_it_and_its_lock_as_they_were(finished_run):
    (finished_run / ".lock").write_text("4242\n")  # as the last writer left it
    before = snapshot(finished_run)
    r = dsabench("run", "smoke", "--filter", SMALL, "--out", finished_run.parent, "--run-id", finished_run.name,
                 "--profile-iters", "0")
    assert r.returncode == 2
    assert "already holds a run" in one_line(r.stderr)
    assert snapshot(finished_run) == before


def test_a_refused_resume_leaves_the_lock_file_as_it_was(finished_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(finished_run, run)
    (run / ".lock").write_text("4242\n")
    doc = json.loads((run / "manifest.json").read_text())
    doc["scenario_sha256"] = "0" * 64  # the scenario file changed since the run began
    (run / "manifest.json").write_text(json.dumps(doc))
    before = snapshot(run)
    r = dsabench("run", "--resume", run)
    assert r.returncode == 2 and "changed since the run began" in one_line(r.stderr)
    assert snapshot(run) == before


# ------------------------------------------------------------------------------- after worker start-up


def test_a_run_whose_workers_cannot_start_leaves_no_directory_behind(broken_framework, tmp_path):
    before = snapshot(tmp_path)
    r = dsabench("run", "smoke", "--filter", SMALL, "--out", tmp_path / "new" / "runs", "--run-id", "x",
                 "--profile-iters", "0", env=broken_framework)
    assert r.returncode == 2
    assert "paddle is broken in this environment" in r.stderr.strip().splitlines()[-1]  # under the run's first line
    assert snapshot(tmp_path) == before  # neither the run nor the --out directories made for it


def test_a_resume_whose_workers_cannot_start_leaves_the_run_as_it_was(finished_run, broken_framework, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "logs", ignore_errors=True)
    lines = (run / "cases.jsonl").read_text().splitlines()
    crashed = json.loads(lines[-1])
    crashed.update(status="crashed", timing=None, message="worker exited with signal 9 (SIGKILL)")
    (run / "cases.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(crashed)]) + "\n")
    before = snapshot(run)
    r = dsabench("run", "--resume", run, "--retry-failed", env=broken_framework)
    assert r.returncode == 2
    assert "paddle is broken in this environment" in r.stderr.strip().splitlines()[-1]
    assert snapshot(run) == before  # the crashed record stays, no worker log, the lock file untouched


# ------------------------------------------------------------------------------- dashboard


def test_a_dashboard_that_cannot_be_written_whole_leaves_the_earlier_site_and_no_partial_one(tmp_path):
    results = REPO / "results" / "h100-2026-11-25" / "smoke-torch-h100"
    site = tmp_path / "site"
    assert dsabench("dashboard", results, "--out", site, "--no-change-points").returncode == 0
    before = snapshot(tmp_path)
    r = dsabench("dashboard", results, "--out", site, "--no-change-points", preexec_fn=_limit_file_size(20_000))
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert f"--out {site}: could not write the site" in line and "is as it was" in line
    assert snapshot(tmp_path) == before  # the earlier build whole, no '.site.building-*' beside it


# ------------------------------------------------------------------------------- scenarios show


SCENARIO = """[preset]
impl = {impl}
[[scenario]]
name = "s"
batch = 1
context_len = 256
num_blocks = 64
heads = 16
topk = 64
variant = "baseline"
"""


@pytest.mark.parametrize("impl", ['["mirror", "mirror"]', '"fastdeploy:/nonexistent"', '"fast:deploy"',
                                  '"fastdeploy:x@"', '"mirror"'])
def test_scenarios_show_refuses_exactly_the_files_run_refuses_with_the_same_line(impl, tmp_path, capsys):
    from dsabench.cli.main import main

    path = tmp_path / "t.toml"
    path.write_text(SCENARIO.format(impl=impl))
    shown = main(["scenarios", "show", str(path)])
    said_show = capsys.readouterr().err.strip().splitlines()
    ran = main(["run", str(path), "--out", str(tmp_path / "out"), "--filter", "nothing-matches-this"])
    said_run = capsys.readouterr().err.strip().splitlines()
    assert ran == 2 and not (tmp_path / "out").exists()
    if impl == '"mirror"':  # a good file: shown, and run goes on to its next check (no case left after --filter)
        assert shown == 0 and "no case left after --filter" in said_run[-1]
    else:
        assert shown == 2 and said_show[-1] == said_run[-1], (said_show, said_run)
