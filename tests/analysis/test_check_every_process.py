"""`run --check` judges every record: each case, impl and repeat (worker-process pass) on its own,
so a NaN, a different digest or a crash in one process of several is not hidden by the others."""

from __future__ import annotations

from dsabench.analysis.checks import check_outputs
from dsabench.present.summary import format_check
from dsabench.workload.variants import BASELINE, PATCHED


def _records(builder, repeats=3, impl=None):
    out = []
    for variant in (BASELINE, PATCHED):
        case = builder.case(variant=variant, graph=False)
        for rep in range(repeats):
            r = builder.record(case, "r", builder.samples(rep), repeat=rep)
            r["output"] = {"digest": "d" * 64}
            if impl:
                r["impl"] = impl
            out.append(r)
    return out


def test_every_process_of_every_repeat_is_compared_bit_for_bit(builder):
    records = _records(builder)
    result = check_outputs(records)
    assert result.ok and result.cases_compared == 6
    records[4]["output"]["digest"] = "e" * 64  # the patched case's repeat 1 computed something else
    result = check_outputs(records)
    assert not result.ok and len(result.mismatches) == 1
    assert result.mismatches[0].endswith("eeeeeeeeeeee: scalar-view.eager (repeat 1)")


def test_a_nan_in_one_process_of_three_fails_the_check_naming_the_repeat(builder):
    records = _records(builder)
    records[2]["status"], records[2]["message"] = "nonfinite", "3 of 24 output values are not finite"
    result = check_outputs(records)
    assert not result.ok
    assert result.nonfinite == (f"{records[2]['case_id']} (repeat 2): 3 of 24 output values are not finite",)


def test_a_crashed_impl_fails_the_check_naming_the_case_impl_and_repeat(builder):
    records = _records(builder, repeats=2, impl="fastdeploy:0123456789ab")
    for r in records[2:]:
        r["status"], r["message"], r["output"] = "crashed", "AttributeError: no forward_mixed\nTraceback ...", {}
    result = check_outputs(records)
    assert not result.ok and len(result.crashed) == 2
    assert result.crashed[0] == f"{records[2]['case_id']} [fastdeploy:0123456789ab] (repeat 0): AttributeError: no forward_mixed"
    text = format_check(result, records)
    assert "crashed: 2 cases" in text and "(repeat 1)" in text


def test_one_repeat_runs_name_cases_as_before(builder):
    records = _records(builder, repeats=1)
    records[0]["status"], records[0]["message"] = "nonfinite", "NaN"
    assert check_outputs(records).nonfinite == (f"{records[0]['case_id']}: NaN",)
