"""The end-of-run table's patched-vs-baseline cell, on seeded synthetic samples of two processes."""

import re

import numpy as np

from dsabench.analysis.compare import DEFAULT_THRESHOLD, gate_decision
from dsabench.present.summary import summary_table


def _record(variant: str, processes: list[list[float]]) -> dict:
    return {"group_id": "decode.x.eager", "case_id": f"decode.x.{variant}.eager", "status": "ok", "message": "",
            "params": {"variant": variant, "graph": False, "phase": "decode"},
            "timing": {"samples_ms": [s for p in processes for s in p]}, "process_samples": processes}


def _processes(levels, sd, rng) -> list[list[float]]:
    return [list(level * np.exp(rng.normal(0, sd, 12))) for level in levels]


def _interval(table: str) -> tuple[str, float, float, float]:
    m = re.search(r"patched (\d+\.\d)% (less|more) time \(([+-]\d+\.\d)% to ([+-]\d+\.\d)%\)", table)
    assert m, table
    return m[2], float(m[1]), float(m[3]), float(m[4])


def test_an_interval_across_no_change_is_signed_in_the_direction_its_headline_names():
    rng = np.random.default_rng(1)
    # patched 10% slower in one process, the same in the other: 'more time', the gate's interval as more time
    base, cand = _processes([1.0, 2.0], 0.01, rng), _processes([1.10, 2.0], 0.01, rng)
    d = gate_decision(base, cand, DEFAULT_THRESHOLD, paired=True)
    word, est, lo, hi = _interval(summary_table([_record("baseline", base), _record("patched", cand)], width=None))
    assert (word, est) == ("more", round((d.ratio - 1) * 100, 1))
    assert (lo, hi) == (round((d.ci_low - 1) * 100, 1), round((d.ci_high - 1) * 100, 1))
    # the other way round: 'less time', the interval as time saved
    d = gate_decision(cand, base, DEFAULT_THRESHOLD, paired=True)
    word, est, lo, hi = _interval(summary_table([_record("baseline", cand), _record("patched", base)], width=None))
    assert (word, est) == ("less", round((1 - d.ratio) * 100, 1))
    assert (lo, hi) == (round((1 - d.ci_high) * 100, 1), round((1 - d.ci_low) * 100, 1))


def test_a_cell_wider_than_its_median_says_its_half_width_in_plain_percent():
    rng = np.random.default_rng(2)
    records = [_record(v, _processes([1.0, 40.0], 0.3, rng)) for v in ("baseline", "patched")]
    table = summary_table(records, width=None)
    cells = re.findall(r"±(\S+)%", table)
    assert cells and not any("e+" in c for c in cells), table
