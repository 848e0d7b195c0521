"""Seeded host-side inputs of one case, framework-neutral (NumPy; bf16 via ml_dtypes).

Mirrors what FastDeploy hands `forward_mixed` for one layer: q after W_UK absorption
[T, H, 576], the new latent `compressed_kv` [T, 512] and rope `k_pe` [T, 1, 64], block tables,
positions and batch ids per token, and the top-k indices of the DSA indexer in both spellings:
global cache slots for the decode kernel and rows of the new tokens for the prefill kernel.
Values are random normal (never zeros, which hide unwritten outputs); the indices are valid for
each request's context and causal. The paged cache holds a valid fp8_ds_mla record at every
cached position of every request; the rest of the cache is left for the backend to fill with
random bytes on the device (it is never read, and filling gigabytes on the host would dominate
set-up time).
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from dsabench.workload import fp8
from dsabench.workload.cases import Case
from dsabench.workload.dims import DEFAULT_DIMS, Dims, blocks_for

BF16 = ml_dtypes.bfloat16


@dataclass(frozen=True)
class HostInputs:
    q: np.ndarray  # [T, H, 576] bf16
    compressed_kv: np.ndarray  # [T, 512] bf16
    k_pe: np.ndarray  # [T, 1, 64] bf16
    prefill_kv: np.ndarray  # [T, 1, 576] bf16: the new tokens' latent and rope, as flash_mla_sparse_fwd reads them
    block_tables: np.ndarray  # [B, max_blocks] int32, -1 padded
    positions: np.ndarray  # [T] int32: position of each new token in its request (FastDeploy: int32, cast after)
    batch_id_per_token: np.ndarray  # [T] int32
    decode_indices: np.ndarray  # [T, 1, topk] int32: global cache slots (block * block_size + offset), -1 masked
    prefill_indices: np.ndarray  # [T, 1, topk] int32: rows of the new tokens, -1 masked
    seq_lens_encoder: np.ndarray  # [B] int32: new tokens of prefill requests, else 0
    seq_lens_decoder: np.ndarray  # [B] int32: tokens cached before this step for decode requests, else 0
    seq_lens_this_time: np.ndarray  # [B] int32
    cu_seqlens_q: np.ndarray  # [B + 1] int32
    decode_token_mask: np.ndarray  # [T] bool: rows that merge takes from the decode output
    context_slots: np.ndarray  # [C] int64: cache slots of the tokens cached before this step
    context_records: np.ndarray  # [C, 656] uint8: their fp8_ds_mla records
    num_blocks: int
    cache_heads: int
    block_size: int
    softmax_scale: float


def _bf16(rng: np.random.Generator, shape, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32) * scale).astype(BF16)


def _pick(rng: np.random.Generator, n_candidates: int, topk: int) -> np.ndarray:
    """topk distinct candidates out of range(n_candidates), -1 padded when there are fewer."""
    out = np.full(topk, -1, dtype=np.int64)
    if n_candidates <= topk:
        out[:n_candidates] = rng.permutation(n_candidates)
    else:
        out[:] = rng.choice(n_candidates, size=topk, replace=False)
    return out


def make_host_inputs(case: Case, dims: Dims = DEFAULT_DIMS) -> HostInputs:
    """Seeded inputs for `case`; the same case gives the same bytes on every machine."""
    rng = np.random.default_rng(case.seed)
    requests = case.requests()
    b, bs, topk = len(requests), case.block_size, case.topk
    t = case.num_tokens

    # Paged block tables: each request gets distinct random blocks of the cache.
    per_req = [blocks_for(cached + new, bs) for cached, new, _ in requests]
    order = rng.permutation(case.num_blocks)[: sum(per_req)]
    block_tables = np.full((b, max(per_req)), -1, dtype=np.int32)
    start = 0
    for r, n in enumerate(per_req):
        block_tables[r, :n] = order[start : start + n]
        start += n

    def slot(r: int, pos: np.ndarray) -> np.ndarray:
        return block_tables[r, pos // bs].astype(np.int64) * bs + pos % bs

    positions = np.empty(t, dtype=np.int32)
    batch_id = np.empty(t, dtype=np.int32)
    decode_idx = np.empty((t, 1, topk), dtype=np.int32)
    prefill_idx = np.empty((t, 1, topk), dtype=np.int32)
    decode_mask = np.zeros(t, dtype=bool)
    enc = np.zeros(b, dtype=np.int32)
    dec = np.zeros(b, dtype=np.int32)
    this_time = np.zeros(b, dtype=np.int32)
    cu = np.zeros(b + 1, dtype=np.int32)
    ctx_slots = []
    row = 0
    for r, (cached, new, is_prefill) in enumerate(requests):
        this_time[r] = new
        cu[r + 1] = cu[r] + new
        if is_prefill:
            enc[r] = new
        else:
            dec[r] = cached
        if cached:
            ctx_slots.append(slot(r, np.arange(cached)))
        for j in range(new):
            pos = cached + j
            positions[row] = pos
            batch_id[row] = r
            decode_mask[row] = not is_prefill
            chosen = _pick(rng, pos + 1, topk)  # the token sees its context and itself
            decode_idx[row, 0] = np.where(chosen >= 0, slot(r, np.maximum(chosen, 0)), -1)
            local = _pick(rng, j + 1, topk)  # new tokens of its own request, causally
            prefill_idx[row, 0] = np.where(local >= 0, cu[r] + local, -1)
            row += 1

    context_slots = np.concatenate(ctx_slots) if ctx_slots else np.zeros(0, dtype=np.int64)
    c = len(context_slots)
    ctx_latent = rng.standard_normal((c, dims.kv_lora_rank), dtype=np.float32).astype(BF16)
    ctx_rope = _bf16(rng, (c, dims.qk_rope_head_dim))
    context_records = fp8.encode_records(ctx_latent.astype(np.float32), ctx_rope.view(np.uint16))

    compressed_kv = _bf16(rng, (t, dims.kv_lora_rank))
    k_pe = _bf16(rng, (t, 1, dims.qk_rope_head_dim))
    q = _bf16(rng, (t, case.heads, dims.q_head_dim))
    prefill_kv = np.concatenate([compressed_kv[:, None, :], k_pe], axis=-1)
    return HostInputs(
        q=q,
        compressed_kv=compressed_kv,
        k_pe=k_pe,
        prefill_kv=prefill_kv,
        block_tables=block_tables,
        positions=positions,
        batch_id_per_token=batch_id,
        decode_indices=decode_idx,
        prefill_indices=prefill_idx,
        seq_lens_encoder=enc,
        seq_lens_decoder=dec,
        seq_lens_this_time=this_time,
        cu_seqlens_q=cu,
        decode_token_mask=decode_mask,
        context_slots=context_slots,
        context_records=context_records,
        num_blocks=case.num_blocks,
        cache_heads=case.cache_heads,
        block_size=bs,
        softmax_scale=dims.softmax_scale,
    )
