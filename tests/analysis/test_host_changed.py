"""An eager case across runs that falls back on all samples gets no verdict when the host evidence
says the two runs' hosts differ (`host_changed`), and CI is told; the evidence alone decides, never
the forwards' times, so a slowdown of the code is still called. Seeded synthetic chunks: every
chunk waits for a CPU (run delay) beyond the chunk rule's 5%, so no process is host-steady and
every comparison falls back on all samples, as on the shared CPU machine of results/cpu-aa-2026-12-03."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsabench.analysis import host_change as hc
from dsabench.analysis import host_steady as hs
from dsabench.analysis.calibrate import calibrate
from dsabench.analysis.compare import Reason, compare_runs
from dsabench.analysis.gate import HOST_CHANGED, decide
from dsabench.analysis.unjudged import unjudged
from dsabench.cli.exit_codes import EXIT_REGRESSION, EXIT_UNJUDGED
from dsabench.cli.main import build_parser
from dsabench.present.calibration import table_lines
from dsabench.present.compare_text import format_markdown, format_table
from dsabench.present.dashboard.model import _vs_previous
from dsabench.analysis.noise import UNKNOWN
from dsabench.store.frames import load_runs

PROCESSES, CHUNKS, SAMPLES = 3, 8, 5
QUIET_CPU = {"probe_us": 62.0, "waiting": 0.30}  # one host state: probe and share of time waiting for a CPU
SLOW_CPU = {"probe_us": 104.0, "waiting": 0.70}


def _processes(rng, host: dict, level_ms: float = 50.0, code: float = 1.0, between: float = 0.05):
    """Per process: its samples and its chunks. A chunk's time is the code's (level x code, a
    process level, a little noise) stretched by the host's waiting, 1 / (1 - waiting); its
    evidence is the host's alone: the probe, and run delay = waiting x the chunk's host time."""
    out = []
    for p in range(PROCESSES):
        proc = level_ms * code * float(np.exp(rng.normal(0.0, between)))
        samples, chunks = [], []
        for r in range(CHUNKS):
            waiting = host["waiting"] * float(np.exp(rng.normal(0.0, 0.02)))
            chunk = [proc / (1.0 - waiting) * float(np.exp(rng.normal(0.0, 0.01))) for _ in range(SAMPLES)]
            host_ms = float(sum(chunk))
            samples += chunk
            chunks.append({"round": r, "samples": SAMPLES, "start_s": float(r), "host_ms": host_ms,
                           "run_delay_ms": waiting * host_ms, "steal_ms": 0.0,
                           "probe_us": host["probe_us"] * float(np.exp(rng.normal(0.0, 0.02)))})
        out.append((samples, chunks))
    return out


def _row(procs) -> dict:
    """A frame row of an eager case: process_samples beside process_chunks."""
    return {"process_samples": [s for s, _ in procs], "graph": False,
            "process_chunks": [{"key": [i, 100 + i], "chunks": c} for i, (_, c) in enumerate(procs)]}


def _judge(base: dict, cand: dict, **kw):
    return decide(base["process_samples"], cand["process_samples"], 0.03, steady=hs.steady_sides(base, cand), **kw)


def test_the_side_level_lines_are_the_chunk_rules_own():
    assert hc.PROBE_SHIFT == hs.PROBE_SLOW and hc.WAIT_SHIFT == pytest.approx(1 / (1 - hs.SHARE_LIMIT))


def test_a_host_that_changed_between_runs_withholds_the_all_sample_verdict_and_says_why():
    rng = np.random.default_rng(0)
    base, cand = _row(_processes(rng, QUIET_CPU)), _row(_processes(rng, SLOW_CPU))
    st = hs.steady_sides(base, cand)
    assert not st.usable and st.host.reasons == ("probe", "waiting")
    every = decide(base["process_samples"], cand["process_samples"], 0.03)
    assert every.verdict == "slower"  # what all samples alone say: the host's slowdown
    r = _judge(base, cand)
    assert (r.verdict, r.reason) == ("undecided", HOST_CHANGED)
    assert "probe median 62 us base vs 104 us cand (1.67x, beyond 1.3x)" in r.why
    assert "waiting for a CPU (run delay and steal) 30% base vs 70% cand" in r.why
    assert "would measure the host, not the code" in r.why and "--impls" in r.why
    assert "alone would say slower (ci_above_threshold)" in r.message
    assert r.ratio == every.ratio and r.ci_high == every.ci_high  # the figures kept: what CI says it could hide
    assert r.rests_on.startswith("all samples (host-steady chunks in fewer than 2 processes a side")


def test_waiting_alone_that_differs_withholds_it_too():
    rng = np.random.default_rng(1)
    base = _row(_processes(rng, QUIET_CPU))
    cand = _row(_processes(rng, {"probe_us": 62.0, "waiting": 0.60}))
    st = hs.steady_sides(base, cand)
    assert st.host.reasons == ("waiting",) and st.host.wait_factor == pytest.approx(0.7 / 0.4, rel=0.05)
    assert _judge(base, cand).reason == HOST_CHANGED


def test_on_the_same_host_a_real_25_percent_slowdown_is_still_slower():
    rng = np.random.default_rng(2)
    base, cand = _row(_processes(rng, QUIET_CPU)), _row(_processes(rng, QUIET_CPU, code=1.25))
    st = hs.steady_sides(base, cand)
    assert not st.usable and not st.host.changed  # all samples, the host alike in both runs
    r = _judge(base, cand)
    assert (r.verdict, r.reason) == ("slower", "ci_above_threshold") and 1.15 < r.ratio < 1.35


def test_the_host_evidence_never_reads_the_forwards_times():
    """The code slower by any factor, the host the same: the host states do not move, so the
    guard cannot turn a regression of the code into a changed host."""
    base = _row(_processes(np.random.default_rng(3), QUIET_CPU))
    changes = [hs.steady_sides(base, _row(_processes(np.random.default_rng(4), QUIET_CPU, code=k))).host
               for k in (1.0, 1.25, 3.0)]
    assert all(not c.changed for c in changes)
    assert len({(c.probe_ratio, round(c.wait_factor, 12)) for c in changes}) == 1
    r = _judge(base, _row(_processes(np.random.default_rng(4), QUIET_CPU, code=3.0)))
    assert r.verdict == "slower" and r.ratio > 2.5


def test_paired_comparisons_and_sides_judged_on_steady_chunks_are_untouched():
    rng = np.random.default_rng(5)
    quiet = {"probe_us": 62.0, "waiting": 0.0}
    base, cand = _row(_processes(rng, quiet)), _row(_processes(rng, quiet, code=1.25))
    st = hs.steady_sides(base, cand)
    assert st.usable and _judge(base, cand).verdict == "slower"
    base, cand = _row(_processes(rng, QUIET_CPU)), _row(_processes(rng, SLOW_CPU))
    paired = decide(base["process_samples"], cand["process_samples"], 0.03, paired=True,
                    steady=hs.steady_sides(base, cand))
    assert paired.reason != HOST_CHANGED


def test_one_process_a_side_keeps_its_own_reason():
    rng = np.random.default_rng(6)
    base, cand = _row(_processes(rng, QUIET_CPU)[:1]), _row(_processes(rng, SLOW_CPU)[:1])
    assert _judge(base, cand).reason == "within_run_precision_only"


def _records(builder, case, run_id: str, procs) -> list[dict]:
    out = []
    for rep, (samples, chunks) in enumerate(procs):
        rec = builder.record(case, run_id, samples, repeat=rep, clock="host")
        rec["timing"]["chunks"] = chunks
        rec["worker"] = {"pid": 100 + rep}
        out.append(rec)
    return out


def test_compare_withholds_it_in_every_output_and_ci_gets_a_distinct_exit_code(builder, tmp_path, capsys):
    rng = np.random.default_rng(7)
    case = builder.case(graph=False)
    base = builder.run("base", _records(builder, case, "base", _processes(rng, QUIET_CPU)))
    cand = builder.run("cand", _records(builder, case, "cand", _processes(rng, SLOW_CPU)))
    comp = compare_runs(load_runs([base]), load_runs([cand]))
    (row,) = comp.table.to_dict("records")
    assert (row["verdict"], row["reason"]) == ("undecided", Reason.HOST_CHANGED.value)
    assert len(comp.withheld()) == 1 and comp.regressions == 0
    assert [(u.kind, u.ci_high) for u in unjudged(comp)] == [("host_changed", row["ci_high"])]
    assert "1 withheld: the host changed between the runs" in format_table(comp, None)
    assert "the host differs between runs: probe median 62 us base vs 104 us cand" in format_markdown(comp)

    def cli(*argv) -> int:
        args = build_parser().parse_args([str(a) for a in argv])
        return args.func(args)

    out = tmp_path / "gate.json"
    assert cli("compare", base, cand, "--fail-on-regression", "--json", out) == EXIT_UNJUDGED == 4
    err = capsys.readouterr().err
    assert "1 case(s) not judged that may hide a slowdown of +3.0% or more" in err
    assert f"their intervals allow up to {(row['ci_high'] - 1) * 100:+.1f}%" in err
    assert "1 withheld: the host differs between the runs" in err and "rerun both on a quiet host" in err
    assert "exit 4" in err
    doc = json.loads(out.read_text())
    assert doc["withheld"] == 1 and doc["regressions"] == 0 and doc["unjudged_count"] == 1
    assert doc["unjudged"][0]["reason"] == "host_changed"
    assert doc["pairs"][0]["reason"] == "host_changed" and "probe median" in doc["pairs"][0]["why"]
    assert cli("compare", base, cand) == 0  # without --fail-on-regression: said on stderr, exit 0
    assert "withheld" in capsys.readouterr().err
    # a regression elsewhere in the same comparison: exit 1, the stronger finding
    graph = builder.case(graph=True, batch=2)
    base2 = builder.run("base2", _records(builder, case, "base2", _processes(np.random.default_rng(8), QUIET_CPU))
                        + builder.processes(graph, "base2", builder.samples(9, n=30)))
    cand2 = builder.run("cand2", _records(builder, case, "cand2", _processes(np.random.default_rng(9), SLOW_CPU))
                        + builder.processes(graph, "cand2", builder.samples(10, 1.5, n=30)))
    assert cli("compare", base2, cand2, "--fail-on-regression") == EXIT_REGRESSION


def test_calibrate_and_the_dashboard_carry_the_reason():
    rng = np.random.default_rng(11)
    quiet = [{"c": _row(_processes(rng, QUIET_CPU))} for _ in range(2)]
    slow = [{"c": _row(_processes(rng, SLOW_CPU))}]
    (cal,) = calibrate(quiet + slow, {}, 0.03, n_boot=200)
    assert cal.withheld == 2 and cal.false_alarms == 0  # the two pairs with the slow run: no verdict
    assert any(line.startswith("withheld (host_changed): 2 comparisons of 1 case(s)")
               for line in table_lines([cal], 0.03, PROCESSES))
    prev, row = ({**r["c"], "clock": "host", "_params": {"graph": False}} for r in (quiet[0], slow[0]))
    d = _vs_previous(prev, row, 0.03, UNKNOWN)
    assert d.reason == Reason.HOST_CHANGED and "the host differs between runs" in d.message
