"""`--impl mirror+inject=F`: the mirror with a known slowdown on its own forwards only, measured in
the same rounds of the same processes as the plain mirror, so that `compare --impls` (the paired
gate a CI uses for eager cases) can be calibrated on the host it runs on: `mirror+inject=0` is an
A/A twin under another label, `mirror+inject=0.25` a +25% change. Real Paddle on the CPU; outcomes
of the gate over real timings are not asserted, what holds by construction is."""

from __future__ import annotations

import json

import pytest

from dsabench.analysis.compare_impls import compare_impls
from dsabench.analysis.history import case_series
from dsabench.bench.impls import parse_impl
from dsabench.errors import InputError
from dsabench.store import rundir as store
from dsabench.store.frames import load_runs

from cli_process import dsabench

ONE = r"decode\.b1\.c256.*scalar-view\.eager"
TWO = r"decode\.b1\.c256.*(scalar-view|tensor-contiguous)\.eager"


def test_the_spelling_names_the_fraction_and_refuses_anything_else_in_one_line():
    assert parse_impl("mirror+inject=0.25").label == "mirror+inject=0.25"
    assert parse_impl(" mirror+inject=0 ").inject == 0.0 and parse_impl("mirror").inject is None
    assert parse_impl("mirror+inject=0.250").label == "mirror+inject=0.25"
    assert parse_impl("mirror+inject=0.00001").label == "mirror+inject=0.00001"  # no exponent: it parses back
    assert parse_impl(parse_impl("mirror+inject=12.5").label).inject == 12.5
    for bad in ("mirror+inject=", "mirror+inject=abc", "mirror+inject=-0.1", "mirror+inject=-0", "mirror+inject=nan",
                "mirror+inject=1e9", "mirror+inject=1_0", "mirror+inject=\u0663", "mirror+inject=101",
                "mirror+inject=0.1234567",
                "mirror+delay=0.2"):
        with pytest.raises(InputError) as err:
            parse_impl(bad)
        assert bad in str(err.value) and "\n" not in str(err.value)


def test_only_the_injected_impl_is_slowed_and_compare_impls_pairs_it_variant_with_variant(tmp_path):
    r = dsabench("run", "smoke", "--filter", TWO, "--impl", "mirror", "--impl", "mirror+inject=3", "--out", tmp_path,
                 "--run-id", "r", "--max-time-s", "0.1", "--profile-iters", "0")
    assert r.returncode == 0, r.stderr
    records, _ = store.read_records(tmp_path / "r")
    assert sorted((rec["impl"], rec["params"]["scale_mode"]) for rec in records) == [
        ("mirror", "scalar"), ("mirror", "tensor"), ("mirror+inject=3", "scalar"), ("mirror+inject=3", "tensor")]
    by_impl = {rec["impl"]: rec for rec in records if rec["params"]["scale_mode"] == "scalar"}
    plain, slowed = by_impl["mirror"], by_impl["mirror+inject=3"]
    assert "inject" not in plain["output"] and "inject" not in plain["impl_info"]
    inject = slowed["output"]["inject"]
    assert inject["fraction"] == 3 and slowed["impl_info"]["inject"] == 3
    # by construction, on any host: every timed forward of the injected impl busy-waits its delay
    assert min(slowed["timing"]["samples_ms"]) >= inject["delay_ms"] * (1 - 1e-9)
    assert plain["output"]["digest"] == slowed["output"]["digest"]  # the same forward underneath
    rows = compare_impls(load_runs([tmp_path / "r"]), "mirror", "mirror+inject=3").table.to_dict("records")
    assert sorted(row["case"] for row in rows) == sorted(rec["case_id"] for rec in records if rec["impl"] == "mirror")
    assert all(row["base_case_id"] == row["cand_case_id"] == row["case"] for row in rows)  # variant with variant
    # one process a side: never judged, so never passed (exit 4), whatever the timings
    gate = dsabench("compare", "--impls", tmp_path / "r", "--base-impl", "mirror", "--cand-impl", "mirror+inject=3",
                    "--fail-on-regression", "--json", tmp_path / "gate.json")
    assert gate.returncode == 4, gate.stderr
    assert json.loads((tmp_path / "gate.json").read_text())["unjudged"][0]["reason"] == "one_process"
    frame = load_runs([tmp_path / "r"])
    assert case_series(frame).empty  # a run with an injected impl is a calibration: no history, no dashboard
    series = case_series(frame, include_calibration=True)
    assert sorted(set(series["case_id"])) == sorted({rec["case_id"] for rec in records} |
                                                    {rec["case_id"] + "@mirror+inject=3" for rec in records})
    spelt = dsabench("compare", "--impls", tmp_path / "r", "--base-impl", "mirror", "--cand-impl", "mirror+inject=3.0")
    assert spelt.returncode == 0, spelt.stderr  # the fraction however spelt names the impl
    report = dsabench("report", tmp_path / "r", "--out", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    evidence = (tmp_path / "report" / "evidence.md").read_text()
    assert "An injected mirror (`mirror+inject=F`)" in evidence  # said for what it is: no commit
    assert "base <code>mirror (ops: dsabench) in r" in evidence and "candidate <code>mirror+inject=3" in evidence
    variants = dsabench("compare", "--variants", tmp_path / "r")
    assert variants.returncode == 0 and "CAND patched in r" in variants.stdout  # the plain mirror's pair
    assert "inject" not in variants.stdout  # --variants pairs the plain mirror's variants only


def test_a_run_level_delay_beside_an_injected_impl_is_refused_in_one_line(tmp_path):
    r = dsabench("run", "smoke", "--filter", ONE, "--impl", "mirror", "--impl", "mirror+inject=0.25",
                 "--inject-delay", "0.05", "--out", tmp_path, "--run-id", "r")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "--inject-delay 0.05 and impl 'mirror+inject=0.25': give one known slowdown" in r.stderr
    assert not (tmp_path / "r").exists()
