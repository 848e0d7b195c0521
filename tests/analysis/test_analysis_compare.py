import math
import re

import pytest

from dsabench.analysis.compare import (
    Comparison,
    NotComparable,
    Reason,
    Verdict,
    compare_runs,
    compare_variants,
)
from dsabench.present.compare_text import format_markdown, format_table
from dsabench.errors import InputError
from dsabench.store.frames import load_frame
from dsabench.workload.variants import BASELINE, PATCHED, Variant


def pair(builder, base_samples, cand_samples, **kw):
    """BASE and CAND runs holding one case each; returns the comparison's single row."""
    case = builder.case()
    base = builder.simple_run("base", {case: base_samples})
    cand = builder.simple_run("cand", {case: cand_samples})
    result = compare_runs(load_frame([base]), load_frame([cand]), **kw)
    assert len(result.table) == 1
    return result.table.iloc[0]


@pytest.mark.parametrize(
    "factor, verdict, reason",
    [
        (1.10, Verdict.SLOWER, Reason.CI_ABOVE),
        (0.90, Verdict.FASTER, Reason.CI_BELOW),
        (1.00, Verdict.SAME, Reason.CI_WITHIN),
        (1.03, Verdict.UNDECIDED, Reason.CI_CROSSES),  # right on the +3% edge: can't tell
    ],
)
def test_compare_judges_the_ratio_interval_against_the_threshold_band(builder, factor, verdict, reason):
    base = builder.samples(1, median_ms=1.0, sigma=0.01, n=40)
    cand = builder.samples(2, median_ms=factor, sigma=0.01, n=40)
    row = pair(builder, base, cand)
    assert (row["verdict"], row["reason"]) == (verdict.value, reason.value)
    assert row["ci_low"] <= row["ratio"] <= row["ci_high"]
    assert row["ratio"] == pytest.approx(factor, rel=0.01)


def test_compare_threshold_is_configurable(builder):
    base = builder.samples(1, sigma=0.005, n=40)
    cand = builder.samples(2, median_ms=1.05, sigma=0.005, n=40)
    case = builder.case()
    runs = load_frame([builder.simple_run("base", {case: base})]), load_frame([builder.simple_run("cand", {case: cand})])
    assert compare_runs(*runs, threshold=0.03).table.iloc[0]["verdict"] == Verdict.SLOWER.value
    assert compare_runs(*runs, threshold=0.10).table.iloc[0]["verdict"] == Verdict.SAME.value
    with pytest.raises(ValueError, match=r"threshold is 3; expected a fraction in \[0, 1\) or 'auto'"):
        compare_runs(*runs, threshold=3)


def test_compare_calls_too_few_samples_undecided(builder):
    row = pair(builder, [1.0, 1.0, 1.0], builder.samples(2, median_ms=2.0))
    assert (row["verdict"], row["reason"]) == ("undecided", "too_few_samples")
    assert "base has 3 samples, cand 30; a verdict needs at least 5 on each side" in row["message"]


def test_compare_marks_cases_only_in_one_run_as_new_or_missing(builder):
    old, new, both = builder.case(batch=1), builder.case(batch=2), builder.case(batch=3)
    base = builder.simple_run("base", {old: builder.samples(1), both: builder.samples(2)})
    cand = builder.simple_run("cand", {new: builder.samples(3), both: builder.samples(4)})
    t = compare_runs(load_frame([base]), load_frame([cand])).table.set_index("case")
    assert (t.loc[old.id, "verdict"], t.loc[old.id, "reason"]) == ("missing", "only_in_base")
    assert (t.loc[new.id, "verdict"], t.loc[new.id, "reason"]) == ("new", "only_in_cand")
    assert t.loc[both.id, "verdict"] == "same"
    assert math.isnan(t.loc[new.id, "base_pooled_median_ms"])


@pytest.mark.parametrize(
    "base_status, cand_status, reason, text",
    [
        ("ok", "oom", "cand_failed", "cand oom: out of memory"),
        ("capture_failed", "ok", "base_failed", "base capture_failed: capture error"),
        ("crashed", "crashed", "both_failed", "both crashed: worker died"),
    ],
)
def test_compare_marks_a_case_that_failed_in_either_run_as_failed_with_its_status(builder, base_status, cand_status, reason, text):
    case = builder.case()
    messages = {"oom": "out of memory", "capture_failed": "capture error", "crashed": "worker died", "ok": ""}

    def record(run_id, status):
        samples = builder.samples(1) if status == "ok" else None
        return builder.record(case, run_id, samples, status=status, message=messages[status])

    base = builder.run("base", [record("base", base_status)])
    cand = builder.run("cand", [record("cand", cand_status)])
    result = compare_runs(load_frame([base]), load_frame([cand]))
    row = result.table.iloc[0]
    assert (row["verdict"], row["reason"], row["message"]) == ("failed", reason, text)
    assert (row["base_status"], row["cand_status"]) == (base_status, cand_status)
    assert result.regressions == (1 if reason == "cand_failed" else 0)


def test_compare_marks_samples_from_different_clocks_as_not_comparable(builder):
    case = builder.case()
    base = builder.run("base", [builder.record(case, "base", builder.samples(1), clock="cuda_event")])
    cand = builder.run("cand", [builder.record(case, "cand", builder.samples(2), clock="host")])
    row = compare_runs(load_frame([base]), load_frame([cand])).table.iloc[0]
    assert (row["verdict"], row["reason"]) == ("not_comparable", "clock_differs")
    assert "base timed with clock 'cuda_event', cand with 'host'" in row["message"]


def test_compare_marks_an_ok_case_without_samples_as_not_comparable(builder):
    row = pair(builder, builder.samples(1), [])
    assert (row["verdict"], row["reason"]) == ("not_comparable", "no_samples")


def test_compare_refuses_runs_from_different_device_models_naming_both(builder):
    case = builder.case()
    base = builder.simple_run("base", {case: builder.samples(1)}, device=builder.H100)
    cand = builder.simple_run("cand", {case: builder.samples(2)}, device=builder.H200)
    with pytest.raises(
        NotComparable,
        match=r"device differs: BASE 'base' ran on 'NVIDIA H100 80GB HBM3', CAND 'cand' on 'NVIDIA H200'; pass --allow-mismatch",
    ):
        compare_runs(load_frame([base]), load_frame([cand]))
    assert issubclass(NotComparable, InputError)  # the CLI maps it to exit code 2


def test_compare_refuses_runs_of_different_backends_naming_both(builder):
    case = builder.case()
    base = builder.simple_run("base", {case: builder.samples(1)}, backend="paddle")
    cand = builder.simple_run("cand", {case: builder.samples(2)}, backend="torch")
    with pytest.raises(NotComparable, match=r"backend differs: BASE 'base' ran on 'paddle', CAND 'cand' on 'torch'"):
        compare_runs(load_frame([base]), load_frame([cand]))


def test_compare_with_allow_mismatch_compares_and_keeps_the_mismatch(builder):
    case = builder.case()
    base = builder.simple_run("base", {case: builder.samples(1)}, device=builder.H100)
    cand = builder.simple_run("cand", {case: builder.samples(2)}, device=builder.H200)
    result = compare_runs(load_frame([base]), load_frame([cand]), allow_mismatch=True)
    assert result.table.iloc[0]["verdict"] == "same"
    assert len(result.mismatches) == 1 and "device differs" in result.mismatches[0]
    assert "device differs" in format_table(result) and "device differs" in format_markdown(result)


def test_compare_refuses_a_side_holding_two_runs(builder):
    case = builder.case()
    a = builder.simple_run("a", {case: builder.samples(1)})
    b = builder.simple_run("b", {case: builder.samples(2)})
    with pytest.raises(InputError, match=r"BASE: holds 2 runs \('a', 'b'\); expected exactly one"):
        compare_runs(load_frame([a, b]), load_frame([a]))


def test_compare_variants_pairs_patched_with_baseline_within_each_group(builder):
    middle = Variant("scalar", "contiguous")
    cases = {}
    for batch in (1, 8):
        cases[builder.case(batch=batch, variant=BASELINE)] = builder.samples(batch, median_ms=1.0)
        cases[builder.case(batch=batch, variant=PATCHED)] = builder.samples(batch + 100, median_ms=0.8)
        cases[builder.case(batch=batch, variant=middle)] = builder.samples(batch + 200, median_ms=0.95)
    cases[builder.case(batch=64, variant=BASELINE)] = builder.samples(5)  # patched never ran here
    frame = load_frame([builder.simple_run("r", cases)])

    result = compare_variants(frame)
    t = result.table.set_index("case")
    for batch in (1, 8):
        group = builder.case(batch=batch).group_id
        assert t.loc[group, "verdict"] == "faster"
        assert t.loc[group, "base_case_id"] == builder.case(batch=batch, variant=BASELINE).id
        assert t.loc[group, "cand_case_id"] == builder.case(batch=batch, variant=PATCHED).id
        assert t.loc[group, "ratio"] == pytest.approx(0.8, rel=0.02)
    assert t.loc[builder.case(batch=64).group_id, "verdict"] == "missing"
    assert result.mode == "variants" and result.base_label.startswith("baseline in r")

    other = compare_variants(frame, "scalar+contiguous", "patched").table.set_index("case")
    assert other.loc[builder.case(batch=1).group_id, "ratio"] == pytest.approx(0.8 / 0.95, rel=0.02)
    with pytest.raises(InputError, match=r"variant 'fastest'; expected 'baseline', 'patched'"):
        compare_variants(frame, "fastest")


def test_the_header_says_how_the_ratio_is_made_paired_within_a_run_and_not_across_runs(builder):
    a, b = builder.case(variant=BASELINE), builder.case(variant=PATCHED)
    run = builder.simple_run("r", {a: builder.samples(1), b: builder.samples(2, median_ms=0.8)})
    other = builder.simple_run("s", {a: builder.samples(3), b: builder.samples(4)})
    within = compare_variants(load_frame([run]))
    across = compare_runs(load_frame([run]), load_frame([other]))
    said = "of each process's median ratio over the rounds both sides shared"
    for text in (format_table(within, width=None), format_markdown(within)):
        assert "geometric mean of process medians (eager cases: " + said in text
    for text in (format_table(across, width=None), format_markdown(across)):
        assert "geometric mean of process medians" in text and said not in text


def test_format_table_names_both_runs_and_lists_every_pair(builder):
    a, b = builder.case(batch=1), builder.case(batch=2)
    base = builder.simple_run("base", {a: builder.samples(1), b: builder.samples(2)}, commit="1234567890abcdef" * 2)
    cand = builder.simple_run("cand", {a: builder.samples(3, median_ms=1.2), b: builder.samples(4)})
    text = format_table(compare_runs(load_frame([base]), load_frame([cand])))
    assert "BASE base (1234567890ab)  vs  CAND cand" in text
    assert "1 slower, 1 same" in text
    lines = text.splitlines()
    assert max(map(len, lines)) <= 120
    head = next(k for k, line in enumerate(lines) if line.startswith("verdict"))
    assert lines[head].split()[:10] == ["verdict", "change", "95%", "CI", "p", "base", "ms", "cand", "ms", "case"]
    rows = [line for line in lines[head + 2:] if line.startswith(("slower", "same"))]
    assert rows[0].startswith("slower") and re.search(r"\+(19|20)\.\d%", rows[0])
    assert rows[1].startswith("same")
    # the ids, too wide for 120 columns with the rest, leave out what they share (said above the table)
    assert re.search(r"  decode\.b1\b", rows[0]) and re.search(r"  decode\.b2\b", rows[1])
    wide = format_table(compare_runs(load_frame([base]), load_frame([cand])), width=None).splitlines()
    assert wide[3].split() == ["verdict", "change", "95%", "CI", "p", "base", "ms", "cand", "ms", "case", "note"]
    assert a.id in wide[5] and b.id in wide[6]


def test_format_markdown_puts_changes_in_a_table_and_folds_same_rows(builder):
    slow, same, broken = builder.case(batch=1), builder.case(batch=2), builder.case(batch=3)
    base = builder.run("base", [r for i, c in enumerate((slow, same, broken))
                                for r in builder.processes(c, "base", builder.samples(i))])
    cand = builder.run(
        "cand",
        [
            *builder.processes(slow, "cand", builder.samples(7, median_ms=1.2)),
            *builder.processes(same, "cand", builder.samples(8)),
            builder.record(broken, "cand", None, status="oom", message="out of memory | 80 GiB"),
        ],
    )
    md = format_markdown(compare_runs(load_frame([base]), load_frame([cand])))
    # Base first, as in the terminal table and the CLI's argument order.
    assert md.startswith("### dsabench compare (runs): base <code>base (aaaaaaaaaaaa)</code> vs candidate "
                         "<code>cand (aaaaaaaaaaaa)</code>")
    assert "**1 slower, 1 failed, 1 same**" in md
    assert "| verdict | change | 95% CI | p | base ms | cand ms | case | note |" in md
    assert re.search(r"\| \*\*slower\*\* \| \+(19|20)\.\d% \|", md) and f"<code>{slow.id}</code>" in md
    assert "cand oom: out of memory \\| 80 GiB" in md  # a pipe in a message cannot break the table
    details = md.split("<details><summary>1 same</summary>")[1]
    assert f"<code>{same.id}</code>" in details and "</details>" in details
    assert f"<code>{same.id}</code>" not in md.split("<details>")[0]


def test_format_functions_accept_a_bare_table(builder):
    case = builder.case()
    base = builder.simple_run("base", {case: builder.samples(1)})
    result = compare_runs(load_frame([base]), load_frame([base]))
    assert isinstance(result, Comparison) and result.counts() == {"same": 1}
    assert "1 same" in format_table(result.table) and "1 same" in format_markdown(result.table)


def test_format_markdown_shows_the_trace_figures_that_differ_between_variants(builder):
    def trace(htod, layout_bytes):
        return {"memcpy": {"HtoD": {"count": htod, "bytes": 4 * htod, "ms": 0.0}}, "sync_calls": 0,
                "layout_copy": {"kernel_count": int(layout_bytes > 0), "kernel_ms": 0.1, "bytes": layout_bytes}}  # fmt: skip

    base_case, cand_case = builder.case(variant=BASELINE), builder.case(variant=PATCHED)
    run = builder.run(
        "r",
        [
            builder.record(base_case, "r", builder.samples(1), trace=trace(1, 3 * 2**30)),
            builder.record(cand_case, "r", builder.samples(2, median_ms=0.7), trace=trace(0, 0)),
        ],
    )
    result = compare_variants(load_frame([run]))
    row = result.table.iloc[0]
    assert (row["base_htod_count"], row["cand_htod_count"], row["cand_layout_copy_bytes"]) == (1, 0, 0)
    md = format_markdown(result)
    assert "HtoD copies 1 -&gt; 0, layout copy 3 GiB -&gt; 0 B" in md  # "->", HTML-escaped
    assert "syncs" not in md  # equal on both sides: not evidence of anything


# ------------------------------------------------------------------------ findings and escaping


def test_a_failure_both_sides_share_is_said_once(builder):
    case = builder.case()
    msg = "RuntimeError: Cannot copy between CPU and CUDA tensors during CUDA graph capture"
    base = builder.run("base", [builder.record(case, "base", None, status="crashed", message=msg)])
    cand = builder.run("cand", [builder.record(case, "cand", None, status="crashed", message=msg)])
    row = compare_runs(load_frame([base]), load_frame([cand])).table.iloc[0]
    assert row["message"] == f"both crashed: {msg}"
    assert format_table(compare_runs(load_frame([base]), load_frame([cand]))).count(msg) == 1


def test_the_tensor_scales_failed_capture_reads_as_a_finding_not_a_failure(builder):
    msg = "RuntimeError: Cannot copy between CPU and CUDA tensors during CUDA graph capture"
    base_case, cand_case = builder.case(variant=BASELINE, graph=True), builder.case(variant=PATCHED, graph=True)
    run = builder.run("r", [builder.record(base_case, "r", None, status="capture_failed", message=msg),
                            builder.record(cand_case, "r", builder.samples(1))])  # fmt: skip
    result = compare_variants(load_frame([run]))
    md, text = format_markdown(result), format_table(result)
    assert "| finding |" in md and "**failed**" not in md
    assert "finding: capture fails (host copy)" in md and "1 expected finding" in md
    # expected findings need no look: one line a kind, a row each with --wide
    assert text.splitlines()[-1] == "  finding: capture fails (host copy): 1 pair"
    assert format_table(result, width=None).splitlines()[-1].startswith("finding ")


def test_a_real_failure_stays_a_failure(builder):
    case = builder.case(variant=BASELINE, graph=False)
    run = builder.run("r", [builder.record(case, "r", None, status="oom", message="out of memory"),
                            builder.record(builder.case(variant=PATCHED, graph=False), "r", builder.samples(1))])
    md = format_markdown(compare_variants(load_frame([run])))
    assert "| **failed** |" in md and "finding" not in md


def test_markdown_escapes_every_string_that_comes_from_a_run(builder):
    case = builder.case()
    evil = "<script>alert(1)</script> <img src=x onerror=alert(2)> `x` | y\nz"
    base = builder.run("base", [builder.record(case, "base", builder.samples(1), device=evil)])
    cand = builder.run("cand", [builder.record(case, "cand", None, status="crashed", message=evil, device=evil)])
    md = format_markdown(compare_runs(load_frame([base]), load_frame([cand])))
    assert "<script>" not in md and "<img" not in md
    assert "&lt;script&gt;" in md and "&lt;img src=x onerror=alert(2)&gt;" in md
    assert "\\`x\\`" in md and "\\| y<br>z" in md
    for line in md.splitlines():
        if line.startswith("| "):
            assert line.endswith(" |") and line.count(" | ") >= 7, line


def test_a_device_mismatch_names_the_flag_and_not_the_python_argument(builder):
    case = builder.case()
    base = builder.simple_run("base", {case: builder.samples(1)}, device=builder.H100)
    cand = builder.simple_run("cand", {case: builder.samples(2)}, device=builder.H200)
    with pytest.raises(NotComparable) as err:
        compare_runs(load_frame([base]), load_frame([cand]))
    assert "--allow-mismatch" in str(err.value) and "allow_mismatch=True" not in str(err.value)


def test_compare_help_shows_a_plain_percent_sign(capsys):
    from dsabench.cli.main import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["compare", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "95% Student t interval" in out and "%%" not in out


def _gpu_worker(teardown):
    from dsabench.store.schema import WorkerInfo

    return WorkerInfo(device={"kind": "gpu", "name": "NVIDIA H200"}, availability={}, profiler_teardown=teardown)


def test_compare_warns_when_a_run_kept_the_profiler_attached_after_its_traces(builder):
    case = builder.case(graph=False)
    old = builder.simple_run("old", {case: builder.samples(1)}, backend="torch", workers=(_gpu_worker(None),))
    new = builder.simple_run("new", {case: builder.samples(2)}, backend="torch", workers=(_gpu_worker("1"),))
    again = builder.simple_run("again", {case: builder.samples(3)}, backend="torch", workers=(_gpu_worker("1"),))

    (warning,) = [w for w in compare_runs(load_frame([old]), load_frame([new])).warnings if "TEARDOWN_CUPTI" in w]
    assert warning.startswith("BASE 'old' was measured with the profiler left attached")
    assert not [w for w in compare_runs(load_frame([new]), load_frame([again])).warnings if "TEARDOWN_CUPTI" in w]
    cpu_paddle = builder.simple_run("cpu", {case: builder.samples(4)}, workers=(_gpu_worker(None),))
    assert not [w for w in compare_runs(load_frame([cpu_paddle]), load_frame([cpu_paddle])).warnings
                if "TEARDOWN_CUPTI" in w]  # Paddle's profiler is not PyTorch's
