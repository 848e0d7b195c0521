"""The host-steady rule on seeded synthetic chunks: two host levels found and split, evidence that
names a disturbed chunk, within-run ratios from rounds where both sides were steady."""

from __future__ import annotations

import numpy as np
import pytest

from dsabench.analysis import host_steady as hs

CHUNK = 10


def _chunks(rng, fast_ms: float, slow: list[bool], slow_factor: float = 1.8, noise: float = 0.02,
            probe_us: float | None = None, key=(0, 1)) -> hs.ProcessChunks:
    """One process: a chunk per round, each CHUNK samples around the fast or the slow level; with
    `probe_us`, recorded evidence whose probe is slower by the same factor in slow chunks."""
    samples, chunks = [], []
    for r, is_slow in enumerate(slow):
        level = fast_ms * (slow_factor if is_slow else 1.0)
        samples += list(level * np.exp(rng.normal(0.0, noise, CHUNK)))
        if probe_us is not None:
            chunks.append({"round": r, "samples": CHUNK, "start_s": float(r), "host_ms": level * CHUNK,
                           "probe_us": probe_us * (slow_factor if is_slow else 1.0) * float(np.exp(rng.normal(0, 0.02))),
                           "run_delay_ms": 0.0, "steal_ms": 0.0})
    return hs.process_chunks(samples, chunks, None if chunks else CHUNK, key)


def test_two_host_levels_are_found_and_every_slow_chunk_is_disturbed():
    rng = np.random.default_rng(1)
    pattern = [bool(b) for b in rng.integers(0, 2, 40)]
    p = _chunks(rng, 0.6, pattern)
    lv = hs.side_levels([p])
    assert lv.split_ms is not None and lv.slow_ms / lv.fast_ms == pytest.approx(1.8, rel=0.05)
    classes = hs.classify(p, lv, None)
    assert [not c.steady for c in classes] == pattern
    assert all(c.reasons == ("level",) for c in classes if not c.steady)


def test_one_level_with_ordinary_noise_is_all_steady():
    rng = np.random.default_rng(2)
    p = _chunks(rng, 0.6, [False] * 40, noise=0.05)
    lv = hs.side_levels([p])
    assert lv.split_ms is None and "one level" in lv.why
    assert all(c.steady for c in hs.classify(p, lv, None))


def test_too_few_chunks_are_not_split_into_levels():
    rng = np.random.default_rng(3)
    p = _chunks(rng, 0.6, [False, True, False, True])
    assert hs.side_levels([p]).split_ms is None
    assert "4 chunks < 6" in hs.side_levels([p]).why


def test_a_slow_probe_marks_a_chunk_disturbed_even_when_the_case_is_slow_throughout():
    rng = np.random.default_rng(4)
    fast = _chunks(rng, 0.6, [False] * 8, probe_us=60.0, key=(0, 1))
    slow = _chunks(rng, 0.6, [True] * 8, probe_us=60.0, key=(1, 2))
    ref = hs.probe_reference([fast, slow])
    assert ref == pytest.approx(60.0, rel=0.1)
    alone = hs.side_levels([slow])
    assert alone.split_ms is None  # the level rule cannot see a process slow throughout...
    assert all(c.reasons == ("probe",) for c in hs.classify(slow, alone, ref))  # ...the probe can


def test_run_delay_and_steal_above_their_share_of_the_chunk_disturb_it():
    samples = [1.0] * 3
    chunks = [{"round": 0, "samples": 1, "start_s": 0.0, "host_ms": 10.0, "run_delay_ms": 0.6, "steal_ms": 0.0},
              {"round": 1, "samples": 1, "start_s": 1.0, "host_ms": 10.0, "run_delay_ms": 0.4, "steal_ms": 10.0},
              {"round": 2, "samples": 1, "start_s": 2.0, "host_ms": 10.0, "run_delay_ms": None, "steal_ms": None}]
    p = hs.process_chunks(samples, chunks)
    classes = hs.classify(p, hs.side_levels([p]), None)
    assert [c.reasons for c in classes] == [("run_delay",), ("steal",), ()]


def test_the_within_run_ratio_uses_only_rounds_where_both_sides_were_steady_and_says_how_many():
    rng = np.random.default_rng(5)
    pattern = [bool(b) for b in rng.integers(0, 2, 30)]
    # the same host mode hits both sides of a round; the slow mode dilutes the true 1.35 ratio
    base = _chunks(np.random.default_rng(6), 1.35, pattern, slow_factor=1.6)
    cand = _chunks(np.random.default_rng(7), 1.0, pattern, slow_factor=1.9)
    r = hs.steady_ratio([cand], [base], None)  # base/cand, as baseline/patched
    assert r.rounds_used == pattern.count(False) and r.rounds_total == 30 and r.processes == 1
    assert r.ratio == pytest.approx(1.35, rel=0.02)
    mixed = np.median([x.ratio for x in hs.round_ratios([cand], [base], None)])
    assert abs(mixed - 1.35) > abs(r.ratio - 1.35)  # all rounds: a mixture of two hosts


def test_rounds_pair_only_within_one_process():
    rng = np.random.default_rng(8)
    a = _chunks(rng, 1.0, [False] * 6, key=(0, 11))
    b = _chunks(rng, 1.0, [False] * 6, key=(1, 12))
    assert hs.round_ratios([a], [b], None) == []
    assert hs.steady_ratio([a], [b], None) is None


def test_older_runs_chunks_are_rebuilt_from_the_protocols_chunk_size_and_recorded_ones_must_hold_the_samples():
    p = hs.process_chunks([1.0] * 25, chunk_size=10)
    assert p.rebuilt and p.rounds == (0, 1, 2) and [len(g) for g in p.samples_ms] == [10, 10, 5]
    with pytest.raises(ValueError, match="expected the protocol's chunk"):
        hs.process_chunks([1.0] * 3)
    with pytest.raises(ValueError, match="chunks hold 2 samples; expected the 3"):
        hs.process_chunks([1.0] * 3, [{"round": 0, "samples": 2}])


def test_the_host_bound_share_is_the_time_the_device_waits_for_the_host():
    assert hs.host_bound_share(0.25, 1.0) == pytest.approx(0.75)
    assert hs.host_bound_share(1.2, 1.0) == 0.0
    assert hs.host_bound_share(None, 1.0) is None


def test_a_case_summary_counts_disturbed_chunks_by_reason_and_takes_the_steady_median():
    rng = np.random.default_rng(9)
    pattern = [i % 3 == 0 for i in range(30)]
    p = _chunks(rng, 0.5, pattern)
    h = hs.case_host([p], None, device_busy_ms=0.1)
    assert h.chunks == 30 and h.disturbed == 10 and h.by_reason == {"level": 10}
    assert h.disturbed_share == pytest.approx(1 / 3)
    assert h.steady_median_ms == pytest.approx(0.5, rel=0.02)
    assert h.rebuilt and 0.8 < h.host_bound_share < 0.9
    (group,) = hs.steady_groups([p], None)
    assert len(group) == 20 * CHUNK


def test_steady_pairs_keep_both_sides_of_each_steady_round_in_step_for_a_paired_gate():
    rng = np.random.default_rng(10)
    pattern = [i % 4 == 1 for i in range(24)]
    base = _chunks(rng, 1.3, pattern)
    cand = _chunks(rng, 1.0, pattern)
    pairs = hs.steady_pairs([base], [cand], None)
    assert (pairs.rounds_used, pairs.rounds_total) == (18, 24)
    (gb,), (gc,) = pairs.base, pairs.cand
    assert len(gb) == len(gc) == 18 * CHUNK
    assert np.median(np.asarray(gb) / np.asarray(gc)) == pytest.approx(1.3, rel=0.03)


def test_a_compared_pair_carries_each_sides_disturbed_share_and_the_steady_rounds_ratio():
    pattern = [i % 5 == 0 for i in range(20)]
    base = _chunks(np.random.default_rng(11), 1.3, pattern, key=(0, 7))
    cand = _chunks(np.random.default_rng(12), 1.0, pattern, key=(0, 7))

    def row(p):
        return {"process_samples": [[s for g in p.samples_ms for s in g]], "process_chunks": [{"key": [0, 7]}],
                "chunk_size": CHUNK}

    host = hs.pair_host(row(base), row(cand), paired=True)
    assert host["base_disturbed"] == host["cand_disturbed"] == pytest.approx(0.2)
    assert (host["steady_rounds"], host["rounds"]) == (16, 20)
    assert 1 / host["steady_ratio"] == pytest.approx(1.3, rel=0.03)  # cand/base
    unpaired = hs.pair_host(row(base), row(cand), paired=False)
    assert unpaired["steady_ratio"] != unpaired["steady_ratio"]  # NaN: rounds pair only within one run
    assert np.isnan(hs.pair_host({"process_samples": [[1.0]]}, row(cand), paired=True)["rounds"])  # no chunk size


def test_the_compare_note_says_what_the_host_did_only_when_it_disturbed_a_chunk():
    from dsabench.present.compare_text import host_note

    nan = float("nan")
    assert host_note({"base_disturbed": 0.0, "cand_disturbed": 0.0, "steady_rounds": 9.0, "rounds": 9.0}) == ""
    assert host_note({"base_disturbed": nan, "cand_disturbed": nan}) == ""  # no chunks: nothing said
    note = host_note({"base_disturbed": 0.25, "cand_disturbed": 0.1, "steady_ratio": 0.8, "steady_rounds": 30.0,
                      "rounds": 40.0})
    assert note == "host-disturbed chunks 25% base, 10% cand; steady rounds -20.0% (30 of 40 rounds)"
    none = host_note({"base_disturbed": 1.0, "cand_disturbed": 1.0, "steady_ratio": nan, "steady_rounds": 0.0,
                      "rounds": 12.0})
    assert none.endswith("no round had both sides steady (of 12)")


def test_a_rows_host_bound_share_comes_from_its_traced_device_time_on_a_gpu_only():
    gpu = {"clock": "cuda_event", "median_ms": 0.8, "kernel_ms": 0.15, "htod_ms": 0.05, "dtoh_ms": float("nan"),
           "dtod_ms": 0.0, "memset_ms": 0.0}
    assert hs.row_host_bound(gpu) == pytest.approx(0.75)
    assert hs.row_host_bound({**gpu, "clock": "host"}) is None  # a CPU has no device to wait
    assert hs.row_host_bound({**gpu, "kernel_ms": float("nan")}) is None  # no trace
