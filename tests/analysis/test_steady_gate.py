"""Eager cases across runs rest on their host-steady chunks, chosen by evidence alone (probe, run
delay, steal), never by their own time; on seeded synthetic chunks with a host slow mode."""

from __future__ import annotations

import numpy as np

from dsabench.analysis import host_steady as hs
from dsabench.analysis.compare import gate_decision
from dsabench.analysis.gate import decide
from dsabench.analysis.host_power import HostSetting, draw_row, measure_host

QUIET = HostSetting(slow_process=0.0, slow_share=0.0, between=0.01, false_flag=0.0)  # no slow mode, no false flag


def _judge(base: dict, cand: dict, threshold=0.03):
    return decide(base["process_samples"], cand["process_samples"], threshold, steady=hs.steady_sides(base, cand))


def test_a_comparison_rests_on_the_host_steady_chunks_and_says_how_many():
    rng = np.random.default_rng(0)
    base, cand = draw_row(rng, HostSetting(slow_process=0.0)), draw_row(rng, HostSetting(slow_process=0.0), 0.25)
    st = hs.steady_sides(base, cand)
    r = _judge(base, cand)
    assert st.usable and 0 < st.chunks_kept < st.chunks == 72
    assert r.rests_on == st.text() and f"on {st.chunks_kept} of 72 chunks host-steady by probe" in r.message
    assert "processes base" in r.rests_on


def test_a_slowdown_of_the_code_on_a_third_of_the_chunks_stays_in_the_judgement():
    """A quiet host, the code 25% slower in a third of the candidate's chunks: two time levels, the
    upper one the code's. The level rule would set it aside as the host's; the evidence keeps every
    chunk, so what the gate judges is what ran."""
    rng = np.random.default_rng(1)
    base, cand = draw_row(rng, QUIET), draw_row(rng, QUIET, 0.25, 1 / 3)
    cp = hs.row_processes(cand)
    levels = hs.side_levels(cp)
    assert levels.split_ms is not None  # the level rule sees two levels here...
    assert any(c.reasons == ("level",) for p in cp for c in hs.classify(p, levels, None))  # ...and would drop them
    st = hs.steady_sides(base, cand)
    assert st.chunks_kept == st.chunks and sorted(map(sorted, st.cand)) == sorted(map(sorted, cand["process_samples"]))
    r = _judge(base, cand)
    assert r.ratio > 1.0 and r.rests_on.startswith("72 of 72 chunks")


def test_with_fewer_than_two_mostly_steady_processes_a_side_it_judges_all_samples_and_says_why():
    """Both runs' processes in the slow mode throughout: nothing is steady, and the hosts are alike
    (a host that differs between the runs: tests/analysis/test_host_changed.py)."""
    rng = np.random.default_rng(2)
    slow = HostSetting(slow_process=1.0, sensitivity=1.0)  # every process of both sides in the slow mode
    base, cand = draw_row(rng, slow), draw_row(rng, slow)
    st = hs.steady_sides(base, cand)
    assert not st.usable and st.cand_processes == (0, 3) and not st.host.changed
    r = _judge(base, cand)
    assert r.rests_on.startswith("all samples (host-steady chunks in fewer than 2 processes a side")
    assert "fewer than 2 processes a side were mostly host-steady" in r.message


def test_a_process_mostly_in_the_slow_mode_is_left_out_though_a_few_chunks_read_steady():
    rng = np.random.default_rng(3)
    row = draw_row(rng, HostSetting(slow_process=0.0))
    entry = row["process_chunks"][0]["chunks"]
    for c in entry[: len(entry) // 2 + 1]:  # just over half read slow: the process is left out
        c["probe_us"] = 150.0
    st = hs.steady_sides(row, draw_row(rng, HostSetting(slow_process=0.0)))
    assert st.base_processes == (2, 3)


def test_one_side_alone_is_what_the_pair_rests_on_that_side_given_the_pairs_probe_reference():
    """steady_side is the per-side piece of steady_sides (a one-run report uses it): same groups, same
    counts; a process needs MIN_STEADY_CHUNKS steady chunks even where they are all it has."""
    rng = np.random.default_rng(5)
    base, cand = draw_row(rng, HostSetting(slow_process=0.0)), draw_row(rng, HostSetting(slow_process=0.0))
    bp, cp = hs.row_processes(base), hs.row_processes(cand)
    ref = hs.probe_reference(bp + cp)
    st = hs.steady_sides(base, cand)
    (b, kb, nb), (c, kc, nc) = hs.steady_side(bp, ref), hs.steady_side(cp, ref)
    assert (b, c, kb + kc, nb + nc) == (st.base, st.cand, st.chunks_kept, st.chunks)
    assert (len(b), len(bp)) == st.base_processes
    short = hs.process_chunks(bp[0].samples_ms[0] + bp[0].samples_ms[1], bp[0].evidence[:2])
    assert not any(hs.evidence_reasons(e, ref) for e in short.evidence)
    assert hs.steady_side([short], ref) == ([], 0, 2)  # two steady chunks of two: fewer than 3, left out


def test_graph_cases_and_runs_without_evidence_rest_on_all_samples():
    rng = np.random.default_rng(4)
    row = draw_row(rng, QUIET)
    assert hs.steady_sides({**row, "graph": True}, row) is None
    old = {"process_samples": row["process_samples"], "chunk_size": 10}  # before schema 3: chunks rebuilt
    assert hs.steady_sides(old, old) is None
    assert gate_decision(row["process_samples"], row["process_samples"], 0.03).rests_on == "all samples"


def test_across_runs_with_a_host_slow_mode_the_steady_judgement_covers_and_catches_more():
    """Seeded: intervals hold the true ratio about 95% of the time, A/A and +25% alike, and +25% is
    called more often on the steady chunks than on all samples (docs/statistics.md, --table host)."""
    s = HostSetting()
    aa = measure_host(s, 0.0, 120, seed=5)
    slow, slow_all = measure_host(s, 0.25, 120, seed=6), measure_host(s, 0.25, 120, seed=6, use_steady=False)
    assert 0.88 <= aa.covered / aa.trials <= 1.0 and 0.88 <= slow.covered / slow.trials <= 1.0
    assert aa.slower + aa.faster <= 0.08 * aa.trials
    assert slow.slower > slow_all.slower


def test_compare_says_what_each_verdict_rests_on_in_text_and_json(tmp_path):
    """Two of the H200's A/A runs (results/h200-2026-12-03/gate): every eager case rests on its
    host-steady chunks or says why not, every CUDA Graph case on all samples; nothing is called."""
    import json
    from pathlib import Path

    from dsabench.analysis.compare import compare_runs
    from dsabench.cli.analysis_verbs import _write_json
    from dsabench.present.compare_text import format_table, rests_on_note
    from dsabench.store.frames import load_runs

    runs = Path(__file__).resolve().parents[2] / "results" / "h200-2026-12-03" / "gate" / "gate"
    comp = compare_runs(load_runs([runs / "gate-aa0"]), load_runs([runs / "gate-aa1"]), allow_mismatch=True)
    _write_json(comp, tmp_path / "c.json")
    pairs = [p for p in json.loads((tmp_path / "c.json").read_text())["pairs"] if p["verdict"] != "failed"]
    eager = [p for p in pairs if p["case"].endswith(".eager")]
    assert len(eager) == 6 and all("chunks host-steady by probe, run delay and steal" in p["rests_on"] for p in eager)
    assert all(p["rests_on"] == "all samples" for p in pairs if p["case"].endswith(".graph"))
    assert not {p["verdict"] for p in pairs} & {"slower", "faster"}
    assert format_table(comp, width=None).count("judged on ") == 6
    assert rests_on_note({"rests_on": "all samples"}) == "" and rests_on_note({"rests_on": None}) == ""
