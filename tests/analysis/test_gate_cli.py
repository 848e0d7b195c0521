"""The gate as CI meets it: `compare --fail-on-regression` on a noisy regression, what a case
left undecided does to the exit code (4 where its interval allows a material slowdown, 1 where
another case is slower, 0 where it allows none), the reason of every row in text, markdown and JSON,
`--threshold auto`, and which earlier runs vouch for a case's noise (`--history`)."""

from __future__ import annotations

import json
import math

import numpy as np

from dsabench.analysis.compare import compare_runs
from dsabench.cli.exit_codes import EXIT_REGRESSION, EXIT_UNJUDGED
from dsabench.cli.main import build_parser
from dsabench.store.frames import load_runs


def run_cli(*argv) -> int:
    args = build_parser().parse_args([str(a) for a in argv])
    return args.func(args)


def processes(rng, levels, factor=1.0, n=20, within=0.005):
    """Samples of one case dealt to len(levels) processes at the given levels (builder.simple_run
    deals sample i to process i % R)."""
    per = [factor * lv * np.exp(rng.normal(0, within, n)) for lv in levels]
    return [float(per[i % len(levels)][i // len(levels)]) for i in range(n * len(levels))]


def test_a_noisy_case_slower_beyond_any_doubt_fails_the_job_and_every_output_says_noisy(builder, tmp_path, capsys):
    rng = np.random.default_rng(0)
    case = builder.case()
    base = builder.simple_run("base", {case: processes(rng, [1.0, 1.3, 0.9])})
    cand = builder.simple_run("cand", {case: processes(rng, [2.4, 3.0, 2.2])})
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--fail-on-regression", "--json", out) == 1
    text = capsys.readouterr()
    assert "slower (noisy)" in text.out and "1 regression(s)" in text.err
    (row,) = json.loads(out.read_text())["pairs"]
    assert row["verdict"] == "slower" and row["noisy"] is True and "noisy" in row["why"]
    assert run_cli("compare", base, cand, "--markdown") == 0
    assert "**slower (noisy)**" in capsys.readouterr().out


def test_a_noisy_case_left_undecided_that_may_hide_a_slowdown_exits_4_and_says_what_would_judge_it(
        builder, tmp_path, capsys):
    rng = np.random.default_rng(1)
    case = builder.case(graph=False)
    base = builder.simple_run("base", {case: processes(rng, [1.0, 1.3, 0.9])})
    cand = builder.simple_run("cand", {case: processes(rng, [1.1, 1.3, 1.05], factor=1.25)})  # +25%, noisy processes
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--fail-on-regression", "--json", out) == EXIT_UNJUDGED == 4
    text = capsys.readouterr()
    assert "undecided (noisy)" in text.out and "crosses an edge of -2.9% to +3.0%" in text.out
    (row,) = json.loads(out.read_text())["pairs"]
    assert row["ci_low"] < 1 < 1.03 < row["ci_high"]  # the interval crosses the band: could be a large slowdown
    first, second = text.err.splitlines()[:2]
    assert "1 case(s) not judged that may hide a slowdown of +3.0% or more" in first
    assert f"their intervals allow up to {(row['ci_high'] - 1) * 100:+.1f}% ({case.id})" in first
    assert "why: 1 noisy (processes spread " in first
    assert "what would judge them: about --repeats " in second and "worker processes a side" in second
    assert "compare within one run (--impls, --variants), or with earlier runs (--history)" in second
    assert second.endswith("exit 4")
    doc = json.loads(out.read_text())
    assert doc["unjudged_count"] == 1 and doc["withheld"] == 0 and doc["regressions"] == 0
    (u,) = doc["unjudged"]
    assert (u["case"], u["reason"], u["ci_high"]) == (case.id, "noisy", row["ci_high"])
    assert u["repeats_to_judge"] > 3  # more processes than the three it had
    assert run_cli("compare", base, cand) == 0  # without --fail-on-regression: said on stderr, exit 0
    assert "1 case(s) not judged" in capsys.readouterr().err


def _quiet_pair(builder, seed, base_levels, cand_levels):
    """Two runs of one graph-like case (processes within 0.1% of each other), and its row under auto."""
    rng = np.random.default_rng(seed)
    case = builder.case()
    base = builder.simple_run("base", {case: processes(rng, base_levels, within=0.001)})
    cand = builder.simple_run("cand", {case: processes(rng, cand_levels, within=0.001)})
    (row,) = compare_runs(load_runs([base]), load_runs([cand]), threshold="auto").table.to_dict("records")
    return base, cand, row


def test_a_quiet_a_a_pair_with_threshold_auto_passes_though_its_narrow_band_leaves_it_undecided(builder, capsys):
    base, cand, row = _quiet_pair(builder, 1, [1.0, 1.001, 0.999], [1.0, 1.001, 0.999])
    assert row["verdict"] == "undecided" and row["ci_high"] < 1.01  # crosses a band of 0.2%, allows no +3%
    assert run_cli("compare", base, cand, "--fail-on-regression", "--threshold", "auto") == 0
    assert "not judged" not in capsys.readouterr().err


def test_a_slower_case_beside_an_unjudged_one_exits_1_and_stderr_names_both(builder, capsys):
    rng = np.random.default_rng(3)
    quiet, noisy = builder.case(batch=1), builder.case(batch=2, graph=False)
    base = builder.simple_run("base", {quiet: processes(rng, [1.0, 1.001, 0.999]),
                                       noisy: processes(rng, [1.0, 1.3, 0.9])})
    cand = builder.simple_run("cand", {quiet: processes(rng, [1.0, 1.001, 0.999], factor=1.10),
                                       noisy: processes(rng, [1.1, 1.3, 1.05], factor=1.25)})
    assert run_cli("compare", base, cand, "--fail-on-regression") == EXIT_REGRESSION == 1
    err = capsys.readouterr().err
    assert "1 case(s) not judged that may hide a slowdown" in err and "1 regression(s)" in err
    assert "exit 4" not in err and err.rstrip().endswith("exit 1")


def test_an_undecided_case_whose_interval_allows_no_material_slowdown_passes(builder, capsys):
    base, cand, row = _quiet_pair(builder, 0, [1.0, 1.004, 0.996], [1.0, 1.01, 1.012])
    assert row["verdict"] == "undecided" and 0.99 < row["ci_low"] < 1 and 1.01 < row["ci_high"] < 1.03
    assert run_cli("compare", base, cand, "--fail-on-regression", "--threshold", "auto") == 0  # -0.5% .. +2%
    assert "not judged" not in capsys.readouterr().err
    # a threshold given is the edge itself: at 1% the same interval may hide a slowdown of the size asked about
    assert run_cli("compare", base, cand, "--fail-on-regression", "--threshold", "0.01") == EXIT_UNJUDGED
    assert "may hide a slowdown of +1.0% or more" in capsys.readouterr().err


def test_a_case_not_comparable_between_the_runs_exits_4_never_0_since_it_rules_no_slowdown_out(
        builder, tmp_path, capsys):
    rng = np.random.default_rng(4)
    case = builder.case(graph=False)
    base = builder.simple_run("base", {case: processes(rng, [1.0, 1.0, 1.0])})
    cand = builder.run("cand", builder.processes(case, "cand", processes(rng, [1.3, 1.3, 1.3]), clock="wall"))
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--fail-on-regression", "--json", out) == EXIT_UNJUDGED
    first, second = capsys.readouterr().err.splitlines()[:2]
    assert "1 case(s) not judged" in first and "any slowdown (no interval)" in first
    assert "1 not comparable (another clock, or no timing samples, on one side)" in first
    assert "taken with one clock" in second and second.endswith("exit 4")
    doc = json.loads(out.read_text())
    (row,) = doc["pairs"]
    assert (row["verdict"], row["reason"]) == ("not_comparable", "clock_differs")
    assert doc["unjudged_count"] == 1 and doc["unjudged"][0]["reason"] == "not_comparable"
    assert doc["unjudged"][0]["ci_high"] is None and doc["unjudged"][0]["repeats_to_judge"] is None


def test_every_row_that_is_not_a_plain_change_carries_its_reason_in_text_markdown_and_json(builder, tmp_path, capsys):
    same, thin = builder.case(batch=1), builder.case(batch=2)
    base = builder.simple_run("base", {same: builder.samples(1), thin: [1.0, 1.0, 1.0]})
    cand = builder.simple_run("cand", {same: builder.samples(2), thin: builder.samples(3)})
    out = tmp_path / "gate.json"
    assert run_cli("compare", base, cand, "--json", out) == 0
    text = capsys.readouterr().out
    assert "within -2.9% to +3.0%" in text and "a verdict needs at least 5 on each side" in text
    assert run_cli("compare", base, cand, "--markdown") == 0
    md = capsys.readouterr().out
    assert "within -2.9% to +3.0%" in md and "a verdict needs at least 5 on each side" in md
    rows = {r["case"]: r for r in json.loads(out.read_text())["pairs"]}
    assert rows[same.id]["reason"] == "ci_within_threshold" and rows[same.id]["why"].startswith("within -2.9% to +3.0%")
    assert rows[thin.id]["reason"] == "too_few_samples" and "at least 5" in rows[thin.id]["why"]


def test_threshold_auto_calls_one_percent_on_a_quiet_case_that_a_three_percent_band_calls_same(builder, capsys):
    rng = np.random.default_rng(2)
    case = builder.case()
    base = builder.simple_run("base", {case: processes(rng, [1.0, 1.001, 0.999], within=0.001)})
    cand = builder.simple_run("cand", {case: processes(rng, [1.01, 1.011, 1.009], within=0.001)})
    assert run_cli("compare", base, cand, "--fail-on-regression") == 0
    assert run_cli("compare", base, cand, "--fail-on-regression", "--threshold", "auto") == 1
    assert "threshold auto (each case's band from its own noise" in " ".join(capsys.readouterr().out.split())


def _series(builder, case, name, level, created, options=None, kernel=None):
    rng = np.random.default_rng(sum(map(ord, name)))
    records = builder.processes(case, name, processes(rng, [level] * 3), n=3)
    for r in records:
        r["kernel"] = kernel or "reference"  # what the worker records
    return builder.run(name, records, created_at=created, options=options)


def test_history_vouches_only_with_runs_of_the_same_series_made_before_cand(builder):
    case = builder.case()
    base = _series(builder, case, "base", 1.0, "2025-02-01T00:00:00+00:00")
    cand = _series(builder, case, "cand", 1.0, "2025-02-02T00:00:00+00:00")
    quiet = [_series(builder, case, f"h{i}", lv, f"2025-01-0{i + 1}T00:00:00+00:00")
             for i, lv in enumerate((1.0, 1.001, 0.999, 1.0))]
    later = [_series(builder, case, f"late{i}", lv, f"2025-03-0{i + 1}T00:00:00+00:00") for i, lv in enumerate((1.5, 0.6))]
    calib = [_series(builder, case, f"cal{i}", lv, f"2025-01-1{i}T00:00:00+00:00", options={"calibration": "c"})
             for i, lv in enumerate((1.5, 0.6))]
    other_kernel = [_series(builder, case, f"k{i}", lv, f"2025-01-2{i}T00:00:00+00:00", kernel="triton")
                    for i, lv in enumerate((1.5, 0.6))]
    frame = lambda paths: load_runs(paths)  # noqa: E731
    history = frame(quiet + later + calib + other_kernel)
    row = compare_runs(frame([base]), frame([cand]), history=history).table.iloc[0]
    assert "and 4 earlier runs" in row["message"]  # only the quiet ones, before CAND, same series
    with_cal = compare_runs(frame([base]), frame([cand]), history=history, include_calibration=True).table.iloc[0]
    assert "and 6 earlier runs" in with_cal["message"]
    assert math.isfinite(row["noise"])


def test_calibrate_runs_stay_out_of_history_and_the_dashboard_unless_asked(builder):
    from dsabench.analysis.history import case_series
    from dsabench.present.dashboard.model import collect

    case = builder.case()
    runs = [_series(builder, case, "n0", 1.0, "2025-01-01T00:00:00+00:00"),
            _series(builder, case, "c-aa0", 1.0, "2025-01-02T00:00:00+00:00", options={"calibration": "c"}),
            _series(builder, case, "c-inj050", 1.05, "2025-01-03T00:00:00+00:00",
                    options={"calibration": "c", "inject_delay": 0.05})]
    frame = load_runs(runs)
    assert list(case_series(frame)["run_id"]) == ["n0"]
    assert list(case_series(frame, include_calibration=True)["run_id"]) == ["n0", "c-aa0", "c-inj050"]
    dash = collect(frame, 0.03, change_points=False)
    assert list(dash.runs) == ["n0"] and any("2 calibrate run(s) left out" in w for w in dash.warnings)
