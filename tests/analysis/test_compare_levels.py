"""The ms columns beside a verdict are the levels the gate's ratio is formed from (gate.levels),
so `compare`'s text, markdown and JSON and the evidence report say one change per case: cand ms /
base ms is the printed change, to the printed digits. The pooled median of all samples says a
different change wherever processes differ; it is kept in JSON under its own name only."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from dsabench.analysis.compare import compare_runs, compare_variants
from dsabench.analysis.gate import decide
from dsabench.analysis.noise import run_level as level
from dsabench.analysis.host_steady import SteadySides
from dsabench.cli.main import build_parser
from dsabench.present.compare_text import format_markdown, format_table
from dsabench.present.evidence_speed import saving_lines
from dsabench.present.runset import load_run_set
from dsabench.store.frames import load_runs
from dsabench.workload.variants import BASELINE, PATCHED


def processes(rng, levels, n=20, within=0.005):
    """Samples dealt to len(levels) processes at the given levels (simple_run deals sample i to
    process i % R)."""
    per = [lv * np.exp(rng.normal(0, within, n)) for lv in levels]
    return [float(per[i % len(levels)][i // len(levels)]) for i in range(n * len(levels))]


def _printed_change(base_ms: str, cand_ms: str) -> float:
    return (float(cand_ms) / float(base_ms) - 1) * 100


def _assert_said_alike(change: str, base_ms: str, cand_ms: str) -> None:
    """cand ms / base ms as printed (4 significant digits each) against the printed change (0.1%)."""
    assert _printed_change(base_ms, cand_ms) == pytest.approx(float(change.rstrip("%")), abs=0.15)


def _text_row(text: str, case: str) -> list[str]:
    (line,) = [ln for ln in text.splitlines() if ln.rstrip().endswith(case) or f"  {case}  " in ln]
    return re.split(r"\s{2,}", line.strip())


def _md_row(md: str, case: str) -> list[str]:
    (line,) = [ln for ln in md.splitlines() if ln.startswith("|") and case in ln]
    return [c.strip() for c in line.strip("|").split("|")]


def test_run_vs_run_ms_columns_are_the_process_levels_whose_ratio_is_the_change(builder, tmp_path):
    """Processes at 1, 1, 2 ms against 1, 2, 2 ms: the pooled medians say +100% (1 -> 2 ms), the
    gate's geometric means of process medians +26%. Every output prints the levels."""
    rng = np.random.default_rng(0)
    case = builder.case()
    base = builder.simple_run("base", {case: processes(rng, [1.0, 1.0, 2.0])})
    cand = builder.simple_run("cand", {case: processes(rng, [1.0, 2.0, 2.0])})
    comp = compare_runs(load_runs([base]), load_runs([cand]))
    (row,) = comp.table.to_dict("records")
    assert row["cand_level_ms"] / row["base_level_ms"] == pytest.approx(row["ratio"], rel=1e-12)
    assert row["ratio"] == pytest.approx(2 ** (1 / 3), rel=0.01)
    assert row["cand_pooled_median_ms"] / row["base_pooled_median_ms"] > 1.9  # what the columns showed before

    text = format_table(comp, width=None)
    assert "base ms, cand ms: each side's level, the geometric mean of its process medians" in text
    cells = _text_row(text, case.id)
    _assert_said_alike(cells[1], cells[4], cells[5])
    cells = _md_row(format_markdown(comp), case.id)
    _assert_said_alike(cells[1], cells[4], cells[5])

    out = tmp_path / "gate.json"
    args = build_parser().parse_args(["compare", str(base), str(cand), "--json", str(out)])
    args.func(args)
    (pair,) = json.loads(out.read_text())["pairs"]
    assert pair["cand_level_ms"] / pair["base_level_ms"] == pytest.approx(pair["ratio"], rel=1e-12)
    assert "base_median_ms" not in pair and pair["cand_pooled_median_ms"] > 1.9 * pair["base_pooled_median_ms"]


def test_paired_eager_variants_print_base_level_and_base_times_the_paired_ratio(builder, tmp_path):
    """Paired by round the ratio is the mean of per-process round ratios, not a ratio of two levels:
    cand ms is base ms x the ratio, and the evidence's saving table gives the same speedup."""
    rng = np.random.default_rng(1)
    a, b = builder.case(variant=BASELINE, graph=False), builder.case(variant=PATCHED, graph=False)
    run = builder.simple_run("r", {a: processes(rng, [1.0, 1.3, 0.9]), b: processes(rng, [0.8, 1.1, 0.7])})
    comp = compare_variants(load_runs([run]))
    (row,) = comp.table.to_dict("records")
    assert row["base_level_ms"] == pytest.approx(level([[1.0], [1.3], [0.9]]), rel=0.01)
    assert row["cand_level_ms"] == pytest.approx(row["base_level_ms"] * row["ratio"], rel=1e-12)
    text = format_table(comp, width=None)
    assert "eager cases, paired by round: cand ms = base ms x the change" in text
    cells = _text_row(text, row["case"])
    _assert_said_alike(cells[1], cells[4], cells[5])

    lines = saving_lines(load_run_set([run]), comp, {})
    (saving,) = [_md_row("\n".join(lines), "eager")]
    assert float(saving[4].rstrip("x")) == pytest.approx(1 / row["ratio"], abs=0.005)
    assert float(saving[2]) / float(saving[3]) == pytest.approx(1 / row["ratio"], rel=1e-3)


def test_a_verdict_on_host_steady_chunks_prints_the_levels_of_those_chunks():
    rng = np.random.default_rng(2)
    every_b = [list(lv * np.exp(rng.normal(0, 0.005, 20))) for lv in (1.0, 1.0, 1.9)]
    every_c = [list(lv * np.exp(rng.normal(0, 0.005, 20))) for lv in (1.1, 2.0, 2.0)]
    steady = SteadySides(every_b[:2], every_c[1:], 40, 60, (2, 3), (2, 3))
    r = decide(every_b, every_c, 0.03, steady=steady)
    assert (r.base_level, r.cand_level) == pytest.approx((level(steady.base), level(steady.cand)), rel=1e-12)
    assert r.cand_level / r.base_level == pytest.approx(r.ratio, rel=1e-12)


def test_rows_without_a_ratio_show_each_ok_sides_own_level(builder):
    rng = np.random.default_rng(3)
    old, new = builder.case(batch=1), builder.case(batch=2)
    base = builder.simple_run("base", {old: processes(rng, [1.0, 2.0, 4.0])})
    cand = builder.simple_run("cand", {new: processes(rng, [1.0, 1.0, 1.0])})
    t = compare_runs(load_runs([base]), load_runs([cand])).table.set_index("case")
    assert t.loc[old.id, "base_level_ms"] == pytest.approx(2.0, rel=0.01)  # (1 x 2 x 4) ** (1 / 3)
    assert t.loc[new.id, "cand_level_ms"] == pytest.approx(1.0, rel=0.01)
    assert np.isnan(t.loc[old.id, "cand_level_ms"]) and np.isnan(t.loc[old.id, "ratio"])
