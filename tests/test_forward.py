"""The forward, in both backends: variants agree bit for bit, match the float64 oracle, refuse an
illegal view, and write the cache exactly as the fp8_ds_mla record format says."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsabench.workload import fp8
from dsabench.reference import oracle
from dsabench.errors import InvalidCase
from dsabench.workload.inputs import make_host_inputs
from dsabench.workload.variants import ALL_VARIANTS, BASELINE, PATCHED, Variant

from conftest import make_case


def _digests(backend, case):
    host = make_host_inputs(case)
    state = backend.prepare(case, host)
    out = {}
    for v in ALL_VARIANTS:
        out[v.name] = backend.output_bytes(backend.forward(state, v))
    return out


@pytest.mark.parametrize("phase", ["decode", "prefill", "mixed"])
def test_all_six_variants_give_bit_identical_outputs(backend, phase):
    outs = _digests(backend, make_case(phase=phase))
    assert len(set(outs.values())) == 1, sorted(outs)


@pytest.mark.parametrize("phase", ["decode", "prefill", "mixed"])
def test_forward_matches_the_float64_oracle_within_the_stated_bound(backend, phase):
    case = make_case(phase=phase, seed=3)
    host = make_host_inputs(case)
    state = backend.prepare(case, host)
    background = backend.cache_numpy(state).copy()
    out = backend.output_numpy(backend.forward(state, PATCHED))
    err = oracle.relative_error(out, oracle.forward(case, host, background))
    assert np.isfinite(out).all()
    assert err <= oracle.REL_ERROR_BOUND


def test_output_is_not_trivially_zero_or_constant(backend):
    case = make_case()
    state = backend.prepare(case, make_host_inputs(case))
    out = backend.output_numpy(backend.forward(state, BASELINE))
    assert np.abs(out).min(axis=-1).max() > 0
    assert out.std() > 0.05


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    phase=st.sampled_from(["decode", "prefill", "mixed"]),
    batch=st.integers(1, 3),
    context_len=st.integers(1, 70),
    prefill_len=st.integers(1, 20),
    block_size=st.sampled_from([4, 16, 64]),
    heads=st.integers(1, 5),
    topk=st.integers(1, 40),
    spare_blocks=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_variants_agree_bit_for_bit_on_random_shapes(paddle_backend, phase, batch, context_len, prefill_len,
                                                     block_size, heads, topk, spare_blocks, seed):
    probe = make_case(phase=phase, batch=batch, context_len=context_len, prefill_len=prefill_len,
                      block_size=block_size, heads=heads, topk=topk, seed=seed, num_blocks=1)
    case = make_case(phase=phase, batch=batch, context_len=context_len, prefill_len=prefill_len,
                     block_size=block_size, heads=heads, topk=topk, seed=seed,
                     num_blocks=probe.blocks_needed() + spare_blocks)
    outs = _digests(paddle_backend, case)
    assert len(set(outs.values())) == 1


def test_view_of_a_cache_with_two_heads_is_refused_with_the_reason(backend):
    case = make_case(cache_heads=2)
    state = backend.prepare(case, make_host_inputs(case))
    with pytest.raises(InvalidCase, match=r"cache heads \(dim 1\) == 1.*scrambles rows"):
        backend.forward(state, PATCHED)
    backend.forward(state, BASELINE)  # the copying layout stays legal


def test_an_unchecked_view_of_a_two_head_cache_scrambles_rows(paddle_backend):
    """The hazard raised in review of #7253: without the dim-1 check, the view reads wrong rows."""
    import paddle

    n, h, b, w = 3, 2, 4, 656
    host = (np.arange(n * h * b, dtype=np.int64)[:, None] + np.zeros(w, dtype=np.int64)).reshape(n, h, b, w)
    cache = paddle.to_tensor(host.astype(np.int32))  # each record filled with its own row number
    copied = cache.transpose([0, 2, 1, 3]).contiguous().numpy()
    unchecked = cache.view([n, b, h, w]).numpy()  # what the view does when nobody checks dim 1
    # The copy gives, at (block, offset, head), the record written at (block, head, offset) ...
    assert copied[0, 1, 0, 0] == host[0, 0, 1, 0]
    # ... the unchecked view gives another token's record: offset 2 instead of offset 1.
    assert unchecked[0, 1, 0, 0] == host[0, 0, 2, 0]
    wrong = (copied[..., 0] != unchecked[..., 0]).mean()
    assert wrong > 0.5
    # With one cache head the two agree exactly, which is why #7253's view is legal there.
    one = paddle.to_tensor(host[:, :1].astype(np.int32))
    assert np.array_equal(one.transpose([0, 2, 1, 3]).contiguous().numpy(), one.view([n, b, 1, w]).numpy())


def test_write_cache_puts_the_fp8_ds_mla_record_of_each_new_token_at_its_slot(backend):
    case = make_case(batch=3, context_len=40)
    host = make_host_inputs(case)
    state = backend.prepare(case, host)
    before = backend.cache_numpy(state).copy()
    backend.forward(state, PATCHED)
    after = backend.cache_numpy(state)
    slots = oracle.slot_mapping(host.block_tables, host.positions, host.batch_id_per_token, case.block_size)
    expected = fp8.encode_records(host.compressed_kv.astype(np.float32), host.k_pe.reshape(len(slots), -1).view(np.uint16))
    got = after[slots // case.block_size, 0, slots % case.block_size]
    assert np.array_equal(got, expected)
    changed = np.argwhere((after != before).any(axis=-1))
    assert {(int(b), int(o)) for b, _, o in changed} <= {(int(s // case.block_size), int(s % case.block_size)) for s in slots}


def test_write_cache_skips_tokens_whose_slot_is_negative(backend):
    import importlib

    mod = importlib.import_module(f"dsabench.bench.backends.{backend.name}")
    case = make_case(batch=2, context_len=10)
    host = make_host_inputs(case)
    state = backend.prepare(case, host)
    before = backend.cache_numpy(state).copy()
    slots = oracle.slot_mapping(host.block_tables, host.positions, host.batch_id_per_token, case.block_size)
    slots[0] = -1
    to = state.position_ids  # any tensor of this backend, for the conversion below
    slot_t = _like(to, slots)
    mod.write_cache(state.compressed_kv, state.k_pe, state.latent_cache, slot_t, None)
    after = backend.cache_numpy(state)
    s1 = slots[1]
    assert not np.array_equal(after[s1 // case.block_size, 0, s1 % case.block_size], before[s1 // case.block_size, 0, s1 % case.block_size])
    untouched = np.ones(after.shape[:3], dtype=bool)
    untouched[s1 // case.block_size, 0, s1 % case.block_size] = False
    assert np.array_equal(after[untouched], before[untouched])


def _like(tensor, array):
    mod = type(tensor).__module__
    if mod.startswith("torch"):
        import torch

        return torch.from_numpy(array)
    import paddle

    return paddle.to_tensor(array)


def test_scale_mode_none_skips_the_scale_phase_and_changes_nothing_else(backend):
    from dsabench.bench.backends.base import Marker

    seen = []

    class Recorder(Marker):
        def __init__(self):
            super().__init__(None, False)

        def __call__(self, name):
            import contextlib

            seen.append(name)
            return contextlib.nullcontext()

    case = make_case(phase="mixed")
    state = backend.prepare(case, make_host_inputs(case))
    backend.forward(state, Variant("none", "view"), Recorder())
    assert seen == ["scale", "slot_mapping", "write_cache", "prefill", "layout", "decode", "merge"]


def test_paddle_copies_the_transposed_cache_and_torch_does_not():
    """Why the layout change matters in Paddle: its transpose is a strided view that is not
    contiguous, so `.contiguous()` allocates and copies; torch ignores the stride of the size-1
    dim, calls the same tensor contiguous and returns it as it is."""
    paddle = pytest.importorskip("paddle")
    torch = pytest.importorskip("torch")
    shape = [8, 1, 16, 656]
    p = paddle.zeros(shape, dtype=paddle.uint8)
    pt = p.transpose([0, 2, 1, 3])
    assert not pt.is_contiguous()
    assert pt.contiguous().data_ptr() != p.data_ptr()
    t = torch.zeros(shape, dtype=torch.uint8)
    tt = t.transpose(1, 2)
    assert tt.is_contiguous()
    assert tt.contiguous().data_ptr() == t.data_ptr()


def test_layout_copy_bytes_is_the_whole_cache_in_paddle_and_zero_in_torch_or_with_the_view(backend):
    case = make_case(num_blocks=20)
    state = backend.prepare(case, make_host_inputs(case))
    copied = backend.layout_copy_bytes(state, BASELINE)
    assert copied == (case.cache_bytes() if backend.name == "paddle" else 0)
    assert backend.layout_copy_bytes(state, PATCHED) == 0
