"""What `compare --fail-on-regression` does with what it did not measure: a case with one process
a side is never a pass (exit 4, whatever its within-process interval), nor is a case CAND planned
and never recorded (a run stopped early, a shard never gathered); a case CAND left out on purpose
(its filter, shard or preset) is reported and passes. Within one run, a run that planned cases
neither side recorded is not passed either."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dsabench.cli.exit_codes import EXIT_OK, EXIT_UNJUDGED
from dsabench.analysis.unmeasured import run_gaps
from dsabench.store.frames import load_runs
from dsabench.workload.shards import shard_of

from .test_gate_cli import processes, run_cli


def _two_cases(builder):
    return builder.case(batch=1), builder.case(batch=2)


def test_one_process_a_side_is_not_judged_even_where_its_own_interval_rules_a_slowdown_out(builder, tmp_path, capsys):
    rng = np.random.default_rng(5)
    case = builder.case(graph=False)
    base = builder.simple_run("base", {case: processes(rng, [1.0])}, processes=1)
    cand = builder.simple_run("cand", {case: processes(rng, [1.0])}, processes=1)
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--fail-on-regression", "--json", out) == EXIT_UNJUDGED
    doc = json.loads(out.read_text())
    (row,) = doc["pairs"]
    assert row["verdict"] == "undecided" and row["ci_high"] < 1.03  # one process's interval, under the edge
    (u,) = doc["unjudged"]
    assert (u["reason"], u["ci_high"]) == ("one_process", None)  # no interval over processes
    first, second = capsys.readouterr().err.splitlines()[:2]
    assert "1 case(s) not judged" in first and "any slowdown (no interval)" in first
    assert "one process a side" in first and "--repeats 2 or more" in second and second.endswith("exit 4")


def test_a_case_missing_from_a_cand_that_stopped_early_exits_4_and_says_how_to_finish_it(builder, tmp_path, capsys):
    rng = np.random.default_rng(6)
    a, b = _two_cases(builder)
    base = builder.simple_run("base", {a: processes(rng, [1.0, 1.0, 1.0]), b: processes(rng, [1.0, 1.0, 1.0])})
    cand = builder.simple_run("cand", {a: processes(rng, [1.0, 1.0, 1.0])}, cases_planned=2)  # killed before b
    assert run_gaps(load_runs([cand]).plans["cand"]) == (
        f"{cand} holds records of 1 of its 2 planned cases (stopped early; 'dsabench run --resume {cand}' measures "
        "the rest)",)
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--fail-on-regression", "--json", out) == EXIT_UNJUDGED
    text = capsys.readouterr()
    doc = json.loads(out.read_text())
    row = next(r for r in doc["pairs"] if r["case"] == b.id)
    assert (row["verdict"], row["reason"]) == ("missing", "cand_incomplete")
    assert "cand's run is incomplete" in row["why"] and "--resume" in row["why"]
    assert [(u["case"], u["reason"]) for u in doc["unjudged"]] == [(b.id, "incomplete")]
    first, second = text.err.splitlines()[:2]
    assert "not measured: CAND's run holds less than it planned" in first
    assert "dsabench run --resume CAND" in second and second.endswith("exit 4")
    assert "cand's run is incomplete" in text.out  # the row's reason in the table too


def _by_shard(builder, n: int = 2):
    """Cases of distinct groups, by the shard (1-based, of n) their group falls in."""
    out: dict[int, list] = {}
    for batch in range(1, 40):
        case = builder.case(batch=batch)
        out.setdefault(shard_of(case.group_id, n) + 1, []).append(case)
    return out


def test_a_case_whose_shard_was_never_gathered_is_unmeasured_and_one_its_shard_never_planned_passes(builder, tmp_path):
    rng = np.random.default_rng(7)
    shards = _by_shard(builder)
    a, c = shards[1][:2]  # shard 1: a measured, c not in that shard's plan (a preset without it)
    b = shards[2][0]  # shard 2: never gathered
    base = builder.simple_run("base", {x: processes(rng, [1.0, 1.0, 1.0]) for x in (a, b, c)})
    cand = builder.simple_run("cand-1of2", {a: processes(rng, [1.0, 1.0, 1.0])}, run_id="cand", shard="1/2")
    assert run_gaps(load_runs([cand]).plans["cand"]) == (
        "shard 2/2 of run 'cand' not loaded (a job that never ran, or its directory not gathered)",)
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--fail-on-regression", "--json", out) == EXIT_UNJUDGED
    doc = json.loads(out.read_text())
    reasons = {r["case"]: r["reason"] for r in doc["pairs"]}
    assert (reasons[b.id], reasons[c.id]) == ("cand_incomplete", "only_in_base")
    assert [u["case"] for u in doc["unjudged"]] == [b.id]


def test_a_case_cands_filter_left_out_passes_though_the_run_stopped_before_another(builder, tmp_path):
    rng = np.random.default_rng(9)
    a, b, c = (builder.case(batch=n) for n in (1, 2, 3))
    base = builder.simple_run("base", {x: processes(rng, [1.0, 1.0, 1.0]) for x in (a, b, c)})
    cand = builder.simple_run("cand", {a: processes(rng, [1.0, 1.0, 1.0])}, cases_planned=2,
                              options={"filter": r"\.b[12]\."})  # planned a and b, stopped before b; c filtered
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--fail-on-regression", "--json", out) == EXIT_UNJUDGED
    reasons = {r["case"]: r["reason"] for r in json.loads(out.read_text())["pairs"]}
    assert (reasons[b.id], reasons[c.id]) == ("cand_incomplete", "only_in_base")


def test_a_within_run_gate_on_a_run_that_stopped_early_exits_4_though_every_row_it_has_is_judged(builder, capsys):
    rng = np.random.default_rng(10)
    a, b = _two_cases(builder)
    records = [{**builder.record(a, "r", processes(rng, [1.0, 1.0, 1.0])[rep::3], repeat=rep), "impl": impl}
               for impl in ("mirror", "mirror+inject=0") for rep in range(3)]
    run = builder.run("r", records, cases_planned=4)  # b's two records never written
    assert run_cli("compare", "--impls", run, "--base-impl", "mirror", "--cand-impl", "mirror+inject=0",
                   "--fail-on-regression") == EXIT_UNJUDGED
    first = capsys.readouterr().err.splitlines()[0]
    assert "cases the run planned and holds no record of" in first and "not measured" in first


def test_a_case_a_finished_cand_left_out_on_purpose_is_reported_missing_and_passes(builder, tmp_path, capsys):
    rng = np.random.default_rng(8)
    a, b = _two_cases(builder)
    base = builder.simple_run("base", {a: processes(rng, [1.0, 1.0, 1.0]), b: processes(rng, [1.0, 1.0, 1.0])})
    cand = builder.simple_run("cand", {a: processes(rng, [1.0, 1.0, 1.0])})  # planned only a (a --filter)
    assert run_gaps(load_runs([cand]).plans["cand"]) == ()
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--fail-on-regression", "--json", out) == EXIT_OK
    row = next(r for r in json.loads(out.read_text())["pairs"] if r["case"] == b.id)
    assert (row["verdict"], row["reason"]) == ("missing", "only_in_base")
    assert "missing" in capsys.readouterr().out


def _fd_run(builder, name: str, sha: str, seed: int, factor: float = 1.0):
    rng = np.random.default_rng(seed)
    case = builder.case(graph=False)
    records = [{**builder.record(case, name, s, repeat=rep), "impl": f"fastdeploy:{sha}"}
               for rep, s in enumerate(processes(rng, [1.0, 1.0, 1.0], factor)[i::3] for i in range(3))]
    return builder.run(name, records)


def test_two_nights_of_fastdeploys_head_pair_their_one_commit_each_and_a_slowdown_fails(builder, tmp_path):
    """A nightly of FastDeploy's HEAD measures a new commit every night: each run's one commit is
    FastDeploy's code, paired across the runs, so +30% is a regression, not 'missing' and 'new'."""
    base = _fd_run(builder, "night1", "a" * 12, 11)
    cand = _fd_run(builder, "night2", "b" * 12, 12, factor=1.3)
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--fail-on-regression", "--json", out) == 1
    (row,) = json.loads(out.read_text())["pairs"]
    assert row["verdict"] == "slower" and row["case"].endswith("@fastdeploy")


def test_runs_with_no_case_in_common_are_not_passed(builder, capsys):
    rng = np.random.default_rng(13)
    a, b = _two_cases(builder)
    base = builder.simple_run("base", {a: processes(rng, [1.0, 1.0, 1.0])})
    cand = builder.simple_run("cand", {b: processes(rng, [1.0, 1.0, 1.0])})  # finished: b was all it planned
    assert run_cli("compare", base, cand, "--fail-on-regression") == EXIT_UNJUDGED
    first, second = capsys.readouterr().err.splitlines()[:2]
    assert "no case measured on both sides" in first and "runs of the same cases, impls and kernels" in second


def test_within_one_run_a_lone_finished_shard_passes_and_a_short_one_says_where(builder, capsys):
    rng = np.random.default_rng(14)
    a, _ = _two_cases(builder)
    records = [{**builder.record(a, "r", processes(rng, [1.0, 1.0, 1.0])[rep::3], repeat=rep), "impl": impl}
               for impl in ("mirror", "mirror+inject=0") for rep in range(3)]
    whole = builder.run("whole", records, run_id="r", shard="1/4")  # shards 2-4 are other jobs' business
    args = ("--base-impl", "mirror", "--cand-impl", "mirror+inject=0", "--fail-on-regression", "--threshold", "0.5")
    assert run_cli("compare", "--impls", whole, *args) == 0
    short = builder.run("short", records, run_id="r", shard="1/4", cases_planned=3)
    assert run_cli("compare", "--impls", short, *args) == EXIT_UNJUDGED
    out = " ".join(capsys.readouterr().out.split())  # the warning, wrapped to 120 columns
    assert f"warning: the run is incomplete: {short} holds records of 2 of its 3 planned cases" in out


def test_a_fastdeploy_commits_case_lost_by_a_run_that_stopped_short_is_unmeasured_whatever_the_filter(builder):
    """The commit runs its own variant (the baseline here) where the filter chose the patched cases:
    the filter does not speak for its case, the stopped run does."""
    from dsabench.analysis.unmeasured import unmeasured
    from dsabench.store.run_plans import PlanDir, RunPlan

    plan = RunPlan("cand", r"scalar-view", (PlanDir(Path("cand"), None, frozenset({"x"}), 2),))
    baseline_id = builder.case().id  # tensor-contiguous: the filter does not take it in
    assert unmeasured(plan, baseline_id, "g", "mirror") is None
    assert "holds records of 1 of its 2 planned cases" in unmeasured(plan, baseline_id, "g", "fastdeploy:abc")
