"""Seeded host-side inputs of one case, framework-neutral (NumPy; bf16 via ml_dtypes).

Mirrors what FastDeploy hands `forward_mixed` for one layer: q after W_UK absorption
[T, H, 576], the new latent `compressed_kv` [T, 512] and rope `k_pe` [T, 1, 64], block tables,
positions and batch ids per token, and the top-k indices of the DSA indexer in both spellings:
global cache slots for the decode kernel and rows of the new tokens for the prefill kernel.
Values are random normal (never zeros, which hide unwritten outputs); the indices are valid for
each request's context and causal; a request shorter than top-k pads its indices with -1, as the
DSA indexer does (index_topk 2048 against any shorter request).

The paged cache holds a valid fp8_ds_mla record at every cached position of every request:
distinct random tokens up to `CONTEXT_POOL` positions, and beyond that each position holds a random
one of that many distinct records (a kernel reads the same bytes per record; encoding millions of
distinct tokens on the host would dominate a nightly's wall time). Every other record (free
blocks, the unused tail of a request's last block, cache heads past 0) holds what a serving cache
holds there: garbage left by earlier requests. The backend fills the cache on the device (filling
gigabytes on the host would dominate set-up time) before the context records go in: random bytes
from a generator seeded with the case's seed, then the stripes of `GARBAGE_STRIPES`, which put fp8
NaN codes (0x7F, 0xFF), NaN and +-inf float32 tile scales and bf16 NaN rope values into every
`GARBAGE_PERIOD`-th record, deterministically. A kernel that reads any of it (a masked top-k index
gathering slot 0, say) turns the output non-finite, so the check catches it. `garbage_records` is
the same fill on the host, for tests and the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from dsabench.workload import fp8
from dsabench.workload.cases import Case
from dsabench.workload.dims import DEFAULT_DIMS, Dims, blocks_for

BF16 = ml_dtypes.bfloat16

RECORD_WORDS = DEFAULT_DIMS.record_bytes // 4  # a record as 164 little-endian int32 words
_SCALE_WORD = DEFAULT_DIMS.scale_offset // 4  # words 128..131: the 4 float32 tile scales
_ROPE_WORD = DEFAULT_DIMS.rope_offset // 4  # words 132..163: the 64 bf16 rope values
GARBAGE_PERIOD = 4
CONTEXT_POOL = 1 << 16  # distinct context records at most; longer contexts reuse them at random


@dataclass(frozen=True)
class Stripe:
    """The int32 `word` written at `words` of each record whose row % GARBAGE_PERIOD == `phase`.

    Rows count records of the flat cache [num_blocks * cache_heads * block_size, 656].
    """

    phase: int
    words: slice
    word: int
    what: str


GARBAGE_STRIPES = (
    Stripe(0, slice(0, _SCALE_WORD, 9), 0x7F7F7F7F, "fp8 NaN codes 0x7F in every tile's latent"),
    Stripe(0, slice(_SCALE_WORD, _SCALE_WORD + 1), 0x7FC00000, "NaN scale of tile 0"),
    Stripe(1, slice(4, _SCALE_WORD, 9), -1, "fp8 NaN codes 0xFF in every tile's latent"),
    Stripe(1, slice(_SCALE_WORD + 1, _SCALE_WORD + 2), 0x7F800000, "+inf scale of tile 1"),
    Stripe(2, slice(_SCALE_WORD + 2, _SCALE_WORD + 3), -0x00800000, "-inf scale of tile 2 (0xFF800000)"),
    Stripe(2, slice(_ROPE_WORD, RECORD_WORDS, 5), 0x7FC07FC0, "bf16 NaN rope values"),
    Stripe(3, slice(_SCALE_WORD + 3, _SCALE_WORD + 4), 0x7FC00000, "NaN scale of tile 3"),
)


def garbage_stripes(first_row: int = 0):
    """(row slice, word slice, int32 word) of each stripe, for a block of rows starting at first_row.

    A backend that fills its cache in chunks applies them to each chunk's [rows, 164] int32 view.
    """
    for s in GARBAGE_STRIPES:
        yield slice((s.phase - first_row) % GARBAGE_PERIOD, None, GARBAGE_PERIOD), s.words, s.word


def garbage_records(rng: np.random.Generator, rows: int) -> np.ndarray:
    """[rows, 656] uint8: random bytes plus the garbage stripes, as a backend fills unused records."""
    out = rng.integers(0, 256, (rows, DEFAULT_DIMS.record_bytes), dtype=np.uint8)
    words = out.view("<i4")
    for row_sel, word_sel, word in garbage_stripes():
        words[row_sel, word_sel] = word
    return out


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

    @property
    def context_rows(self) -> np.ndarray:
        """[C] int64: the row of each context record in the flat cache
        [num_blocks * cache_heads * block_size, 656] (cache head 0 of its slot's block)."""
        block, offset = np.divmod(self.context_slots, self.block_size)
        return block * (self.cache_heads * self.block_size) + offset


# (backend state field, HostInputs field): the tensors a backend puts on its device, besides the cache
DEVICE_INPUTS = (
    ("q", "q"), ("compressed_kv", "compressed_kv"), ("k_pe", "k_pe"), ("prefill_kv", "prefill_kv"),
    ("block_tables", "block_tables"), ("position_ids", "positions"), ("batch_id_per_token", "batch_id_per_token"),
    ("decode_indices", "decode_indices"), ("prefill_indices", "prefill_indices"),
    ("decode_token_mask", "decode_token_mask"),
)


_NORMAL_TABLE = np.random.default_rng(0x5EED).standard_normal(1 << 16, dtype=np.float32)


def _bf16(rng: np.random.Generator, shape, scale: float = 1.0) -> np.ndarray:
    """Random normal bf16 values: uniform 16-bit picks among 65,536 fixed standard-normal draws.
    Drawing and rounding fresh normals took 8 s for the 600 MB q of a 4096-token prefill on a
    2-core host (most of a nightly's input time); this takes 2 s, with the same distribution."""
    table = (_NORMAL_TABLE * np.float32(scale)).astype(BF16)
    return table[rng.integers(0, 1 << 16, shape, dtype=np.uint16)]


def _pick(rng: np.random.Generator, n_candidates: int, topk: int) -> np.ndarray:
    """topk distinct candidates out of range(n_candidates), -1 padded when there are fewer."""
    out = np.full(topk, -1, dtype=np.int64)
    if n_candidates <= topk:
        out[:n_candidates] = rng.permutation(n_candidates)
    else:
        out[:] = rng.choice(n_candidates, size=topk, replace=False)
    return out


def _context_records(rng: np.random.Generator, c: int, dims: Dims) -> np.ndarray:
    """[c, 656] valid fp8_ds_mla records of random normal tokens: distinct up to CONTEXT_POOL
    tokens; above it each position holds a random one of CONTEXT_POOL distinct records. A
    kernel reads the same bytes per record either way, and encoding two million distinct tokens
    costs about 45 s of host time per case, which a nightly paid again for every case."""
    n = min(c, CONTEXT_POOL)
    latent = _bf16(rng, (n, dims.kv_lora_rank))
    rope = _bf16(rng, (n, dims.qk_rope_head_dim))
    records = fp8.encode_records(latent.astype(np.float32), rope.view(np.uint16))
    if c <= CONTEXT_POOL:
        return records
    return records[rng.integers(0, CONTEXT_POOL, c)]


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
    context_records = _context_records(rng, len(context_slots), dims)

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
