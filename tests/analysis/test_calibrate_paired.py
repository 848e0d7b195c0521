"""`calibrate --paired` judged on seeded runs: the mirror, its A/A twin and an injected mirror timed
in the same processes, a host slow mode of 1.8x falling on whole processes (as on the H200), and
what the paired gate makes of it (`analysis.calibrate_paired`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsabench.analysis.calibrate import detectable
from dsabench.analysis.calibrate_paired import calibrate_paired
from dsabench.analysis.compare_impls import compare_impls
from dsabench.analysis.gate import decide
from dsabench.store.frames import load_runs

LEVELS = [1.0, 1.8, 1.0, 1.8]  # per process: the slow mode on in half of them, for every impl alike


def _paired_run(builder, name: str, seed: int, injected: float, within: float = 0.01):
    """One run of one eager case: impls mirror, mirror+inject=0 and mirror+inject=F, each process's
    samples at that process's level (x 1 + F for the injected impl), one impl's samples independent
    of another's."""
    rng = np.random.default_rng(seed)
    case = builder.case(graph=False)
    records = []
    for label, factor in (("mirror", 1.0), ("mirror+inject=0", 1.0), (f"mirror+inject={injected:g}", 1 + injected)):
        for rep, level in enumerate(LEVELS):
            samples = factor * level * np.exp(rng.normal(0, within, 20))
            rec = builder.record(case, name, [float(s) for s in samples], repeat=rep)
            records.append({**rec, "impl": label})
    return load_runs([builder.run(name, records)])


def _rows(frame, cand: str):
    return compare_impls(frame, "mirror", cand).table.to_dict("records")


def test_the_slow_mode_cancels_in_pairs_so_the_a_a_twin_stays_quiet_and_25_percent_is_called(builder):
    frames = [_paired_run(builder, f"p{i}", i, 0.25) for i in range(3)]
    result = calibrate_paired([_rows(f, "mirror+inject=0") for f in frames],
                              {0.25: [_rows(f, "mirror+inject=0.25") for f in frames]}, 0.03,
                              sizes={0.25: {frames[0].df["case_id"][0]: 0.26}})
    (case,) = result
    assert (case.aa_pairs, case.false_alarms, case.noisy_pairs) == (3, 0, 0)
    assert case.detected[0.25] == (3, 3)
    assert case.measured[0.25] == 0.26 and case.size_source[0.25] == "worker"
    assert case.process_spread < 0.03  # the per-process ratios: 1% noise each side, the 1.8x gone
    assert math.isnan(case.run_to_run) and 0.03 < case.mde < 0.25
    df = frames[0].df
    base, twin = (df[df["impl"] == label]["process_samples"].iloc[0] for label in ("mirror", "mirror+inject=0"))
    assert decide(base, twin, 0.03, paired=False).noisy  # the same processes unpaired: the slow mode is noise


def test_a_case_failed_on_one_side_is_no_comparison_of_the_gate(builder):
    frame = _paired_run(builder, "p", 0, 0.25)
    rows = _rows(frame, "mirror+inject=0")
    broken = [{**r, "cand_status": "crashed"} for r in rows]
    assert calibrate_paired([rows, broken], {0.25: [_rows(frame, "mirror+inject=0.25")]}, 0.03) == []


def test_the_detectable_change_grows_with_the_standard_error_and_shrinks_with_degrees_of_freedom():
    assert detectable(0.03, 0.01, 3) < detectable(0.03, 0.02, 3)
    assert detectable(0.03, 0.02, 6) < detectable(0.03, 0.02, 3)
    assert detectable(0.03, 0.0, 3) == pytest.approx(0.03)  # no noise: the band's edge itself
    assert math.isnan(detectable(0.03, 0.02, 0)) and math.isnan(detectable(0.03, math.nan, 3))


def test_a_graph_case_is_judged_unpaired_and_its_detectable_change_is_that_gates(builder):
    """Graph cases are timed one at a time, not in rounds: the gate judges them on process levels
    (df 2R - 2), and the calibration uses that gate's own standard error."""
    rng = np.random.default_rng(3)
    case = builder.case(graph=True)
    records = [{**builder.record(case, "g", [float(s) for s in factor * lv * np.exp(rng.normal(0, 0.01, 20))],
                                 repeat=rep), "impl": label}
               for label, factor in (("mirror", 1.0), ("mirror+inject=0", 1.0))
               for rep, lv in enumerate([1.0, 1.01, 0.99, 1.0])]
    rows = _rows(load_runs([builder.run("g", records)]), "mirror+inject=0")
    (row,) = rows
    assert row["df"] == 6  # 2R - 2: unpaired
    (case_cal,) = calibrate_paired([rows], {}, 0.03)
    assert case_cal.mde == pytest.approx(detectable(0.03, row["se"], 6))
