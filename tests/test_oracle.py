"""The float64 reference forward: hand-checkable attention, cache writes, and the full forward's wiring."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dsabench.workload import fp8
from dsabench.reference import oracle
from dsabench.workload.cases import Case
from dsabench.workload.inputs import garbage_records, make_host_inputs
from dsabench.workload.variants import BASELINE

BF16 = ml_dtypes.bfloat16
D = oracle.HEAD_DIM


def kv_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """bf16 kv [n, 1, 576] with small-integer values, so sums of them are exact."""
    return rng.integers(-8, 9, (n, 1, D)).astype(BF16)


def idx(*rows: list[int]) -> np.ndarray:
    return np.array(rows, dtype=np.int32)[:, None, :]


def tiny_case(phase: str, **overrides) -> Case:
    params = dict(
        scenario="test", phase=phase, batch=2, context_len=5, prefill_len=6, num_blocks=16, block_size=4,
        cache_heads=1, heads=2, topk=4, variant=BASELINE, graph=False, seed=7,
    )  # fmt: skip
    params.update(overrides)
    return Case(**params)


def random_cache(case: Case, seed: int = 0) -> np.ndarray:
    """Garbage everywhere (random bytes, fp8 NaN codes, NaN/inf scales): what unwritten slots hold."""
    shape = (case.num_blocks, case.cache_heads, case.block_size, fp8.RECORD_BYTES)
    return garbage_records(np.random.default_rng(seed), int(np.prod(shape[:3]))).reshape(shape)


def explicit_cache(case: Case, background: np.ndarray):
    """The cache a forward attends, built step by step with the public functions."""
    hi = make_host_inputs(case)
    cache = background.copy()
    cache[hi.context_slots // hi.block_size, 0, hi.context_slots % hi.block_size] = hi.context_records
    slots = oracle.slot_mapping(hi.block_tables, hi.positions, hi.batch_id_per_token, hi.block_size)
    return hi, oracle.write_cache(cache, slots, hi.compressed_kv, hi.k_pe)


# --- slot mapping ---


def test_slot_mapping_follows_the_block_table_of_each_tokens_request() -> None:
    tables = np.array([[3, 1], [0, 2]], dtype=np.int32)
    positions = np.array([0, 5, 3, 7])
    batch = np.array([0, 0, 1, 1])
    assert oracle.slot_mapping(tables, positions, batch, 4).tolist() == [12, 5, 3, 11]


def test_a_token_without_a_block_maps_to_slot_minus_one() -> None:
    tables = np.array([[2, -1]], dtype=np.int32)
    assert oracle.slot_mapping(tables, np.array([1, 6]), np.array([0, 0]), 4).tolist() == [9, -1]


def test_slot_mapping_refuses_a_position_past_the_block_table() -> None:
    with pytest.raises(ValueError, match="positions span"):
        oracle.slot_mapping(np.zeros((1, 2), np.int32), np.array([8]), np.array([0]), 4)


# --- attention on hand-made keys ---


def test_a_single_valid_index_returns_exactly_the_value_of_that_key() -> None:
    rng = np.random.default_rng(0)
    kv = kv_rows(rng, 5)
    q = rng.standard_normal((2, 3, D)).astype(BF16)
    out = oracle.sparse_prefill(q, kv, idx([3, -1, -1], [-1, 0, -1]), scale=0.7)
    np.testing.assert_array_equal(out[0], np.broadcast_to(kv[3, 0, :512].astype(np.float64), (3, 512)))
    np.testing.assert_array_equal(out[1], np.broadcast_to(kv[0, 0, :512].astype(np.float64), (3, 512)))


def test_keys_with_equal_logits_are_averaged() -> None:
    kv = kv_rows(np.random.default_rng(1), 4)
    q = np.zeros((1, 1, D), dtype=BF16)  # every logit is 0
    out = oracle.sparse_prefill(q, kv, idx([0, 2]), scale=1.0)
    np.testing.assert_allclose(out[0, 0], (kv[0, 0, :512].astype(np.float64) + kv[2, 0, :512]) / 2, rtol=1e-15)


def test_softmax_weighs_keys_by_exp_of_scaled_logits() -> None:
    """Logits ln 3 and 0 weigh the two values 3/4 and 1/4."""
    kv = np.zeros((2, 1, D), dtype=np.float64)
    kv[0, 0, 0], kv[0, 0, 1] = 2.0, 1.0
    kv[1, 0, 1] = 5.0
    scale = math.log(3.0) / 2.0  # logit of key 0: scale * q . k = ln 3, of key 1: 0
    q = np.zeros((1, 1, D))
    q[0, 0, 0] = 1.0
    out = oracle.sparse_prefill(q, kv.astype(BF16), idx([0, 1]), scale)
    np.testing.assert_allclose(out[0, 0, :2], [0.75 * 2.0, 0.75 * 1.0 + 0.25 * 5.0], rtol=1e-14)


def test_masked_indices_are_ignored_wherever_they_appear() -> None:
    rng = np.random.default_rng(2)
    kv = kv_rows(rng, 6)
    q = rng.standard_normal((1, 4, D)).astype(BF16)
    with_masks = oracle.sparse_prefill(q, kv, idx([-1, 4, -1, 1, -1]), 0.1)
    np.testing.assert_array_equal(with_masks, oracle.sparse_prefill(q, kv, idx([4, 1]), 0.1))


def test_a_masked_index_contributes_nothing_even_when_row_0_is_nan() -> None:
    """-1 is gathered as row 0 and weighted by zero; 0 * NaN would be NaN, so the row is zeroed first."""
    rng = np.random.default_rng(8)
    kv = kv_rows(rng, 3)
    kv[0] = np.nan
    q = rng.standard_normal((1, 2, D)).astype(BF16)
    out = oracle.sparse_prefill(q, kv, idx([2, -1, 1]), 0.1)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, oracle.sparse_prefill(q, kv, idx([2, 1]), 0.1))


def test_a_token_with_every_index_masked_outputs_zeros() -> None:
    rng = np.random.default_rng(3)
    out = oracle.sparse_prefill(rng.standard_normal((2, 2, D)), kv_rows(rng, 2), idx([-1, -1], [1, -1]), 0.1)
    assert not out[0].any()
    assert out[1].any()


def test_an_index_outside_the_keys_is_refused() -> None:
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="indices holds 2"):
        oracle.sparse_prefill(rng.standard_normal((1, 1, D)), kv_rows(rng, 2), idx([0, 2]), 0.1)


# --- the fp8 cache ---


def one_record(rng: np.random.Generator) -> np.ndarray:
    latent = rng.standard_normal((1, 512), dtype=np.float32)
    return fp8.encode_records(latent, rng.standard_normal((1, 64), dtype=np.float32).astype(BF16).view(np.uint16))


def test_decode_reads_head_0_of_the_slots_block_and_offset_and_dequantizes_it() -> None:
    rng = np.random.default_rng(5)
    cache = np.zeros((3, 2, 4, 656), dtype=np.uint8)
    rec = one_record(rng)
    cache[2, 0, 1] = rec[0]  # slot 2 * 4 + 1
    cache[2, 1, 1] = one_record(rng)[0]  # head 1 is never read
    out = oracle.sparse_decode(rng.standard_normal((1, 2, D)), cache, idx([9, -1]), 0.1)
    latent, _, _ = fp8.decode_records(rec)
    np.testing.assert_array_equal(out[0], np.broadcast_to(latent[0].astype(np.float64), (2, 512)))


def test_decode_keys_are_the_dequantized_latent_and_the_bf16_rope() -> None:
    """Two keys, q picking out one rope lane: their softmax weights follow that rope value."""
    rng = np.random.default_rng(6)
    cache = np.zeros((1, 1, 4, 656), dtype=np.uint8)
    cache[0, 0, :2] = np.concatenate([one_record(rng), one_record(rng)])
    latent, rope_bits, _ = fp8.decode_records(cache[0, 0, :2])
    q = np.zeros((1, 1, D))
    q[0, 0, 512 + 7] = 1.0
    logits = rope_bits.view(BF16)[:, 7].astype(np.float64)
    w = np.exp(logits - logits.max())
    want = (w / w.sum()) @ latent.astype(np.float64)
    np.testing.assert_allclose(oracle.sparse_decode(q, cache, idx([0, 1]), 1.0)[0, 0], want, rtol=1e-12)


def test_write_cache_writes_head_0_skips_negative_slots_and_leaves_its_input_alone() -> None:
    rng = np.random.default_rng(7)
    cache = rng.integers(0, 256, (2, 2, 4, 656), dtype=np.uint8)
    before = cache.copy()
    latent = rng.standard_normal((2, 512), dtype=np.float32).astype(BF16)
    rope = rng.standard_normal((2, 1, 64), dtype=np.float32).astype(BF16)
    out = oracle.write_cache(cache, np.array([6, -1]), latent, rope)
    np.testing.assert_array_equal(cache, before)
    want = fp8.encode_records(latent[:1].astype(np.float32), rope[:1, 0].view(np.uint16))[0]
    np.testing.assert_array_equal(out[1, 0, 2], want)
    changed = np.argwhere((out != before).any(axis=-1)).tolist()
    assert changed == [[1, 0, 2]]


def test_write_cache_refuses_a_slot_past_the_cache() -> None:
    kv, rope = np.zeros((1, 512), BF16), np.zeros((1, 1, 64), BF16)
    with pytest.raises(ValueError, match="slots holds 8"):
        oracle.write_cache(np.zeros((2, 1, 4, 656), np.uint8), np.array([8]), kv, rope)


# --- merge, error, bound ---


def test_merge_takes_decode_rows_where_the_mask_is_set() -> None:
    prefill, decode = np.zeros((3, 1, 512)), np.ones((3, 1, 512))
    merged = oracle.merge(prefill, decode, np.array([True, False, True]))
    assert merged[:, 0, 0].tolist() == [1.0, 0.0, 1.0]


def test_relative_error_is_the_frobenius_norm_of_the_difference_over_that_of_the_reference() -> None:
    assert oracle.relative_error(np.array([3.0, 4.5]), np.array([3.0, 4.0])) == pytest.approx(0.1)
    assert oracle.relative_error(np.zeros(2), np.zeros(2)) == 0.0
    assert oracle.relative_error(np.ones(2), np.zeros(2)) == math.inf


def test_rounding_the_reference_output_to_bf16_stays_well_inside_the_bound() -> None:
    case = tiny_case("decode")
    ref = oracle.forward(case, make_host_inputs(case), random_cache(case))
    assert oracle.relative_error(ref.astype(BF16), ref) < oracle.REL_ERROR_BOUND / 2


# --- the full forward ---


def test_forward_of_a_tiny_decode_case_is_finite_and_shaped_tokens_heads_latent() -> None:
    case = tiny_case("decode")
    out = oracle.forward(case, make_host_inputs(case), random_cache(case))
    assert out.shape == (case.num_tokens, case.heads, 512)
    assert out.dtype == np.float64
    assert np.isfinite(out).all()


@pytest.mark.parametrize("phase", ["decode", "prefill", "mixed"])
def test_forward_never_reads_the_unwritten_part_of_the_cache(phase: str) -> None:
    case = tiny_case(phase)
    hi = make_host_inputs(case)
    first = oracle.forward(case, hi, random_cache(case, seed=1))
    np.testing.assert_array_equal(first, oracle.forward(case, hi, random_cache(case, seed=2)))


@settings(max_examples=25, deadline=None)
@given(
    phase=st.sampled_from(["decode", "prefill", "mixed"]),
    batch=st.sampled_from([1, 2, 3, 5]),
    context_len=st.integers(1, 150),
    prefill_len=st.integers(1, 40),
    block_size=st.sampled_from([16, 32, 64]),
    cache_heads=st.sampled_from([1, 2]),
    heads=st.sampled_from([1, 3, 7]),
    topk=st.integers(1, 96),
    spare_blocks=st.sampled_from([0, 1, 7, 40]),
    seed=st.integers(0, 2**16),
)
@example(phase="decode", batch=3, context_len=10, prefill_len=1, block_size=16, cache_heads=1, heads=3, topk=64,
         spare_blocks=40, seed=0)
def test_forward_over_garbage_caches_is_finite_and_independent_of_the_garbage(
        phase, batch, context_len, prefill_len, block_size, cache_heads, heads, topk, spare_blocks, seed) -> None:
    """Short contexts against a larger top-k, partial blocks, slack caches, odd batches and heads."""
    probe = tiny_case(phase, batch=batch, context_len=context_len, prefill_len=prefill_len, block_size=block_size,
                      cache_heads=cache_heads, heads=heads, topk=topk, seed=seed, num_blocks=1)
    case = tiny_case(phase, batch=batch, context_len=context_len, prefill_len=prefill_len, block_size=block_size,
                     cache_heads=cache_heads, heads=heads, topk=topk, seed=seed,
                     num_blocks=probe.blocks_needed() + spare_blocks)
    hi = make_host_inputs(case)
    first = oracle.forward(case, hi, random_cache(case, seed=1))
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, oracle.forward(case, hi, random_cache(case, seed=2)))


def test_forward_decode_equals_decode_over_the_explicitly_written_cache() -> None:
    case = tiny_case("decode", cache_heads=2)
    background = random_cache(case)
    hi, cache = explicit_cache(case, background)
    want = oracle.sparse_decode(hi.q, cache, hi.decode_indices, hi.softmax_scale)
    np.testing.assert_array_equal(oracle.forward(case, hi, background), want)


def test_forward_prefill_equals_prefill_over_the_new_tokens() -> None:
    case = tiny_case("prefill")
    hi = make_host_inputs(case)
    want = oracle.sparse_prefill(hi.q, hi.prefill_kv, hi.prefill_indices, hi.softmax_scale)
    np.testing.assert_array_equal(oracle.forward(case, hi, random_cache(case)), want)


def test_forward_mixed_merges_decode_and_prefill_by_the_decode_token_mask() -> None:
    case = tiny_case("mixed")
    background = random_cache(case)
    hi, cache = explicit_cache(case, background)
    decode = oracle.sparse_decode(hi.q, cache, hi.decode_indices, hi.softmax_scale)
    prefill = oracle.sparse_prefill(hi.q, hi.prefill_kv, hi.prefill_indices, hi.softmax_scale)
    want = oracle.merge(prefill, decode, hi.decode_token_mask)
    np.testing.assert_array_equal(oracle.forward(case, hi, background), want)


def test_forward_refuses_a_background_cache_of_another_shape() -> None:
    case = tiny_case("decode")
    with pytest.raises(ValueError, match="background_cache has shape"):
        oracle.forward(case, make_host_inputs(case), np.zeros((1, 1, 4, 656), np.uint8))
