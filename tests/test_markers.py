"""What a timed forward carries: nothing with NULL_MARKER; with --nvtx, NVTX ranges and no
framework profiler ranges; the profiled pass carries the framework ranges."""

from __future__ import annotations

import pytest

from dsabench.bench.backends.base import NULL_MARKER, nvtx_marker
from dsabench.workload.inputs import make_host_inputs
from dsabench.workload.phases import PHASE_NAMES
from dsabench.workload.variants import BASELINE

from conftest import make_case


def test_the_null_marker_hands_every_phase_one_shared_context_that_does_nothing():
    contexts = {id(NULL_MARKER(name)) for name in PHASE_NAMES}
    assert len(contexts) == 1
    with NULL_MARKER("decode") as entered:
        assert entered is None


def _phase_ranges_seen_by_torch_profiler(mark_of) -> set[str]:
    torch = pytest.importorskip("torch")
    from dsabench.bench.backends.torch import TorchBackend

    backend = TorchBackend("cpu")
    case = make_case(phase="mixed")
    state = backend.prepare(case, make_host_inputs(case))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        backend.forward(state, BASELINE, mark_of(backend))
    return {e.name for e in prof.events()} & set(PHASE_NAMES)


def test_nvtx_marks_of_a_timed_forward_open_no_framework_profiler_range():
    assert _phase_ranges_seen_by_torch_profiler(lambda backend: nvtx_marker()) == set()


def test_the_profiled_pass_marks_every_phase_of_a_mixed_forward_as_a_profiler_range():
    seen = _phase_ranges_seen_by_torch_profiler(lambda backend: backend.marker(True))
    assert seen == {"scale", "slot_mapping", "write_cache", "prefill", "layout", "decode", "merge"}
