"""Every flag range is checked at parse time: a bad value exits 2 with one short, printable line naming
the flag, the value and what is allowed, before anything runs; the edges of each range pass."""

from __future__ import annotations

import subprocess

import pytest

from dsabench.bench.protocol import GPU_PROTOCOL, MIN_SAMPLES, protocol_for
from dsabench.cli.main import build_parser


def refusal(argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([str(a) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


@pytest.mark.parametrize("argv, needle", [
    (["run", "--min-samples", "1"], f"--min-samples '1': expected an integer from {MIN_SAMPLES} to "
                                    f"{GPU_PROTOCOL.max_samples} (the protocol's minimum is {MIN_SAMPLES}"),
    (["run", "--min-samples", str(GPU_PROTOCOL.max_samples + 1)], "--min-samples"),
    (["run", "--min-samples", "ten"], "--min-samples 'ten'"),
    (["run", "--precision", "5"], "--precision '5': expected a number in (0, 1)"),
    (["run", "--precision", "nan"], "--precision 'nan': expected a finite number"),
    (["run", "--max-time-s", "inf"], "--max-time-s 'inf': expected a finite number"),
    (["run", "--case-timeout-s", "0"], "--case-timeout-s '0': expected a number > 0"),
    (["run", "--profile-iters", "-1"], "--profile-iters '-1': expected an integer from 0 to 1000"),
    (["run", "--run-id", ".."], "--run-id '..': expected 1 to 128 letters"),
    (["run", "--run-id", "."], "--run-id '.'"),
    (["run", "--run-id", ""], "--run-id ''"),
    (["run", "--run-id", "a/b"], "--run-id 'a/b'"),
    (["run", "--measured-checkout", "/nonexistent"], "--measured-checkout '/nonexistent': no such directory"),
    (["history", "x", "--max-pvalue", "-5"], "--max-pvalue '-5': expected a number in (0, 1] (a p-value)"),
    (["history", "x", "--max-pvalue", "0"], "--max-pvalue '0': expected a number in (0, 1]"),
    (["history", "x", "--min-change", "nan"], "--min-change 'nan': expected a finite number"),
    (["history", "x", "--min-change", "-0.1"], "--min-change '-0.1': expected a number in [0, inf)"),
    (["compare", "x", "--variants", "--base-variant", "fast"], "--base-variant 'fast': expected 'baseline'"),
    (["compare", "x", "--threshold", "nan"], "nan is outside [0, 1)"),
])
def test_a_flag_out_of_range_exits_2_naming_flag_value_and_range(argv, needle, capsys):
    line = refusal(argv, capsys)
    assert needle in line, line


def test_measured_checkout_must_be_a_git_checkout_with_a_commit(tmp_path, capsys):
    assert "not a git checkout with a commit" in refusal(["run", "--measured-checkout", tmp_path], capsys)
    (tmp_path / "file").write_text("x")
    assert "not a directory" in refusal(["run", "--measured-checkout", tmp_path / "file"], capsys)
    repo = tmp_path / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert "not a git checkout with a commit" in refusal(["run", "--measured-checkout", repo], capsys)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    assert build_parser().parse_args(["run", "--measured-checkout", str(repo)]).measured_checkout == repo


@pytest.mark.parametrize("gpu", [True, False])
def test_the_smallest_and_largest_min_samples_accepted_build_a_protocol(gpu):
    for text in (str(MIN_SAMPLES), str(GPU_PROTOCOL.max_samples)):
        args = build_parser().parse_args(["run", "--min-samples", text])
        assert protocol_for(gpu, min_samples=args.min_samples).min_samples == int(text)


def test_range_edges_pass():
    args = build_parser().parse_args(["history", "x", "--max-pvalue", "1", "--min-change", "0"])
    assert (args.max_pvalue, args.min_change) == (1.0, 0.0)
    args = build_parser().parse_args(["run", "--profile-iters", "0", "--run-id", "nightly-2026.11.30_a"])
    assert (args.profile_iters, args.run_id) == (0, "nightly-2026.11.30_a")


@pytest.mark.parametrize("argv", [
    ["run", "--" + "x" * 100_000],
    ["run", "--run-id", "r" * 100_000],
    ["run", "--run-id", "a\x1b[2Jb"],
    ["compare", "x", "--base-variant", "\x07" * 3],
])
def test_a_huge_or_control_character_value_gives_one_short_printable_line(argv, capsys):
    line = refusal(argv, capsys)
    assert len(line) < 700 and line.isprintable(), line[:200]


def test_every_run_flag_has_help():
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    missing = [a.option_strings for a in run._actions if a.option_strings and not a.help]
    assert not missing
    shard = next(a for a in run._actions if "--shard" in a.option_strings)
    assert "case group" in shard.help and "case id" not in shard.help


def test_an_error_quoting_a_path_with_control_characters_is_printed_escaped_on_one_line(tmp_path):
    import sys

    run_dir = tmp_path / "r\x1b[2J\nx"
    run_dir.mkdir()
    r = subprocess.run([sys.executable, "-m", "dsabench", "run", "--resume", str(run_dir)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.strip().isprintable(), r.stderr
    assert "r\\x1b[2J" in r.stderr
