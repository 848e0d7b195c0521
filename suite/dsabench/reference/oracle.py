"""NumPy float64 reference of one DSA forward: slot mapping, write-cache, sparse decode/prefill, merge.

It consumes the same quantized inputs as the framework (bf16 q, bf16 new latent and rope, the
fp8_ds_mla records of the cache) and computes the attention itself in float64, so the difference
between a backend's output and `forward` is the backend's arithmetic alone (plus any bug).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ml_dtypes
import numpy as np

from dsabench.workload import fp8
from dsabench.workload.cases import Case
from dsabench.workload.inputs import HostInputs

BF16 = ml_dtypes.bfloat16
LATENT = fp8.LATENT
HEAD_DIM = fp8.LATENT + fp8.ROPE  # 576: keys are [latent 512, rope 64]; values are the latent
MASKED = -1
_GATHER_BYTES = 1 << 26  # float64 bytes of gathered keys per step of the attention loop

# Bound on relative_error(backend output, forward(...)) for a correct backend.
#
# Both sides see identical inputs (bf16 q, bf16 kv for prefill, the same fp8 codes and float32
# tile scales for decode), so only the backend's arithmetic differs from this float64 reference:
# - the output is rounded to bf16: unit roundoff u = 2^-8 ~ 3.9e-3 per element; the rounding
#   error is uniform within half an ulp and the ulp is 2^-7 / mantissa of |x|, so the rms
#   relative error, which is what ||out - ref|| / ||ref|| measures, is ~2^-7 / 1.44 / sqrt(12)
#   ~ 1.6e-3 (1.66e-3 measured for a float32 computation, decode, prefill and mixed alike);
# - float32 accumulation over 576-wide dot products and <= 2048-key sums adds ~1e-6: negligible;
# - a fused GPU kernel may also round the dequantized keys (fp8 code * scale) and the
#   probabilities P to bf16 before its tensor-core products. Key rounding moves each logit by
#   ~scale * sqrt(576) * 1.6e-3 ~ 5e-3 (scale 0.135, unit-variance q and latent), and a logit
#   error e changes the output by a relative ~e: 3.9e-3 measured for such a simulated decode.
# 1e-2 leaves 2.5x room over the worst expected arithmetic and stays well below what bugs cost:
# attending the bf16 latent instead of its fp8 quantization is ~5e-2, a softmax scale off by
# mscale^2 ~6e-1, a wrong tile scale, slot or stale cache entry 1e-1 to 1.
REL_ERROR_BOUND = 1e-2


def _ints(arr: np.ndarray, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != ndim or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} has shape {arr.shape} and dtype {arr.dtype}; expected a {ndim}-D integer array")
    return arr.astype(np.int64)


def slot_mapping(
    block_tables: np.ndarray, positions: np.ndarray, batch_id_per_token: np.ndarray, block_size: int
) -> np.ndarray:
    """Cache slot of each new token: block_tables[batch, pos // bs] * bs + pos % bs, int64 [T].

    A token whose table entry is -1 (no block) gets slot -1, which write-cache skips.
    """
    if block_size <= 0:
        raise ValueError(f"block_size is {block_size}; expected a positive integer")
    tables = _ints(block_tables, "block_tables", 2)
    pos = _ints(positions, "positions", 1)
    batch = _ints(batch_id_per_token, "batch_id_per_token", 1)
    if pos.shape != batch.shape:
        raise ValueError(f"positions has shape {pos.shape} but batch_id_per_token {batch.shape}; expected equal")
    if len(pos) and (pos.min() < 0 or (pos // block_size).max() >= tables.shape[1]):
        raise ValueError(f"positions span {pos.min()}..{pos.max()}; expected 0..{tables.shape[1] * block_size - 1}")
    if len(batch) and (batch.min() < 0 or batch.max() >= tables.shape[0]):
        raise ValueError(f"batch_id_per_token spans {batch.min()}..{batch.max()}; expected 0..{tables.shape[0] - 1}")
    block = tables[batch, pos // block_size]
    return np.where(block >= 0, block * block_size + pos % block_size, MASKED)


def _check_cache(cache: np.ndarray, name: str = "cache") -> None:
    if cache.dtype != np.uint8 or cache.ndim != 4 or cache.shape[-1] != fp8.RECORD_BYTES:
        raise ValueError(
            f"{name} has shape {cache.shape} and dtype {cache.dtype}; expected uint8 "
            f"[num_blocks, cache_heads, block_size, {fp8.RECORD_BYTES}]"
        )


def _check_slots(slots: np.ndarray, cache: np.ndarray, name: str) -> None:
    """Slots must be -1 (skipped/masked) or address a record of the cache."""
    capacity = cache.shape[0] * cache.shape[2]
    bad = (slots < MASKED) | (slots >= capacity)
    if bad.any():
        raise ValueError(f"{name} holds {slots[bad][0]}; expected -1 or a slot in 0..{capacity - 1}")


def _new_records(compressed_kv: np.ndarray, k_pe: np.ndarray) -> np.ndarray:
    """Records of the new tokens, from bf16 compressed_kv [T, 512] and k_pe [T, 1, 64]."""
    latent = np.asarray(compressed_kv).astype(BF16).astype(np.float32)
    rope = np.asarray(k_pe).astype(BF16)
    if latent.ndim != 2 or rope.shape != (latent.shape[0], 1, fp8.ROPE):
        raise ValueError(
            f"compressed_kv has shape {latent.shape} and k_pe {rope.shape}; "
            f"expected [T, {LATENT}] and [T, 1, {fp8.ROPE}]"
        )
    return fp8.encode_records(latent, rope.reshape(-1, fp8.ROPE).view(np.uint16))


def _store(cache: np.ndarray, slots: np.ndarray, records: np.ndarray) -> None:
    """Write records at slots (head 0) in place; slot < 0 is skipped, as the kernel does."""
    keep = slots >= 0
    s = slots[keep]
    cache[s // cache.shape[2], 0, s % cache.shape[2]] = records[keep]


def write_cache(cache: np.ndarray, slots: np.ndarray, compressed_kv: np.ndarray, k_pe: np.ndarray) -> np.ndarray:
    """A copy of cache with the new tokens' records written at their slots (head 0, slot < 0 skipped)."""
    cache = np.asarray(cache)
    _check_cache(cache)
    slots = _ints(slots, "slots", 1)
    _check_slots(slots, cache, "slots")
    records = _new_records(compressed_kv, k_pe)
    if len(records) != len(slots):
        raise ValueError(f"slots has {len(slots)} entries; expected {len(records)}, one per new token")
    out = cache.copy()
    _store(out, slots, records)
    return out


def _keys_of_records(records: np.ndarray) -> np.ndarray:
    """float64 keys [N, 576] of records: dequantized latent, then the bf16 rope."""
    latent, rope_bits, _ = fp8.decode_records(records)
    rope = rope_bits.view(BF16).astype(np.float64)
    return np.concatenate([latent.astype(np.float64), rope], axis=1)


def _indices(indices: np.ndarray, tokens: int, name: str) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 3 or idx.shape[:2] != (tokens, 1) or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{name} has shape {idx.shape} and dtype {idx.dtype}; expected integer [{tokens}, 1, topk]")
    return idx[:, 0, :].astype(np.int64)


def _query(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q)
    if q.ndim != 3 or q.shape[2] != HEAD_DIM:
        raise ValueError(f"q has shape {q.shape}; expected [T, H, {HEAD_DIM}]")
    return q.astype(np.float64)


def _attend(q: np.ndarray, keys: np.ndarray, idx: np.ndarray, scale: float) -> np.ndarray:
    """softmax(scale * q . K[idx]) . V[idx] per token in float64, idx -1 excluded, [T, H, 512].

    q: [T, H, 576] float64; keys: [S, 576] float64 (V = keys[:, :512]); idx: [T, topk] rows of
    keys or -1; a -1 contributes nothing, whatever row 0 holds (its gathered key and value are
    zeroed). A token with no valid index outputs zeros. Tokens go in steps that bound the
    gathered keys to _GATHER_BYTES.
    """
    t, h, _ = q.shape
    topk = idx.shape[1]
    out = np.zeros((t, h, LATENT), dtype=np.float64)
    if len(keys) == 0:
        keys = np.zeros((1, HEAD_DIM), dtype=np.float64)  # only masked indices can exist; gather row 0 harmlessly
    step = max(1, _GATHER_BYTES // max(1, topk * HEAD_DIM * 8))
    for lo in range(0, t, step):
        sel = idx[lo : lo + step]
        valid = sel != MASKED
        k = keys[np.where(valid, sel, 0)]  # [c, topk, 576]
        k[~valid] = 0.0  # a masked entry gathered row 0: zero it, so 0 * (NaN or inf) never reaches the output
        logits = scale * np.matmul(q[lo : lo + step], k.transpose(0, 2, 1))  # [c, H, topk]
        logits = np.where(valid[:, None, :], logits, -np.inf)
        peak = logits.max(axis=2, keepdims=True, initial=-np.inf)
        peak = np.where(np.isfinite(peak), peak, 0.0)
        p = np.exp(logits - peak)
        denom = p.sum(axis=2, keepdims=True)
        pv = np.matmul(p, k[:, :, :LATENT])
        out[lo : lo + step] = np.divide(pv, denom, out=np.zeros_like(pv), where=denom > 0)
    return out


def _decode_from(
    q: np.ndarray, idx: np.ndarray, records_of: Callable[[np.ndarray], np.ndarray], scale: float
) -> np.ndarray:
    """Decode attention where records_of(unique slots) returns those slots' records."""
    slots, local = np.unique(idx, return_inverse=True)
    local = local.reshape(idx.shape)
    if len(slots) and slots[0] == MASKED:
        slots, local = slots[1:], local - 1  # -1 sorts first: masked entries map back to -1
    return _attend(q, _keys_of_records(records_of(slots)), local, scale)


def _gather(cache: np.ndarray, slots: np.ndarray) -> np.ndarray:
    return cache[slots // cache.shape[2], 0, slots % cache.shape[2]]


def sparse_decode(q: np.ndarray, cache: np.ndarray, indices: np.ndarray, scale: float) -> np.ndarray:
    """Sparse MLA decode over the fp8 cache in float64: [T, H, 512].

    indices [T, 1, topk] are global slots (block * block_size + offset) of head 0, -1 masked.
    Keys are [fp8 code * tile scale, bf16 rope]; values are the dequantized latent.
    """
    cache = np.asarray(cache)
    _check_cache(cache)
    q64 = _query(q)
    idx = _indices(indices, q64.shape[0], "indices")
    _check_slots(idx, cache, "indices")
    return _decode_from(q64, idx, lambda slots: _gather(cache, slots), scale)


def sparse_prefill(q: np.ndarray, kv: np.ndarray, indices: np.ndarray, scale: float) -> np.ndarray:
    """Sparse MLA prefill over the new tokens' bf16 kv [T, 1, 576] in float64: [T, H, 512].

    indices [T, 1, topk] are rows of kv, -1 masked; keys are kv, values kv[..., :512].
    """
    q64 = _query(q)
    kv = np.asarray(kv)
    if kv.ndim != 3 or kv.shape[1:] != (1, HEAD_DIM):
        raise ValueError(f"kv has shape {kv.shape}; expected [T, 1, {HEAD_DIM}]")
    idx = _indices(indices, q64.shape[0], "indices")
    bad = (idx < MASKED) | (idx >= kv.shape[0])
    if bad.any():
        raise ValueError(f"indices holds {idx[bad][0]}; expected -1 or a row of kv in 0..{kv.shape[0] - 1}")
    return _attend(q64, kv[:, 0, :].astype(np.float64), idx, scale)


def merge(prefill_out: np.ndarray, decode_out: np.ndarray, decode_token_mask: np.ndarray) -> np.ndarray:
    """Per token, the decode output where decode_token_mask is true, else the prefill output."""
    mask = np.asarray(decode_token_mask, dtype=bool)
    if prefill_out.shape != decode_out.shape or mask.shape != prefill_out.shape[:1]:
        raise ValueError(
            f"prefill_out {prefill_out.shape}, decode_out {decode_out.shape}, decode_token_mask {mask.shape}; "
            "expected equal outputs [T, H, 512] and a mask [T]"
        )
    return np.where(mask[:, None, None], decode_out, prefill_out)


def _records_after_writes(
    background: np.ndarray, writes: Sequence[tuple[np.ndarray, np.ndarray]], slots: np.ndarray
) -> np.ndarray:
    """Records at sorted unique slots of background after the writes (slots, records), in order.

    Same result as copying the cache and writing into it, without copying a cache that may be
    many gigabytes when only the slots the indices reference are read.
    """
    out = _gather(background, slots)
    for written, records in writes:
        pos = np.searchsorted(slots, written)
        hit = (written >= 0) & (pos < len(slots))
        hit[hit] = slots[pos[hit]] == written[hit]
        out[pos[hit]] = records[hit]
    return out


def forward(case: Case, host_inputs: HostInputs, background_cache: np.ndarray) -> np.ndarray:
    """The reference output [T, H, 512] float64 of one forward of `case` on `host_inputs`.

    The cache is background_cache with the context records at their slots (head 0), then the
    new tokens written at their mapped slots; decode attends the cache, prefill the new tokens,
    and merge picks per token (decode-only and prefill-only cases return that output as is).
    """
    hi = host_inputs
    background = np.asarray(background_cache)
    _check_cache(background, "background_cache")
    expected = (hi.num_blocks, hi.cache_heads, hi.block_size, fp8.RECORD_BYTES)
    if background.shape != expected:
        raise ValueError(f"background_cache has shape {background.shape}; expected {expected} from host_inputs")
    if not (case.has_decode or case.has_prefill):
        raise ValueError(f"case phase {case.phase!r}; expected one with decode or prefill")
    q64 = _query(hi.q)
    t = q64.shape[0]
    if case.has_decode and case.has_prefill:
        decode_rows = np.asarray(hi.decode_token_mask, dtype=bool)
    else:
        decode_rows = np.full(t, case.has_decode)
    out = np.zeros((t, q64.shape[1], LATENT), dtype=np.float64)
    if decode_rows.any():
        new_slots = slot_mapping(hi.block_tables, hi.positions, hi.batch_id_per_token, hi.block_size)
        context_slots = _ints(hi.context_slots, "context_slots", 1)
        if np.shape(hi.context_records) != (len(context_slots), fp8.RECORD_BYTES):
            raise ValueError(
                f"context_records has shape {np.shape(hi.context_records)}; "
                f"expected [{len(context_slots)}, {fp8.RECORD_BYTES}], one record per context slot"
            )
        _check_slots(context_slots, background, "context_slots")
        _check_slots(new_slots, background, "slot_mapping")
        writes = [(context_slots, hi.context_records), (new_slots, _new_records(hi.compressed_kv, hi.k_pe))]
        idx = _indices(hi.decode_indices, t, "decode_indices")[decode_rows]
        _check_slots(idx, background, "decode_indices")
        out[decode_rows] = _decode_from(
            q64[decode_rows], idx, lambda s: _records_after_writes(background, writes, s), hi.softmax_scale
        )
    if (~decode_rows).any():
        out[~decode_rows] = sparse_prefill(
            hi.q[~decode_rows], hi.prefill_kv, np.asarray(hi.prefill_indices)[~decode_rows], hi.softmax_scale
        )
    return out


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    """||out - ref|| / ||ref|| (Frobenius, float64); 0 when both are zero, inf when only ref is."""
    a = np.asarray(out).astype(np.float64)
    b = np.asarray(ref).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"out has shape {a.shape}; expected the shape of ref {b.shape}")
    diff = float(np.linalg.norm((a - b).ravel()))
    norm = float(np.linalg.norm(b.ravel()))
    if norm == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / norm
