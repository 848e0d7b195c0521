"""`dsabench bisect` end to end on the CPU with real Paddle: a FastDeploy history of twelve walked
commits (tests/bisect_history.py) with a planted slowdown, a faster commit, a commit that crashes
and two that do not load. Outcomes are asserted, never timings: the planted commit copies the
cache four times where GOOD copies it once, a multiple of GOOD's forward on any CPU.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("paddle")

import bisect_history as hist  # noqa: E402
import cli_process  # noqa: E402

from dsabench.analysis.compare_impls import compare_impls  # noqa: E402
from dsabench.bench.impls.fastdeploy import history  # noqa: E402
from dsabench.cli.main import main  # noqa: E402
from dsabench.errors import InputError  # noqa: E402
from dsabench.store.frames import load_runs  # noqa: E402

# One decode case whose cache (128 blocks, 5.4 MB) is copied by GOOD's layout line.
SCENARIO = """
[preset]
description = "bisect test: one decode case whose cache copy dominates the forward on a CPU"
[[scenario]]
name = "decode-copy"
phase = "decode"
batch = 1
context_len = 64
num_blocks = 128
block_size = 64
heads = 16
topk = 64
variant = "baseline"
"""
# A band of +-25%: the planted changes are several-fold, identical code stays well inside it.
FAST = ("--max-time-s", "0.2", "--threshold", "0.25")


@pytest.fixture(scope="module")
def fd(tmp_path_factory):
    """(repository, SHAs of the walk's commits 0..12, scenario file, worktree cache)."""
    where = tmp_path_factory.mktemp("bisect")
    repo, shas = hist.build(where)
    scenario = where / "one.toml"
    scenario.write_text(SCENARIO)
    return repo, shas, scenario, where / "cache"


def bisect(fd, *args):
    repo, _, _, cache = fd
    return cli_process.dsabench("bisect", *args, timeout=900, env={**os.environ, "XDG_CACHE_HOME": str(cache)})


def _state(out: Path) -> dict:
    return json.loads((out / "state.json").read_text())


@pytest.fixture(scope="module")
def found(fd, tmp_path_factory):
    """The whole history bisected in two calls: stopped by --max-steps 2, then resumed."""
    repo, shas, scenario, _ = fd
    out = tmp_path_factory.mktemp("found") / "b"
    first = bisect(fd, repo, shas[0], shas[-1], scenario, *FAST, "--max-steps", "2", "--out", out)
    second = bisect(fd, "--resume", out, "--max-steps", "10")
    return out, first, second


@pytest.mark.slow
def test_the_bisection_names_the_planted_commit_with_its_subject_and_diff_stat(fd, found):
    _, shas, _, _ = fd
    out, first, second = found
    assert first.returncode == 3, first.stderr
    assert second.returncode == 0, second.stderr
    culprit = shas[hist.CULPRIT]
    assert f"first bad commit: {culprit[:12]} 'Copy the cache before decode'" in second.stdout
    assert "dsa_attention_backend.py | 3 ++-" in second.stdout


@pytest.mark.slow
def test_it_takes_at_most_ceil_log2_n_plus_one_steps_and_skips_the_broken_commits(fd, found):
    _, shas, _, _ = fd
    state = _state(found[0])
    attempts = state["attempts"]
    runs = [a for a in attempts if a["kind"] == "run"]
    n = len(state["plan"]["commits"]) - 1
    assert n == hist.LAST  # the two README-only commits are not walked
    assert len({a["index"] for a in runs}) <= math.ceil(math.log2(n)) + 1
    skipped = {a["index"]: a for a in attempts if a["verdict"] == "skip"}
    assert set(skipped) == {hist.CRASHES, hist.NO_IMPORT, hist.NO_FILE}
    assert skipped[hist.CRASHES]["kind"] == "run" and "kv_signal_mode" in skipped[hist.CRASHES]["reason"]
    assert skipped[hist.NO_IMPORT]["kind"] == "load" and "dsa_utils" in skipped[hist.NO_IMPORT]["reason"]
    assert skipped[hist.NO_FILE]["kind"] == "load" and "is missing" in skipped[hist.NO_FILE]["reason"]
    verdicts = {a["index"]: a["verdict"] for a in runs}
    assert verdicts[hist.CULPRIT] == "bad" and all(v == "good" for i, v in verdicts.items() if i < hist.CULPRIT)
    assert state["pending"] is None


@pytest.mark.slow
def test_the_first_call_stopped_at_max_steps_and_the_resume_went_on_where_it_stopped(found):
    out, first, second = found
    assert "--max-steps 2" in first.stdout and "resume with a larger --max-steps" in first.stdout
    assert "step 1:" not in second.stderr  # no step measured twice
    assert len(list((out / "steps").glob("*/manifest.json"))) == 3


@pytest.mark.slow
def test_every_step_is_a_run_that_compare_impls_judges_again(fd, found):
    repo, shas, _, _ = fd
    out = found[0]
    for a in (a for a in _state(out)["attempts"] if a["kind"] == "run" and a["verdict"] in ("good", "bad")):
        frame = load_runs([out / "steps" / a["run"]])
        table = compare_impls(frame, shas[0][:12], a["sha"][:12], threshold=0.25).table
        assert len(table) == 1
    one = next(a for a in _state(out)["attempts"] if a["kind"] == "run")
    r = cli_process.dsabench("compare", "--impls", out / "steps" / one["run"], "--base-impl", shas[0][:12],
                             "--cand-impl", one["sha"][:12])
    assert r.returncode == 0 and one["sha"][:12] in r.stdout


@pytest.mark.slow
def test_the_markdown_block_table_and_chart_are_written(fd, found):
    _, shas, _, _ = fd
    out = found[0]
    md = (out / "bisect.md").read_text()
    assert md.startswith(f"### dsabench bisect: first bad commit <code>{shas[hist.CULPRIT][:12]}</code>")
    assert "| step | commit |" in md and "![medians along the commits walked](bisect.png)" in md
    assert (out / "bisect.png").stat().st_size > 0 and (out / "bisect.svg").is_file()
    assert (out / "bisect.txt").read_text() in found[2].stdout


@pytest.mark.slow
def test_improvement_finds_the_commit_that_made_the_forward_faster(fd, tmp_path):
    repo, shas, scenario, _ = fd
    r = bisect(fd, repo, shas[1], shas[4], scenario, *FAST, "--improvement", "--out", tmp_path / "b")
    assert r.returncode == 0, r.stderr
    assert f"first faster commit: {shas[hist.FASTER][:12]}" in r.stdout


@pytest.mark.slow
def test_good_and_bad_running_the_same_code_stop_with_one_line(fd, tmp_path):
    # commits 3 and 4 differ by a comment; one process a side is never a verdict, so the check is
    # measured again with two, then the bisection stops (or at once, had they been called the same)
    repo, shas, scenario, _ = fd
    r = bisect(fd, repo, shas[3], shas[4], scenario, *FAST, "--repeats", "1", "--out", tmp_path / "b")
    assert r.returncode == 3 and r.stdout == ""
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("dsabench bisect:")]
    assert len(lines) == 1 and ("do not differ" in lines[0] or "not shown to differ" in lines[0])
    assert "nothing to bisect" in lines[0]
    attempts = _state(tmp_path / "b")["attempts"]
    assert [a["index"] for a in attempts] == [None] * len(attempts) and len(attempts) <= 2


# ---- the walk's commits, without runs --------------------------------------------------------------


def test_only_first_parent_commits_touching_a_loaded_file_are_walked_unless_all_are_asked_for(fd):
    repo, shas, _, _ = fd
    commits = history.first_parent(repo, shas[0], shas[-1], "t")
    assert len(commits) == hist.LAST + 2
    assert [s for s, _ in history.walked(commits, "", False)] == shas[1:]
    assert len(history.walked(commits, "", True)) == hist.LAST + 2
    assert "fastdeploy/platforms/__init__.py" in history.loaded_files()


@pytest.fixture
def merged(tmp_path):
    r"""A history where GOOD came in through a merge's second parent:

        A --- B --- M --- C      (main: C's first-parent chain is C, M, B, A)
         \         /
          G -------              (a branch off A, merged into main by M)
    """
    from test_fastdeploy_impl import _git

    repo = tmp_path / "merged"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "bench@example.invalid")
    _git(repo, "config", "user.name", "bench")
    sha = {}

    def commit(name: str) -> None:
        (repo / f"{name}.txt").write_text(name)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", name)
        sha[name] = _git(repo, "rev-parse", "HEAD")

    commit("A")
    _git(repo, "checkout", "-q", "-b", "side")
    commit("G")
    _git(repo, "checkout", "-q", "main")
    commit("B")
    _git(repo, "merge", "-q", "--no-ff", "side", "-m", "Merge side")
    sha["M"] = _git(repo, "rev-parse", "HEAD")
    commit("C")
    return repo, sha


def test_a_good_commit_off_bads_first_parent_chain_is_refused_naming_the_merge_that_brought_it_in(merged):
    # `G..C --first-parent` is M, B, C... and B, older than the merge, never held G: a walk over it
    # would call B a midpoint 'after GOOD'
    repo, sha = merged
    with pytest.raises(InputError) as refused:
        history.first_parent(repo, sha["G"], sha["C"], "bisect")
    line = str(refused.value)
    assert "\n" not in line and "is not on BAD" in line and "first-parent chain" in line
    assert f"merge {sha['M'][:12]} 'Merge side'" in line
    on_chain = history.first_parent(repo, sha["A"], sha["C"], "bisect")
    assert [c[0] for c in on_chain] == [sha["B"], sha["M"], sha["C"]]
    assert [c[0] for c in history.first_parent(repo, sha["M"], sha["C"], "bisect")] == [sha["C"]]


def test_bisect_refuses_a_good_commit_off_the_chain_in_one_line_exit_2_with_nothing_written(merged, tmp_path, capsys):
    repo, sha = merged
    assert main(["bisect", str(repo), sha["G"], sha["C"], "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "first-parent chain" in err and not (tmp_path / "out").exists()


# ---- what reaches stderr ---------------------------------------------------------------------------


def test_a_bisection_whose_good_commit_does_not_load_says_only_its_one_line(fd, tmp_path):
    # its own process, as a user's: Paddle, imported there first by the probe of GOOD, warns that
    # ccache is missing, and that warning is not the user's business
    repo, shas, _, _ = fd
    r = bisect(fd, repo, shas[hist.NO_IMPORT], shas[-1], "--out", tmp_path / "b")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "does not load" in r.stderr and "ccache" not in r.stderr, r.stderr


def test_matplotlib_says_nothing_at_info_where_paddle_set_the_root_logger_to_info(tmp_path):
    # bisect imports Paddle (probing a commit), then draws its chart; a fresh MPLCONFIGDIR makes
    # matplotlib build its font cache, which it announces at INFO
    code = ("import logging, paddle; assert logging.getLogger().getEffectiveLevel() <= logging.INFO; "
            "import dsabench.present.charts.bisect")
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl")})
    assert r.returncode == 0 and r.stderr == "", r.stderr


# ---- bad input: one line, exit 2, nothing written -------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (("{repo}", "deadbeef", "{bad}"), "unknown commit 'deadbeef'"),
    (("{repo}", "{bad}", "{good}"), "is not an ancestor of BAD"),
    (("{tmp}", "{good}", "{bad}"), "is not in a git repository"),
    (("{repo}", "{noload}", "{bad}"), "GOOD"),
    (("{repo}", "{faster}", "{readme}"), "touches the files the plug-in loads"),
    (("{repo}", "{good}",), "PATH, GOOD and BAD are required"),
    (("--resume", "{tmp}", "{repo}"), "a resumed bisection keeps the settings"),
    (("--resume", "{tmp}"), "state.json is missing"),
    (("{repo}", "{good}", "{bad}", "--kernel", "triton"), "--kernel 'triton': not usable with --backend paddle"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(fd, tmp_path, capsys, monkeypatch, args, message):
    repo, shas, scenario, cache = fd
    readme = history.first_parent(repo, shas[0], shas[-1], "t")[hist.FASTER][0]  # the README-only commit after 2
    names = dict(repo=repo, good=shas[0], bad=shas[-1], tmp=tmp_path, noload=shas[hist.NO_IMPORT],
                 faster=shas[hist.FASTER], readme=readme)
    argv = ["bisect", *(a.format(**names) for a in args), "--out", str(tmp_path / "out")]
    if "--resume" in args:
        argv = argv[:-2]
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err
    assert not (tmp_path / "out").exists()
