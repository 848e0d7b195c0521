"""Fused Triton kernels for DeepSeek-V3.2's sparse MLA attention (FastDeploy's DSA forward).

Self-contained on purpose: imports only torch, triton and math, so that it can be loaded from its
file path (importlib) while the rest of the package moves.

Two entry points, both CUDA-Graph capturable (no host sync, no data-dependent allocation) and
deterministic (no atomics; a fixed reduction order, so the same bits on every call):

``sparse_mla_decode(q, kv_cache, indices, softmax_scale) -> (out, lse)``
    q        [T, 1, H, 576] bf16 (latent 512 + rope 64); any strides with a unit last stride.
    kv_cache [num_blocks, block_size, 1, 656] uint8, FastDeploy's "fp8_ds_mla" records: bytes
             [0, 512) e4m3fn codes (4 tiles of 128), [512, 528) 4 float32 tile scales,
             [528, 656) 64 bf16 rope values. A view is fine: the block and offset strides are
             used as they are (each must be a multiple of 16 bytes, the last stride 1).
             A 2-D [slots, 656] row view is accepted too.
    indices  [T, 1, topk] (or [T, topk]) int32 global slots (block * block_size + offset);
             -1 means masked: a masked slot is never read. Slots outside [0, num_slots) are
             treated as masked as well (never read), rather than faulting.
    out      [T, 1, H, 512] bf16 = softmax(q . K^T * softmax_scale) . V over the unmasked
             slots, with K = concat(latent, rope), V = latent, latent[i] = code[i] * scale[i//128].
    lse      [T, 1, H] float32, natural-log log-sum-exp of the scaled logits.
    A row whose indices are all masked gives out = 0 and lse = -inf.

``sparse_mla_prefill(q, kv, indices, softmax_scale) -> (out, lse)``
    q [T, H, 576] bf16, kv [S, 1, 576] (or [S, 576]) bf16 with K = all 576 and V = the first 512,
    indices [T, 1, topk] (or [T, topk]) int32 rows of kv, -1 masked. out [T, H, 512] bf16,
    lse [T, H] float32. Same masking rules as decode.

Design: one program per (head block of BLOCK_H heads, topk split, token); it walks its share of
the token's indices BLOCK_N at a time, gathers the records, dequantizes the fp8 latent to bf16
(4 tiles of 128 with their scales), computes the logits with 5 tl.dot calls (4 latent tiles and
the rope part) and runs an online softmax in fp32 (base 2, log2(e) folded into the scale), then
accumulates P . V into 4 fp32 accumulators [BLOCK_H, 128]. When T * ceil(H / BLOCK_H) is small
next to the SM count, topk is split over several programs (split-K) and a second kernel combines
the partial results in a fixed order.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

D_LATENT = 512
D_ROPE = 64
D_QK = D_LATENT + D_ROPE  # 576
TILE = 128  # latent values per fp8 scale tile
NUM_TILES = D_LATENT // TILE
RECORD_BYTES = D_LATENT + 4 * NUM_TILES + 2 * D_ROPE  # 656
SCALE_OFFSET = D_LATENT  # 512
ROPE_OFFSET = D_LATENT + 4 * NUM_TILES  # 528
LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453

# Default launch configurations; the check script measures the alternatives.
# BLOCK_H 64 keeps the Hopper wgmma path (M = 64 per warpgroup); fewer heads are padded and masked.
# FOLD_SCALE (decode only): apply the fp8 tile scales to the fp32 logits and to P instead of
# dequantizing K to bf16 first: exact dot operands and lse error ~1e-6 instead of ~1e-2, but
# 1.4x slower on the H200 (docs/kernels.md). LAZY_RESCALE: rescale the accumulators only when a
# row max grows by more than 2^8 (slower here: the branch makes the accumulators spill).
# BF16_DEQUANT (decode only, not FOLD_SCALE): the codes (exact in bf16) multiplied in bf16 by the
# tile scale rounded to bf16, instead of an fp32 multiply and a conversion per element; exact for
# power-of-two scales (FlashMLA's quantizer makes those), else each tile's scale is off by up to
# 2^-9 relative. Not measured yet: scripts/triton_tune.py times it and checks it against float64.
DECODE_CONFIG = {"BLOCK_H": 64, "BLOCK_N": 64, "num_warps": 8, "num_stages": 2, "FOLD_SCALE": False,
                 "LAZY_RESCALE": False, "BF16_DEQUANT": False}
PREFILL_CONFIG = {"BLOCK_H": 64, "BLOCK_N": 128, "num_warps": 8, "num_stages": 1, "LAZY_RESCALE": False}


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------


@triton.jit
def _fp8_tile(rec, valid, offs_t, J: tl.constexpr, TILE_: tl.constexpr, SCALE_OFF: tl.constexpr):
    """Tile J of the gathered records: the raw e4m3 codes as bf16 (exact) and the [BLOCK_N] tile scales.

    Masked rows load as code 0 and scale 0: their bytes are never read."""
    codes = tl.load(rec[:, None] + (J * TILE_) + offs_t[None, :], mask=valid[:, None], other=0)
    sc = tl.load((rec + (SCALE_OFF + 4 * J)).to(tl.pointer_type(tl.float32)), mask=valid, other=0.0)
    c = codes.to(tl.float8e4nv, bitcast=True).to(tl.float32).to(tl.bfloat16)
    return c, sc


@triton.jit(do_not_specialize=["num_heads", "topk", "num_slots", "block_size", "chunk"])
def _sparse_mla_fwd_kernel(
    q_ptr, kv_ptr, idx_ptr, out_ptr, lse_ptr,
    num_heads, topk, num_slots, block_size, chunk,
    stride_qt, stride_qh,
    stride_kb, stride_ko,
    stride_it,
    stride_ot, stride_os, stride_oh,
    stride_lt, stride_ls, stride_lh,
    qk_scale,
    KV_FP8: tl.constexpr, SPLIT: tl.constexpr, FOLD_SCALE: tl.constexpr, LAZY_RESCALE: tl.constexpr,
    FLAT_ROWS: tl.constexpr, BF16_DEQUANT: tl.constexpr,
    BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
    TILE_: tl.constexpr, DROPE: tl.constexpr, SCALE_OFF: tl.constexpr, ROPE_OFF: tl.constexpr,
):
    pid_h = tl.program_id(0)
    pid_s = tl.program_id(1)
    tok = tl.program_id(2).to(tl.int64)

    offs_h = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    h_ok = offs_h < num_heads
    offs_t = tl.arange(0, TILE_)
    offs_r = tl.arange(0, DROPE)
    offs_n = tl.arange(0, BLOCK_N)

    q_rows = q_ptr + tok * stride_qt + offs_h[:, None].to(tl.int64) * stride_qh
    q0 = tl.load(q_rows + offs_t[None, :], mask=h_ok[:, None], other=0.0)
    q1 = tl.load(q_rows + (TILE_ + offs_t[None, :]), mask=h_ok[:, None], other=0.0)
    q2 = tl.load(q_rows + (2 * TILE_ + offs_t[None, :]), mask=h_ok[:, None], other=0.0)
    q3 = tl.load(q_rows + (3 * TILE_ + offs_t[None, :]), mask=h_ok[:, None], other=0.0)
    qr = tl.load(q_rows + (4 * TILE_ + offs_r[None, :]), mask=h_ok[:, None], other=0.0)

    m_i = tl.full([BLOCK_H], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_H], tl.float32)
    acc0 = tl.zeros([BLOCK_H, TILE_], tl.float32)
    acc1 = tl.zeros([BLOCK_H, TILE_], tl.float32)
    acc2 = tl.zeros([BLOCK_H, TILE_], tl.float32)
    acc3 = tl.zeros([BLOCK_H, TILE_], tl.float32)

    start = pid_s * chunk
    end = tl.minimum(start + chunk, topk)
    idx_row = idx_ptr + tok * stride_it
    for n0 in range(0, chunk, BLOCK_N):  # bounds from kernel arguments only (the interpreter needs that)
        offs = start + n0 + offs_n
        idx = tl.load(idx_row + offs, mask=offs < end, other=-1)
        valid = (idx >= 0) & (idx < num_slots)
        slot = tl.where(valid, idx, 0)
        if FLAT_ROWS:  # block stride == block_size * offset stride: the slot is the row (no div/mod)
            row = slot.to(tl.int64) * stride_ko
        else:
            row = (slot // block_size).to(tl.int64) * stride_kb + (slot % block_size).to(tl.int64) * stride_ko
        rec = kv_ptr + row
        if KV_FP8:
            # latent = code * scale[tile]. The scale goes on the fp32 logits and on P, so the dot
            # operands are the exact codes: q . (c s) = (q . c) s and P . (c s) = (P s) . c
            k0, s0 = _fp8_tile(rec, valid, offs_t, 0, TILE_, SCALE_OFF)
            k1, s1 = _fp8_tile(rec, valid, offs_t, 1, TILE_, SCALE_OFF)
            k2, s2 = _fp8_tile(rec, valid, offs_t, 2, TILE_, SCALE_OFF)
            k3, s3 = _fp8_tile(rec, valid, offs_t, 3, TILE_, SCALE_OFF)
            kr = tl.load((rec + ROPE_OFF).to(tl.pointer_type(tl.bfloat16))[:, None] + offs_r[None, :],
                         mask=valid[:, None], other=0.0)
            if FOLD_SCALE:
                s = tl.dot(qr, tl.trans(kr))
                s += tl.dot(q0, tl.trans(k0)) * s0[None, :]
                s += tl.dot(q1, tl.trans(k1)) * s1[None, :]
                s += tl.dot(q2, tl.trans(k2)) * s2[None, :]
                s += tl.dot(q3, tl.trans(k3)) * s3[None, :]
            else:  # dequantize to bf16 first (as FlashMLA does): one accumulator chain, bf16-rounded K
                if BF16_DEQUANT:  # a bf16 multiply by the bf16-rounded scale (exact for power-of-two scales)
                    k0 = k0 * s0.to(tl.bfloat16)[:, None]
                    k1 = k1 * s1.to(tl.bfloat16)[:, None]
                    k2 = k2 * s2.to(tl.bfloat16)[:, None]
                    k3 = k3 * s3.to(tl.bfloat16)[:, None]
                else:
                    k0 = (k0.to(tl.float32) * s0[:, None]).to(tl.bfloat16)
                    k1 = (k1.to(tl.float32) * s1[:, None]).to(tl.bfloat16)
                    k2 = (k2.to(tl.float32) * s2[:, None]).to(tl.bfloat16)
                    k3 = (k3.to(tl.float32) * s3[:, None]).to(tl.bfloat16)
                s = tl.dot(q0, tl.trans(k0))
                s = tl.dot(q1, tl.trans(k1), s)
                s = tl.dot(q2, tl.trans(k2), s)
                s = tl.dot(q3, tl.trans(k3), s)
                s = tl.dot(qr, tl.trans(kr), s)
        else:
            k0 = tl.load(rec[:, None] + offs_t[None, :], mask=valid[:, None], other=0.0)
            k1 = tl.load(rec[:, None] + (TILE_ + offs_t[None, :]), mask=valid[:, None], other=0.0)
            k2 = tl.load(rec[:, None] + (2 * TILE_ + offs_t[None, :]), mask=valid[:, None], other=0.0)
            k3 = tl.load(rec[:, None] + (3 * TILE_ + offs_t[None, :]), mask=valid[:, None], other=0.0)
            kr = tl.load(rec[:, None] + (4 * TILE_ + offs_r[None, :]), mask=valid[:, None], other=0.0)
            s = tl.dot(q0, tl.trans(k0))
            s = tl.dot(q1, tl.trans(k1), s)
            s = tl.dot(q2, tl.trans(k2), s)
            s = tl.dot(q3, tl.trans(k3), s)
            s = tl.dot(qr, tl.trans(kr), s)
        s = tl.where(valid[None, :], s * qk_scale, float("-inf"))

        m_blk = tl.maximum(m_i, tl.max(s, 1))
        if LAZY_RESCALE:
            # keep a stale running max until a row's max grows by more than 2^8: P stays <= 256
            # (fine in bf16 and fp32), the final lse uses the same max, and most blocks skip the
            # [64, 512] accumulator rescale (the branch is uniform over the program)
            grow = m_blk > m_i + 8.0
            m_new = tl.where(grow, m_blk, m_i)
        else:
            m_new = m_blk
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.math.exp2(m_i - m_use)
        p = tl.math.exp2(s - m_use[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        if LAZY_RESCALE:
            if tl.max(grow.to(tl.int32), 0) > 0:
                acc0 = acc0 * alpha[:, None]
                acc1 = acc1 * alpha[:, None]
                acc2 = acc2 * alpha[:, None]
                acc3 = acc3 * alpha[:, None]
        else:
            acc0 = acc0 * alpha[:, None]
            acc1 = acc1 * alpha[:, None]
            acc2 = acc2 * alpha[:, None]
            acc3 = acc3 * alpha[:, None]
        if KV_FP8 and FOLD_SCALE:
            acc0 = tl.dot((p * s0[None, :]).to(tl.bfloat16), k0, acc0)
            acc1 = tl.dot((p * s1[None, :]).to(tl.bfloat16), k1, acc1)
            acc2 = tl.dot((p * s2[None, :]).to(tl.bfloat16), k2, acc2)
            acc3 = tl.dot((p * s3[None, :]).to(tl.bfloat16), k3, acc3)
        else:
            pb = p.to(tl.bfloat16)
            acc0 = tl.dot(pb, k0, acc0)
            acc1 = tl.dot(pb, k1, acc1)
            acc2 = tl.dot(pb, k2, acc2)
            acc3 = tl.dot(pb, k3, acc3)
        m_i = m_new

    has = l_i > 0.0
    inv = tl.where(has, 1.0 / tl.where(has, l_i, 1.0), 0.0)
    lse2 = tl.where(has, m_i + tl.math.log2(tl.where(has, l_i, 1.0)), float("-inf"))
    o_rows = out_ptr + tok * stride_ot + pid_s.to(tl.int64) * stride_os + offs_h[:, None].to(tl.int64) * stride_oh
    lse_ptrs = lse_ptr + tok * stride_lt + pid_s.to(tl.int64) * stride_ls + offs_h.to(tl.int64) * stride_lh
    if SPLIT:
        # partial results: fp32 normalized output and base-2 lse, combined by _combine_kernel
        tl.store(o_rows + offs_t[None, :], acc0 * inv[:, None], mask=h_ok[:, None])
        tl.store(o_rows + (TILE_ + offs_t[None, :]), acc1 * inv[:, None], mask=h_ok[:, None])
        tl.store(o_rows + (2 * TILE_ + offs_t[None, :]), acc2 * inv[:, None], mask=h_ok[:, None])
        tl.store(o_rows + (3 * TILE_ + offs_t[None, :]), acc3 * inv[:, None], mask=h_ok[:, None])
        tl.store(lse_ptrs, lse2, mask=h_ok)
    else:
        tl.store(o_rows + offs_t[None, :], (acc0 * inv[:, None]).to(tl.bfloat16), mask=h_ok[:, None])
        tl.store(o_rows + (TILE_ + offs_t[None, :]), (acc1 * inv[:, None]).to(tl.bfloat16), mask=h_ok[:, None])
        tl.store(o_rows + (2 * TILE_ + offs_t[None, :]), (acc2 * inv[:, None]).to(tl.bfloat16), mask=h_ok[:, None])
        tl.store(o_rows + (3 * TILE_ + offs_t[None, :]), (acc3 * inv[:, None]).to(tl.bfloat16), mask=h_ok[:, None])
        tl.store(lse_ptrs, lse2 * 0.6931471805599453, mask=h_ok)


@triton.jit(do_not_specialize=["num_heads", "num_splits"])
def _combine_kernel(
    part_ptr, plse_ptr, out_ptr, lse_ptr,
    num_heads, num_splits,
    stride_pt, stride_ps, stride_ph,
    stride_qt, stride_qs, stride_qh,
    stride_ot, stride_oh,
    stride_lt, stride_lh,
    BLOCK_H: tl.constexpr, DV: tl.constexpr,
):
    """out = sum_s w_s o_s / sum_s w_s with w_s = 2^(lse_s - max lse): a fixed order, no atomics."""
    pid_h = tl.program_id(0)
    tok = tl.program_id(1).to(tl.int64)
    offs_h = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    h_ok = offs_h < num_heads
    offs_d = tl.arange(0, DV)
    lse_rows = plse_ptr + tok * stride_qt + offs_h.to(tl.int64) * stride_qh
    m = tl.full([BLOCK_H], float("-inf"), tl.float32)
    for s in range(0, num_splits):
        ls = tl.load(lse_rows + s * stride_qs, mask=h_ok, other=float("-inf"))
        m = tl.maximum(m, ls)
    m_use = tl.where(m == float("-inf"), 0.0, m)
    acc = tl.zeros([BLOCK_H, DV], tl.float32)
    wsum = tl.zeros([BLOCK_H], tl.float32)
    part_rows = part_ptr + tok * stride_pt + offs_h[:, None].to(tl.int64) * stride_ph + offs_d[None, :]
    for s in range(0, num_splits):
        ls = tl.load(lse_rows + s * stride_qs, mask=h_ok, other=float("-inf"))
        w = tl.math.exp2(ls - m_use)
        o = tl.load(part_rows + s * stride_ps, mask=h_ok[:, None], other=0.0)
        acc += w[:, None] * o
        wsum += w
    has = wsum > 0.0
    inv = tl.where(has, 1.0 / tl.where(has, wsum, 1.0), 0.0)
    lse = tl.where(has, (m_use + tl.math.log2(tl.where(has, wsum, 1.0))) * 0.6931471805599453, float("-inf"))
    o_ptrs = out_ptr + tok * stride_ot + offs_h[:, None].to(tl.int64) * stride_oh + offs_d[None, :]
    tl.store(o_ptrs, (acc * inv[:, None]).to(tl.bfloat16), mask=h_ok[:, None])
    tl.store(lse_ptr + tok * stride_lt + offs_h.to(tl.int64) * stride_lh, lse, mask=h_ok)


# --------------------------------------------------------------------------------------------
# wrappers
# --------------------------------------------------------------------------------------------

_SM_COUNT: dict[int, int] = {}


def _sm_count(device: torch.device) -> int:
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _SM_COUNT:
        _SM_COUNT[idx] = torch.cuda.get_device_properties(idx).multi_processor_count
    return _SM_COUNT[idx]


def _block_h(num_heads: int, cfg_block_h: int | None) -> int:
    # Below 64 Triton falls back to mma.sync, which spills badly at these tile sizes (sm_90 build:
    # BLOCK_H 16 or 32 with 4 warps spill 0.6 to 1.3 KB a thread), so small head counts are padded.
    return int(cfg_block_h) if cfg_block_h else 64


def choose_splits(tokens: int, head_blocks: int, topk: int, block_n: int, sm_count: int) -> int:
    """Split topk over programs only when tokens * head blocks leave most SMs idle."""
    programs = tokens * head_blocks
    n_blocks = max(1, math.ceil(topk / block_n))
    if programs >= sm_count // 2:
        return 1
    return max(1, min(n_blocks, sm_count // max(1, programs)))


def _indices_2d(indices: torch.Tensor, tokens: int) -> torch.Tensor:
    if indices.dtype != torch.int32:
        raise TypeError(f"indices must be int32, got {indices.dtype}")
    if indices.dim() == 3:
        if indices.shape[1] != 1:
            raise ValueError(f"indices must be [T, 1, topk]; got {tuple(indices.shape)}")
        indices = indices[:, 0, :]
    if indices.dim() != 2 or indices.shape[0] != tokens:
        raise ValueError(f"indices must be [T, 1, topk] with T={tokens}; got {tuple(indices.shape)}")
    if indices.stride(1) != 1:
        indices = indices.contiguous()
    return indices


def _launch(q3, kv, kv_fp8, num_slots, block_size, stride_kb, stride_ko, idx2, softmax_scale,
            out3, lse2, config, num_splits):
    """q3 [T, H, 576], out3 [T, H, 512] bf16, lse2 [T, H] float32 (both written)."""
    tokens, heads, _ = q3.shape
    topk = idx2.shape[1]
    cfg = dict(DECODE_CONFIG if kv_fp8 else PREFILL_CONFIG)
    cfg.update(config or {})
    block_h = _block_h(heads, cfg.get("BLOCK_H"))
    block_n = int(cfg["BLOCK_N"])
    head_blocks = math.ceil(heads / block_h)
    if num_splits is None:
        num_splits = choose_splits(tokens, head_blocks, topk, block_n, _sm_count(q3.device))
    n_blocks = max(1, math.ceil(topk / block_n))
    num_splits = max(1, min(int(num_splits), n_blocks))
    chunk = math.ceil(n_blocks / num_splits) * block_n
    num_splits = max(1, math.ceil(topk / chunk))  # no empty split
    qk_scale = float(softmax_scale) * LOG2E
    flat_rows = stride_kb == block_size * stride_ko or num_slots <= block_size
    common = dict(
        KV_FP8=kv_fp8, FOLD_SCALE=bool(cfg.get("FOLD_SCALE", False)),
        LAZY_RESCALE=bool(cfg.get("LAZY_RESCALE", False)), FLAT_ROWS=flat_rows, BLOCK_H=block_h, BLOCK_N=block_n, TILE_=TILE, DROPE=D_ROPE,
        BF16_DEQUANT=bool(cfg.get("BF16_DEQUANT", False)),
        SCALE_OFF=SCALE_OFFSET, ROPE_OFF=ROPE_OFFSET,
        num_warps=int(cfg["num_warps"]), num_stages=int(cfg["num_stages"]),
    )
    grid = (head_blocks, num_splits, tokens)
    if num_splits == 1:
        _sparse_mla_fwd_kernel[grid](
            q3, kv, idx2, out3, lse2,
            heads, topk, num_slots, block_size, chunk,
            q3.stride(0), q3.stride(1),
            stride_kb, stride_ko,
            idx2.stride(0),
            out3.stride(0), 0, out3.stride(1),
            lse2.stride(0), 0, lse2.stride(1),
            qk_scale, SPLIT=False, **common,
        )
        return num_splits
    part = torch.empty((tokens, num_splits, heads, D_LATENT), dtype=torch.float32, device=q3.device)
    plse = torch.empty((tokens, num_splits, heads), dtype=torch.float32, device=q3.device)
    _sparse_mla_fwd_kernel[grid](
        q3, kv, idx2, part, plse,
        heads, topk, num_slots, block_size, chunk,
        q3.stride(0), q3.stride(1),
        stride_kb, stride_ko,
        idx2.stride(0),
        part.stride(0), part.stride(1), part.stride(2),
        plse.stride(0), plse.stride(1), plse.stride(2),
        qk_scale, SPLIT=True, **common,
    )
    cbh = 8
    _combine_kernel[(math.ceil(heads / cbh), tokens)](
        part, plse, out3, lse2,
        heads, num_splits,
        part.stride(0), part.stride(1), part.stride(2),
        plse.stride(0), plse.stride(1), plse.stride(2),
        out3.stride(0), out3.stride(1),
        lse2.stride(0), lse2.stride(1),
        BLOCK_H=cbh, DV=D_LATENT, num_warps=4,
    )
    return num_splits


def sparse_mla_decode(q: torch.Tensor, kv_cache: torch.Tensor, indices: torch.Tensor, softmax_scale: float,
                      *, config: dict | None = None, num_splits: int | None = None):
    """Sparse fp8 MLA decode; see the module docstring. Returns (out [T,1,H,512] bf16, lse [T,1,H] f32)."""
    if q.dim() != 4 or q.shape[1] != 1 or q.shape[3] != D_QK:
        raise ValueError(f"q must be [T, 1, H, {D_QK}]; got {tuple(q.shape)}")
    if q.dtype != torch.bfloat16:
        raise TypeError(f"q must be bfloat16, got {q.dtype}")
    if kv_cache.dtype != torch.uint8 or kv_cache.shape[-1] != RECORD_BYTES:
        raise ValueError(f"kv_cache must be uint8 [..., {RECORD_BYTES}]; got {kv_cache.dtype} {tuple(kv_cache.shape)}")
    if kv_cache.dim() == 4:
        if kv_cache.shape[2] != 1:
            raise ValueError(f"kv_cache must be [num_blocks, block_size, 1, 656]; got {tuple(kv_cache.shape)}")
        num_blocks, block_size = kv_cache.shape[0], kv_cache.shape[1]
        stride_kb, stride_ko = kv_cache.stride(0), kv_cache.stride(1)
    elif kv_cache.dim() == 2:
        num_blocks, block_size = 1, kv_cache.shape[0]
        stride_kb, stride_ko = 0, kv_cache.stride(0)
    else:
        raise ValueError(f"kv_cache must be 4-D [N, B, 1, 656] or 2-D [slots, 656]; got {tuple(kv_cache.shape)}")
    if kv_cache.stride(-1) != 1 or stride_kb % 16 or stride_ko % 16 or kv_cache.data_ptr() % 16:
        raise ValueError("kv_cache: last stride must be 1, block/offset strides and the base 16-byte aligned")
    if q.stride(-1) != 1:
        q = q.contiguous()
    tokens, _, heads, _ = q.shape
    idx2 = _indices_2d(indices, tokens)
    out = torch.empty((tokens, 1, heads, D_LATENT), dtype=torch.bfloat16, device=q.device)
    lse = torch.empty((tokens, 1, heads), dtype=torch.float32, device=q.device)
    if tokens == 0 or heads == 0:
        return out, lse
    _launch(q[:, 0], kv_cache, True, num_blocks * block_size, max(1, block_size), stride_kb, stride_ko, idx2,
            softmax_scale, out[:, 0], lse[:, 0], config, num_splits)
    return out, lse


def sparse_mla_prefill(q: torch.Tensor, kv: torch.Tensor, indices: torch.Tensor, softmax_scale: float,
                       *, config: dict | None = None, num_splits: int | None = None):
    """Sparse bf16 MLA prefill; see the module docstring. Returns (out [T,H,512] bf16, lse [T,H] f32)."""
    if q.dim() != 3 or q.shape[2] != D_QK or q.dtype != torch.bfloat16:
        raise ValueError(f"q must be bf16 [T, H, {D_QK}]; got {q.dtype} {tuple(q.shape)}")
    if kv.dim() == 3:
        if kv.shape[1] != 1:
            raise ValueError(f"kv must be [S, 1, {D_QK}]; got {tuple(kv.shape)}")
        kv = kv[:, 0, :]
    if kv.dim() != 2 or kv.shape[1] != D_QK or kv.dtype != torch.bfloat16:
        raise ValueError(f"kv must be bf16 [S, 1, {D_QK}]; got {kv.dtype} {tuple(kv.shape)}")
    if kv.stride(-1) != 1:
        kv = kv.contiguous()
    if q.stride(-1) != 1:
        q = q.contiguous()
    tokens, heads, _ = q.shape
    idx2 = _indices_2d(indices, tokens)
    out = torch.empty((tokens, heads, D_LATENT), dtype=torch.bfloat16, device=q.device)
    lse = torch.empty((tokens, heads), dtype=torch.float32, device=q.device)
    if tokens == 0 or heads == 0:
        return out, lse
    rows = kv.shape[0]
    _launch(q, kv, False, rows, max(1, rows), 0, kv.stride(0), idx2, softmax_scale, out, lse, config, num_splits)
    return out, lse
