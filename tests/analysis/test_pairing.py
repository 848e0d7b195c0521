"""Paired sides are paired process with process by identity: variants of one eager group timed in
the same worker processes, where each side lost a different repeat, are judged on the processes
both were measured in, never on rounds of two different processes, and the row says which
processes were left out."""

from __future__ import annotations

import numpy as np
import pytest

from dsabench.analysis.compare import compare_variants
from dsabench.analysis.pairing import paired_processes
from dsabench.present.compare_text import format_table
from dsabench.present.summary import summary_table
from dsabench.store.frames import load_frame
from dsabench.store.rundir import read_records
from dsabench.store.repeats import merge_repeats
from dsabench.workload.variants import BASELINE, PATCHED

# Four worker processes whose levels differ as an eager case's do on a busy host; both variants
# run the same code (A/A) and share each process's level, round by round.
LEVELS = (1.0, 1.6, 0.7, 1.3)
LOST = {BASELINE.name: 1, PATCHED.name: 2}  # the repeat each side lost (crashed): base keeps 0, 2, 3; cand 0, 1, 3


@pytest.fixture
def run(builder):
    rng = np.random.default_rng(0)
    records = []
    for variant in (BASELINE, PATCHED):
        case = builder.case(variant=variant, graph=False)
        for rep, level in enumerate(LEVELS):
            if rep == LOST[variant.name]:
                records.append(builder.record(case, "r", None, status="crashed", message="killed", repeat=rep,
                                              clock="host"))
            else:
                samples = level * np.exp(rng.normal(0.0, 0.005, 20))
                records.append(builder.record(case, "r", samples.tolist(), repeat=rep, clock="host"))
    return builder.run("r", records)


def test_sides_that_lost_different_repeats_are_judged_on_the_processes_both_were_measured_in(run):
    (row,) = compare_variants(load_frame([run])).table.to_dict("records")
    assert row["verdict"] == "same" and row["ratio"] == pytest.approx(1.0, abs=0.01)  # by place: 0.7 against 1.6
    assert row["processes"] == 2
    assert row["rests_on"] == ("the 2 of 4 processes both sides were measured in "
                               "(left out: repeat 2 base only; repeat 1 cand only)")
    assert "judged on the 2 of 4 processes both sides were measured in" in format_table(
        compare_variants(load_frame([run])), width=None)


def test_the_end_of_run_table_pairs_the_same_way_and_says_so(run):
    records, _ = read_records(run)
    text = summary_table(merge_repeats(records), width=None)
    assert "same" in text and "left out: repeat 2 base only; repeat 1 cand only" in " ".join(text.split())


def test_processes_pair_by_repeat_and_pid_and_a_side_with_none_in_common_is_said():
    def row(*keys):
        return {"process_samples": [[float(i + 1)] * 3 for i in range(len(keys))],
                "process_chunks": [{"key": list(k), "chunks": []} for k in keys]}

    both = paired_processes(row((0, 11), (1, 12), (2, 13)), row((0, 11), (2, 13)))
    assert (both.base, both.cand) == ([[1.0] * 3, [3.0] * 3], [[1.0] * 3, [2.0] * 3])
    assert both.left_out == "left out: repeat 1 base only"
    resumed = paired_processes(row((0, 11), (1, 12)), row((0, 11), (1, 99)))  # repeat 1 done again in another process
    assert resumed.shared == 1 and resumed.left_out == "left out: repeat 1 (pid 12) base only; repeat 1 (pid 99) cand only"
    assert paired_processes(row((0, 1)), row((1, 2))).shared == 0
