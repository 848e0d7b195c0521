"""A host-bound eager case measured on two machines gets no verdict (issue 22): on the H200 a nightly
A/A pair two machine starts apart called 7 of 138 eager cases slower on chunks whose probes read
steady. Device-bound eager cases and CUDA Graph cases are judged across machines as ever."""

from __future__ import annotations

import numpy as np

from dsabench.analysis import host_steady as hs
from dsabench.analysis.gate import HOST_CHANGED, decide
from dsabench.analysis.host_power import HostSetting, draw_row

QUIET = HostSetting(slow_process=0.0, slow_share=0.0, between=0.01, false_flag=0.0)


def _traced(row: dict, uuid: str, host_bound: float | None) -> dict:
    """The row as a GPU run's frame row: its device, its clock, and a trace whose device busy time
    leaves the device waiting `host_bound` of the median forward (None: no trace)."""
    median = float(np.median([s for g in row["process_samples"] for s in g]))
    busy = np.nan if host_bound is None else median * (1 - host_bound)
    return {**row, "device_uuid": uuid, "clock": "cuda_event", "median_ms": median, "kernel_ms": busy,
            "htod_ms": 0.0, "dtoh_ms": 0.0, "dtod_ms": 0.0, "memset_ms": 0.0}


def _pair(seed: int, uuids=("GPU-aaaa", "GPU-bbbb"), bound=(0.5, 0.5), slower: float = 0.0):
    rng = np.random.default_rng(seed)
    base, cand = draw_row(rng, QUIET), draw_row(rng, QUIET, slower)
    return _traced(base, uuids[0], bound[0]), _traced(cand, uuids[1], bound[1])


def test_a_host_bound_case_on_two_gpus_is_withheld_even_where_its_chunks_would_call_it_slower():
    base, cand = _pair(0, slower=0.30)
    st = hs.steady_sides(base, cand)
    assert st.machine and "two machines" in st.machine and "50%, 50%" in st.machine
    r = decide(base["process_samples"], cand["process_samples"], 0.03, steady=st)
    assert r.verdict == "undecided" and r.reason == HOST_CHANGED
    assert "not a verdict" in r.message and "would say slower" in r.message and r.ratio > 1.2


def test_the_same_gpu_in_both_runs_is_one_machine_and_is_judged():
    base, cand = _pair(1, uuids=("GPU-aaaa", "GPU-aaaa"), slower=0.30)
    st = hs.steady_sides(base, cand)
    assert st.machine is None
    assert decide(base["process_samples"], cand["process_samples"], 0.03, steady=st).verdict == "slower"


def test_a_device_bound_case_is_judged_across_machines():
    base, cand = _pair(2, bound=(0.02, hs.HOST_BOUND_LIMIT * 0.99), slower=0.30)
    assert hs.machine_change(base, cand) is None
    assert decide(base["process_samples"], cand["process_samples"], 0.03,
                  steady=hs.steady_sides(base, cand)).verdict == "slower"


def test_without_a_trace_on_one_side_the_case_counts_as_host_bound():
    base, cand = _pair(3, bound=(0.02, None))
    assert "unknown (no trace)" in hs.machine_change(base, cand)


def test_rows_without_a_device_id_say_nothing_of_machines():
    base, cand = _pair(4)
    base["device_uuid"] = None
    assert hs.machine_change(base, cand) is None


def test_a_cuda_graph_case_has_no_steady_sides_so_no_machine_rule():
    base, cand = _pair(5)
    assert hs.steady_sides({**base, "graph": True}, cand) is None


def test_two_gpus_of_one_host_are_one_machine():
    """Runs on GPU 0 and GPU 1 of one host: both manifests saw both GPUs."""
    base, cand = _pair(6, slower=0.30)
    both = "GPU-aaaa,GPU-bbbb"
    assert hs.machine_change({**base, "host_gpus": both}, {**cand, "host_gpus": both}) is None
    assert hs.machine_change({**base, "host_gpus": "GPU-aaaa"}, {**cand, "host_gpus": "GPU-bbbb"})


def test_compare_says_two_machines_among_the_reasons_a_case_was_withheld_and_what_would_judge_it():
    from dsabench.analysis.unjudged import Unjudged
    from dsabench.present.unjudged_text import unjudged_lines

    why, advice = unjudged_lines([Unjudged("decode", HOST_CHANGED, 1.2, 1.4, 0.01, 3, None)], 1.03, within_run=False)
    assert "1 withheld" in why and "two machines" in why
    assert "one machine for both" in advice
