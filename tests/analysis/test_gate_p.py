"""The p beside each verdict is the gate's own: the two-sided p of the t test its interval inverts,
over process levels (per-process ratios where paired, with history where given). So p < 1 -
confidence exactly when the interval excludes no change (ratio 1), whatever the band says; and a
case whose processes differ widely gets a p as wide as its interval, not the tiny p of a test that
takes every sample as independent. Seeded synthetic samples only; no real timing.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from dsabench.analysis.compare import compare_runs, gate_decision
from dsabench.analysis.gate import decide
from dsabench.analysis.noise import UNKNOWN, Noise
from dsabench.cli.analysis_verbs import _write_json
from dsabench.present.compare_text import format_markdown, format_table
from dsabench.present.text import fmt_p
from dsabench.store.frames import load_frame


def _processes(rng, r: int, factor: float, between: float, within: float = 0.01, n: int = 20):
    return [list(factor * math.exp(rng.normal(0, between)) * np.exp(rng.normal(0, within, n))) for _ in range(r)]


def _paired(rng, r: int, factor: float, between: float, n: int = 20):
    """Both sides in the same processes: a shared level per process, the cand's ratio varying by `between`."""
    base, cand = [], []
    for _ in range(r):
        lv = math.exp(rng.normal(0, 0.2))
        base.append(list(lv * np.exp(rng.normal(0, 0.01, n))))
        cand.append(list(lv * factor * math.exp(rng.normal(0, between)) * np.exp(rng.normal(0, 0.01, n))))
    return base, cand


def _excludes_one(r) -> bool:
    return r.ci_low > 1 or r.ci_high < 1


def _cases(paired: bool, r: int, history: bool):
    for seed in range(40):
        rng = np.random.default_rng(1000 * r + seed + (500 if paired else 0) + (250 if history else 0))
        factor = (1.0, 1.01, 1.03, 1.06, 0.95, 1.15)[seed % 6]
        between = (0.005, 0.02, 0.08)[seed % 3]
        if paired:
            base, cand = _paired(rng, r, factor, between)
        else:
            base, cand = _processes(rng, r, 1.0, between), _processes(rng, r, factor, between)
        noise = Noise(0.02, 4, "history") if history else UNKNOWN
        yield base, cand, noise


# (paired, processes a side, history): one process a side is judged only with history (else no interval).
SETTINGS = [(p, r, False) for p in (False, True) for r in (2, 3, 5, 8)] + [(False, r, True) for r in (1, 2, 5)]


@pytest.mark.parametrize("paired, r, history", SETTINGS)
def test_p_is_below_one_minus_confidence_exactly_when_the_interval_excludes_no_change(paired, r, history):
    significant = 0
    for base, cand, noise in _cases(paired, r, history):
        for confidence in (0.95, 0.9):
            g = decide(base, cand, 0.03, noise=noise, paired=paired, confidence=confidence)
            assert math.isfinite(g.p_value) and 0 <= g.p_value <= 1
            assert (g.p_value < 1 - confidence) == _excludes_one(g), (g.p_value, g.ci_low, g.ci_high)
            significant += _excludes_one(g)
    assert 0 < significant < 2 * 40  # both sides of the property were met


def test_p_speaks_of_no_change_not_of_the_band():
    """An interval inside the band but off 1 is 'same' with p < 0.05; one across the band's edge but
    off 1 is 'undecided' with p < 0.05; another band, the same p: the band never enters it."""
    rng = np.random.default_rng(7)
    levels = np.exp(rng.normal(0, 0.1, 6))
    base = [list(lv * np.exp(rng.normal(0, 0.01, 40))) for lv in levels]

    def cand(factor):
        return [list(lv * factor * math.exp(rng.normal(0, 0.01)) * np.exp(rng.normal(0, 0.01, 40))) for lv in levels]

    near, edge = cand(1.012), cand(1.03)
    same = decide(base, near, 0.03, paired=True)
    assert same.verdict == "same" and same.ci_low > 1 and same.p_value < 0.05
    crossing = decide(base, edge, 0.03, paired=True)
    assert crossing.verdict == "undecided" and crossing.ci_low > 1 and crossing.p_value < 0.05
    assert decide(base, edge, 0.5, paired=True).p_value == crossing.p_value


def test_no_interval_over_processes_or_runs_gives_no_p():
    rng = np.random.default_rng(3)
    one = decide(_processes(rng, 1, 1.0, 0.02), _processes(rng, 1, 1.5, 0.02), 0.03)
    assert one.reason == "within_run_precision_only" and math.isnan(one.p_value)
    few = decide([[1.0, 1.1]], [[1.0, 1.2]], 0.03)
    assert few.reason == "too_few_samples" and math.isnan(few.p_value)
    assert fmt_p(one.p_value) == "-"


def test_compare_carries_the_gates_p_not_a_test_over_all_samples():
    rng = np.random.default_rng(4)
    base, cand = _processes(rng, 3, 1.0, 0.05), _processes(rng, 3, 1.2, 0.05)
    g = decide(base, cand, 0.03)
    assert gate_decision(base, cand, 0.03).p_value == g.p_value


def _h200_like(builder):
    """The H200's gate-aa0 vs gate-inj250 eager case: three worker processes a side whose levels
    differ by about 22% (sd), 200 samples each, the cand about +50%."""
    case = builder.case()
    base_levels, cand_levels = [0.65, 0.84, 1.1], [0.95, 1.45, 1.6]
    rng = np.random.default_rng(5)
    runs, pooled = [], []
    for name, levels in (("base", base_levels), ("cand", cand_levels)):
        groups = [list(lv * np.exp(rng.normal(0, 0.02, 200))) for lv in levels]
        runs.append(builder.run(name, [builder.record(case, name, g, repeat=rep) for rep, g in enumerate(groups)]))
        pooled.append(np.concatenate(groups))
    return runs, pooled


def test_processes_far_apart_with_many_samples_each_get_a_p_as_wide_as_their_interval(builder, tmp_path):
    (base, cand), pooled = _h200_like(builder)
    comp = compare_runs(load_frame([base]), load_frame([cand]))
    row = comp.table.iloc[0]
    assert row["ci_low"] < 1 < row["ci_high"] and row["ratio"] > 1.4
    assert 0.05 < row["p_value"] < 1
    assert mannwhitneyu(pooled[1], pooled[0]).pvalue < 1e-6  # what a test over all samples said: "<0.001"
    text = format_table(comp, width=None)
    assert "not a test over all samples" in text and "<0.001" not in text
    assert f" {fmt_p(row['p_value'])} " in text
    assert "not a test over all samples" in format_markdown(comp)
    _write_json(comp, tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text())["pairs"][0]["p_value"] == row["p_value"]
