"""The memory probe in the host-steady rule (issue 22): a chunk whose memory probe ran more than
MEMORY_SLOW x the reference is disturbed for 'memory'; the memory reference exists only where every
chunk compared recorded one, so two runs of which one has no memory probe are judged alike."""

from __future__ import annotations

from dsabench.analysis import chunk_evidence as ce
from dsabench.analysis import host_steady as hs


def _process(memory: list, probe: float = 60.0, key=(0, 1)) -> hs.ProcessChunks:
    chunks = [{"round": i, "samples": 2, "host_ms": 5.0, "probe_us": probe,
               **({} if m is None else {"memory_probe_us": m})} for i, m in enumerate(memory)]
    return hs.process_chunks([0.6] * (2 * len(memory)), chunks, key=key)


def test_a_chunk_whose_memory_probe_is_beyond_the_line_is_disturbed_for_memory_alone():
    p = _process([300.0] * 9 + [300.0 * ce.MEMORY_SLOW * 1.1])
    ref = hs.probe_reference([p])
    assert ref == 60.0 and ref.memory_us == 300.0
    reasons = [hs.evidence_reasons(e, ref) for e in p.evidence]
    assert reasons == [[]] * 9 + [["memory"]]


def test_a_memory_probe_just_under_the_line_keeps_the_chunk_steady():
    p = _process([300.0] * 9 + [300.0 * ce.MEMORY_SLOW * 0.99])
    assert all(not hs.evidence_reasons(e, hs.probe_reference([p])) for e in p.evidence)


def test_no_memory_reference_when_one_side_recorded_no_memory_probe():
    with_memory = _process([300.0] * 5 + [3000.0], key=(0, 1))
    without = _process([None] * 6, key=(1, 2))
    ref = hs.probe_reference([with_memory, without])
    assert ref == 60.0 and ref.memory_us is None
    assert all(not hs.evidence_reasons(e, ref) for e in with_memory.evidence)


def test_a_plain_float_reference_judges_the_interpreter_probe_alone():
    ev = {"probe_us": 100.0, "memory_probe_us": 1e6, "host_ms": 5.0}
    assert hs.evidence_reasons(ev, 60.0) == ["probe"]
