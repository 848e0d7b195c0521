"""The forward, in both backends: variants agree bit for bit, match the float64 oracle, refuse an
illegal view, and write the cache exactly as the fp8_ds_mla record format says."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dsabench.workload import fp8
from dsabench.reference import oracle
from dsabench.errors import InvalidCase
from dsabench.workload.inputs import garbage_stripes, make_host_inputs
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


def _realistic_case(phase, batch, context_len, prefill_len, block_size, heads, topk, spare_blocks, seed):
    probe = make_case(phase=phase, batch=batch, context_len=context_len, prefill_len=prefill_len,
                      block_size=block_size, heads=heads, topk=topk, seed=seed, num_blocks=1)
    return make_case(phase=phase, batch=batch, context_len=context_len, prefill_len=prefill_len,
                     block_size=block_size, heads=heads, topk=topk, seed=seed,
                     num_blocks=probe.blocks_needed() + spare_blocks)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    phase=st.sampled_from(["decode", "prefill", "mixed"]),
    batch=st.sampled_from([1, 2, 3, 5]),  # odd batches, and a mixed batch's decode requests after its prefill
    context_len=st.integers(1, 150),  # shorter and longer than topk; rarely a multiple of the block size
    prefill_len=st.integers(1, 40),
    block_size=st.sampled_from([16, 32, 64]),
    heads=st.sampled_from([1, 3, 5, 7, 16]),
    topk=st.integers(1, 96),
    spare_blocks=st.sampled_from([0, 1, 7, 40]),  # exact fit up to a cache mostly of free blocks
    seed=st.integers(0, 2**16),
)
# DeepSeek-V3.2's normal decode and a mixed batch: top-k past the context, in a cache of mostly free blocks
@example(phase="decode", batch=3, context_len=10, prefill_len=1, block_size=16, heads=5, topk=64, spare_blocks=40, seed=0)
@example(phase="mixed", batch=5, context_len=37, prefill_len=13, block_size=32, heads=7, topk=96, spare_blocks=40,
         seed=1)
def test_on_realistic_shapes_over_garbage_caches_variants_agree_outputs_are_finite_and_match_the_oracle(
        backend, phase, batch, context_len, prefill_len, block_size, heads, topk, spare_blocks, seed):
    case = _realistic_case(phase, batch, context_len, prefill_len, block_size, heads, topk, spare_blocks, seed)
    host = make_host_inputs(case)
    state = backend.prepare(case, host)
    background = backend.cache_numpy(state).copy()
    outs = {}
    for v in ALL_VARIANTS:
        result = backend.forward(state, v)
        outs[v.name] = backend.output_bytes(result)
        if v == PATCHED:
            out = backend.output_numpy(result)
    assert len(set(outs.values())) == 1
    assert np.isfinite(out).all(), f"{np.count_nonzero(~np.isfinite(out))} non-finite of {out.size}"
    assert oracle.relative_error(out, oracle.forward(case, host, background)) <= oracle.REL_ERROR_BOUND


def _context_rows(case, host) -> np.ndarray:
    """Rows of the flat cache [num_blocks * cache_heads * block_size, 656] that hold context records."""
    return host.context_slots // case.block_size * (case.cache_heads * case.block_size) + host.context_slots % case.block_size


@pytest.mark.parametrize("block_size", [16, 32, 64])
def test_unused_cache_records_hold_nan_and_inf_garbage_and_context_records_stay_valid(backend, block_size):
    """Free blocks, the tail of a partly used block and cache head 1 all get the garbage stripes."""
    case = make_case(batch=3, context_len=21, cache_heads=2, block_size=block_size, num_blocks=12, seed=5)
    host = make_host_inputs(case)
    cache = backend.cache_numpy(backend.prepare(case, host)).reshape(-1, fp8.RECORD_BYTES)
    context = _context_rows(case, host)
    unused = np.ones(len(cache), dtype=bool)
    unused[context] = False
    last = host.block_tables[0, 20 // block_size]  # the block of request 0's last context token
    tail = last * case.cache_heads * block_size + np.arange(21 % block_size, block_size)
    assert unused[tail].all() and len(tail) > 0  # a partly used block's unused tail is among them
    words = cache.view("<i4")
    for row_sel, word_sel, word in garbage_stripes():
        rows = np.zeros(len(cache), dtype=bool)
        rows[row_sel] = True
        assert (words[rows & unused, word_sel] == word).all()
    latent, _, scales = fp8.decode_records(np.ascontiguousarray(cache[unused]))
    assert np.isnan(latent).any(axis=1).mean() > 0.5  # most garbage records dequantize to NaN somewhere
    assert np.isnan(scales).any() and np.isposinf(scales).any() and np.isneginf(scales).any()
    np.testing.assert_array_equal(cache[context], host.context_records)


def test_garbage_depends_only_on_the_case_seed(backend):
    case = make_case(context_len=5, num_blocks=8, seed=11)
    first = backend.cache_numpy(backend.prepare(case, make_host_inputs(case))).copy()
    again = backend.cache_numpy(backend.prepare(case, make_host_inputs(case)))
    other = make_case(context_len=5, num_blocks=8, seed=12)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, backend.cache_numpy(backend.prepare(other, make_host_inputs(other))))


def test_masked_topk_entries_never_reach_the_output_when_slot_0_is_nan_garbage(backend):
    """DeepSeek-V3.2's normal decode: top-k above the context, a cache with free blocks.

    Indices past the context are -1. Gathering them as slot 0 and weighting by zero gave NaN
    wherever slot 0 held an fp8 NaN code or a NaN scale (0 * NaN = NaN), in every variant alike.
    """
    case = make_case(batch=3, context_len=10, topk=32, num_blocks=64, seed=0)
    host = make_host_inputs(case)
    assert 0 not in host.block_tables  # slot 0 is a free block's record: garbage
    assert (host.decode_indices == -1).any()
    state = backend.prepare(case, host)
    slot0 = backend.cache_numpy(state)[0, 0, 0]
    latent, _, scales = fp8.decode_records(slot0[None])
    assert np.isnan(scales).any() and np.isnan(latent).any()
    background = backend.cache_numpy(state).copy()
    out = backend.output_numpy(backend.forward(state, PATCHED))
    assert np.isfinite(out).all(), f"{np.count_nonzero(~np.isfinite(out))} non-finite of {out.size}"
    assert oracle.relative_error(out, oracle.forward(case, host, background)) <= oracle.REL_ERROR_BOUND


def test_masked_prefill_indices_never_reach_the_output(backend):
    """Prefill indices past a token's causal prefix are -1; they must not read row 0 either."""
    import importlib

    mod = importlib.import_module(f"dsabench.bench.backends.{backend.name}")
    rng = np.random.default_rng(0)
    kv = rng.standard_normal((3, 1, oracle.HEAD_DIM)).astype(np.float32)
    kv[0] = np.nan  # row 0 is never selected below, only gathered for the masked entries
    q = rng.standard_normal((3, 2, oracle.HEAD_DIM)).astype(np.float32)
    idx = np.array([[[1, -1, -1]], [[2, 1, -1]], [[-1, 2, 1]]], dtype=np.int32)
    state = backend.prepare(make_case(), make_host_inputs(make_case()))
    out = mod.sparse_prefill(_bf16_like(state.q, q), _bf16_like(state.q, kv), _like(state.position_ids, idx), 0.1)
    got = backend.output_numpy(out)
    assert np.isfinite(got).all()
    want = oracle.sparse_prefill(q.astype(ml_dtypes.bfloat16), kv.astype(ml_dtypes.bfloat16), idx, 0.1)
    assert oracle.relative_error(got, want) <= oracle.REL_ERROR_BOUND


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


def _bf16_like(tensor, array):
    """A bf16 tensor of this backend holding float32 `array` rounded to bf16."""
    bits = np.ascontiguousarray(array.astype(ml_dtypes.bfloat16).view(np.uint16))
    mod = type(tensor).__module__
    if mod.startswith("torch"):
        import torch

        return torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16)
    import paddle

    return paddle.to_tensor(bits).view(paddle.bfloat16)


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
