"""What `compare --fail-on-regression` does with what it did not measure: a case with one process
a side is never a pass (exit 4, whatever its within-process interval), nor is a case CAND planned
and never recorded (a run stopped early, a shard never gathered); a case CAND left out on purpose
(its filter, shard or preset) is reported and passes."""

from __future__ import annotations

import json

import numpy as np

from dsabench.cli.exit_codes import EXIT_OK, EXIT_UNJUDGED
from dsabench.store.frames import load_runs

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
    assert load_runs([cand]).gaps == {"cand": (f"{cand} holds records of 1 of its 2 planned cases (stopped early; "
                                               f"'dsabench run --resume {cand}' measures the rest)",)}
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


def test_a_shard_of_cand_never_gathered_leaves_its_cases_unmeasured_not_passed(builder, tmp_path):
    rng = np.random.default_rng(7)
    a, b = _two_cases(builder)
    base = builder.simple_run("base", {a: processes(rng, [1.0, 1.0, 1.0]), b: processes(rng, [1.0, 1.0, 1.0])})
    builder.simple_run("cand-1of2", {a: processes(rng, [1.0, 1.0, 1.0])}, run_id="cand", shard="1/2")
    cand = builder.root / "cand-1of2"
    assert load_runs([cand]).gaps == {"cand": ("shard 2/2 of run 'cand' not loaded (a job that never ran, or its "
                                               "directory not gathered)",)}
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--fail-on-regression", "--json", out) == EXIT_UNJUDGED
    assert [u["reason"] for u in json.loads(out.read_text())["unjudged"]] == ["incomplete"]


def test_a_case_a_finished_cand_left_out_on_purpose_is_reported_missing_and_passes(builder, tmp_path, capsys):
    rng = np.random.default_rng(8)
    a, b = _two_cases(builder)
    base = builder.simple_run("base", {a: processes(rng, [1.0, 1.0, 1.0]), b: processes(rng, [1.0, 1.0, 1.0])})
    cand = builder.simple_run("cand", {a: processes(rng, [1.0, 1.0, 1.0])})  # planned only a (a --filter)
    assert load_runs([cand]).gaps == {}
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--fail-on-regression", "--json", out) == EXIT_OK
    row = next(r for r in json.loads(out.read_text())["pairs"] if r["case"] == b.id)
    assert (row["verdict"], row["reason"]) == ("missing", "only_in_base")
    assert "missing" in capsys.readouterr().out
