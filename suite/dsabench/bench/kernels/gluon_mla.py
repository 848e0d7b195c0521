"""Warp-specialized sparse fp8 MLA decode for sm_90a in Triton's Gluon (issue 23, item 5).

Self-contained like triton_mla.py (imports torch, triton and math; loaded by path). The decode
of `--kernel gluon` (bench/kernels/attention.gluon_attention); scripts/gluon_check.py measures it
against the Triton kernel and FlashMLA.

``sparse_mla_decode(q, kv_cache, indices, softmax_scale) -> (out, lse)`` has the contract of
triton_mla.sparse_mla_decode (read its docstring): q [T,1,H,576] bf16, kv_cache uint8
[num_blocks, block_size, 1, 656] fp8_ds_mla records, indices [T,1,topk] int32 global slots (-1 and
out-of-range slots masked, never read), out [T,1,H,512] bf16, lse [T,1,H] float32 natural log; an
all-masked row gives out 0 and lse -inf. CUDA-graph capturable, deterministic (no atomics).
Narrower than the Triton kernel, and it says so with a ValueError (`--kernel gluon` refuses
such a case before the call: attention.gluon_refusal): H a
multiple of 64, topk a multiple of 64, records 656 bytes apart with each block's records
contiguous (FastDeploy's layout), an sm_90 device.

Dequantization: ``(float(code) * scale).to(bf16)`` per element, the Triton kernel's default
(``bf16_dequant=True``: the code times the bf16-rounded scale in bf16, as FlashMLA does; exact
for power-of-two scales).

Design (FlashMLA's sm90 sparse fp8 decode, without its 2-CTA cluster): one CTA per (64 heads,
split, token), three warpgroups through mbarriers:
  producer (worker, 4 warps)  gathers each block of 64 records (masked slots load zeros), turns
                              the codes into bf16 latent tiles and the rope into shared memory,
                              double-buffered: K_lat [2, 64, 512], K_rope [2, 64, 64];
  math 0 (default, 4 warps)   S = Q K^T (64 x 64 wgmma: latent K=512 then rope K=64, Q in shared
                              memory), masking, online softmax (base 2), P to shared memory with
                              the row rescale factors, then O[:, :256] += P V[:, :256] from
                              registers;
  math 1 (worker, 4 warps)    O[:, 256:] = O * alpha + P V[:, 256:] from shared memory.
A K buffer is released when both math warpgroups are done with it. With split-KV the partial
results (fp32, base-2 lse) are combined by triton_mla's combine kernel (same folder).
"""

from __future__ import annotations

import math

import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, mbarrier, warpgroup_mma, \
    warpgroup_mma_wait

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

BLOCK_H = 64  # heads a CTA: one wgmma M
BLOCK_N = 64  # keys a block
HALF_V = D_LATENT // 2  # V columns a math warpgroup
# Registers a thread: math 1 holds a [64, 256] fp32 accumulator (128), the producer a few tiles in
# flight; the default partition (math 0) gets the rest of MAXNREG * 12 warps (FlashMLA: 192/160/152).
MAXNREG = 168
WORKER_REGS = (160, 152)
# the same figures for the kernels (a jit function reads only constexpr globals)
_LAT = gl.constexpr(D_LATENT)
_ROPE = gl.constexpr(D_ROPE)
_SCALE_OFF = gl.constexpr(SCALE_OFFSET)
_ROPE_OFF = gl.constexpr(ROPE_OFFSET)
_LN2 = gl.constexpr(LN2)


# --------------------------------------------------------------------------------------------
# partitions
# --------------------------------------------------------------------------------------------


@gluon.jit
def _gather_tile(rec8, ok8, offs_c, J: gl.constexpr):
    """Tile J of the block's records: the raw codes [64, 128] and the [64] tile scales (0 where masked)."""
    codes = gl.load(rec8[:, None] + (J * 128) + offs_c[None, :], mask=ok8[:, None], other=0)
    sc = gl.load((rec8 + (_SCALE_OFF + 4 * J)).to(gl.pointer_type(gl.float32)), mask=ok8, other=0.0)
    return codes, sc


@gluon.jit
def _dequant_store(dst, codes, sc, BF16_DEQUANT: gl.constexpr):
    c = codes.to(gl.float8e4nv, bitcast=True)
    if BF16_DEQUANT:
        lat = c.to(gl.bfloat16) * sc.to(gl.bfloat16)[:, None]
    else:
        lat = (c.to(gl.float32) * sc[:, None]).to(gl.bfloat16)
    dst.store(lat)


@gluon.jit
def _producer(kv_ptr, idx_ptr, klat, krope, k_ready, k_free,
              num_slots, stride_ko, start, n_blocks,
              BF16_DEQUANT: gl.constexpr):
    """Gather, dequantize and store each block of 64 records (4 warps). A block's global loads are
    issued before waiting for its buffer, and the next block's indices one block ahead."""
    blk8: gl.constexpr = gl.BlockedLayout([1, 16], [4, 8], [4, 1], [1, 0])  # [64, 128] uint8: 16 B a thread
    blk16: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0])  # [64, 64] bf16: 16 B a thread
    offs_n8 = gl.arange(0, 64, layout=gl.SliceLayout(1, blk8))
    offs_n16 = gl.arange(0, 64, layout=gl.SliceLayout(1, blk16))
    offs_c = gl.arange(0, 128, layout=gl.SliceLayout(0, blk8))
    offs_r = gl.arange(0, 64, layout=gl.SliceLayout(0, blk16))
    idx8 = gl.load(idx_ptr + start + offs_n8)
    idx16 = gl.load(idx_ptr + start + offs_n16)
    for i in range(n_blocks):
        b = i % 2
        ok8 = (idx8 >= 0) & (idx8 < num_slots)
        rec8 = kv_ptr + gl.where(ok8, idx8, 0).to(gl.int64) * stride_ko
        ok16 = (idx16 >= 0) & (idx16 < num_slots)
        rec16 = kv_ptr + gl.where(ok16, idx16, 0).to(gl.int64) * stride_ko
        rope = gl.load((rec16 + _ROPE_OFF).to(gl.pointer_type(gl.bfloat16))[:, None] + offs_r[None, :],
                       mask=ok16[:, None], other=0.0)
        c0, s0 = _gather_tile(rec8, ok8, offs_c, 0)
        c1, s1 = _gather_tile(rec8, ok8, offs_c, 1)
        c2, s2 = _gather_tile(rec8, ok8, offs_c, 2)
        c3, s3 = _gather_tile(rec8, ok8, offs_c, 3)
        nxt = start + gl.minimum(i + 1, n_blocks - 1) * 64
        idx8 = gl.load(idx_ptr + nxt + offs_n8)
        idx16 = gl.load(idx_ptr + nxt + offs_n16)
        # wait until both math warpgroups released this buffer (a fresh barrier passes phase 1)
        mbarrier.wait(k_free.index(b), ((i // 2) & 1) ^ 1)
        kl = klat.index(b)
        krope.index(b).store(rope)
        _dequant_store(kl.slice(0, 128, dim=1), c0, s0, BF16_DEQUANT)
        _dequant_store(kl.slice(128, 128, dim=1), c1, s1, BF16_DEQUANT)
        _dequant_store(kl.slice(256, 128, dim=1), c2, s2, BF16_DEQUANT)
        _dequant_store(kl.slice(384, 128, dim=1), c3, s3, BF16_DEQUANT)
        fence_async_shared()
        mbarrier.arrive(k_ready.index(b), count=1)


@gluon.jit
def _math1(klat, p_smem, alpha_smem, oscale_smem, k_ready, k_free, p_ready, p_free, o_ready,
           out_ptr, lse_ptr, tok, head0, num_heads, n_blocks,
           stride_ot, stride_os, stride_oh, pid_s,
           SPLIT: gl.constexpr):
    """O[:, 256:] for the P that math 0 hands over (4 warps)."""
    mma_o: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 256, 16])
    rows: gl.constexpr = gl.SliceLayout(1, mma_o)
    o = gl.zeros([64, 256], gl.float32, mma_o)
    for i in range(n_blocks):
        b = i % 2
        mbarrier.wait(k_ready.index(b), (i // 2) & 1)
        mbarrier.wait(p_ready, i & 1)
        alpha = alpha_smem.load(rows)
        o = o * alpha[:, None]
        tok_o = warpgroup_mma(p_smem, klat.index(b).slice(256, 256, dim=1), o, is_async=True)
        o = warpgroup_mma_wait(0, deps=[tok_o])
        mbarrier.arrive(p_free, count=1)
        mbarrier.arrive(k_free.index(b), count=1)
    mbarrier.wait(o_ready, 0)
    inv = oscale_smem.load(rows)
    _store_o(o * inv[:, None], out_ptr, tok, head0, num_heads, stride_ot, stride_os, stride_oh, pid_s, 256,
             SPLIT, mma_o)


@gluon.jit
def _store_o(o, out_ptr, tok, head0, num_heads, stride_ot, stride_os, stride_oh, pid_s, col0: gl.constexpr,
             SPLIT: gl.constexpr, layout: gl.constexpr):
    offs_h = head0 + gl.arange(0, 64, layout=gl.SliceLayout(1, layout))
    offs_d = col0 + gl.arange(0, 256, layout=gl.SliceLayout(0, layout))
    ptrs = out_ptr + tok * stride_ot + pid_s.to(gl.int64) * stride_os + offs_h[:, None].to(gl.int64) * stride_oh \
        + offs_d[None, :]
    ok = (offs_h < num_heads)[:, None]
    if SPLIT:
        gl.store(ptrs, o, mask=ok)
    else:
        gl.store(ptrs, o.to(gl.bfloat16), mask=ok)


@gluon.jit
def _math0(q_ptr, idx_ptr, qlat, qrope, klat, krope, p_smem, alpha_smem, oscale_smem,
           k_ready, k_free, p_ready, p_free, o_ready,
           out_ptr, lse_ptr, tok, head0, num_heads, num_slots, start, n_blocks,
           stride_qh, stride_ot, stride_os, stride_oh, stride_lt, stride_ls, stride_lh, pid_s, qk_scale,
           SPLIT: gl.constexpr):
    """Q K^T, softmax, P to math 1, O[:, :256] (the default partition, 4 warps)."""
    mma_s: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 64, 16])
    mma_o: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 256, 16])
    p_op: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=mma_o, k_width=2)
    srows: gl.constexpr = gl.SliceLayout(1, mma_s)
    scols: gl.constexpr = gl.SliceLayout(0, mma_s)
    orows: gl.constexpr = gl.SliceLayout(1, mma_o)

    # Q into shared memory once: 4 latent tiles of 128 and the rope part
    blk: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0])
    offs_h = head0 + gl.arange(0, 64, layout=gl.SliceLayout(1, blk))
    q_rows = q_ptr + offs_h[:, None].to(gl.int64) * stride_qh
    h_ok = (offs_h < num_heads)[:, None]
    offs_c = gl.arange(0, 128, layout=gl.SliceLayout(0, blk))
    offs_r = gl.arange(0, 64, layout=gl.SliceLayout(0, blk))
    for j in gl.static_range(4):
        qlat.slice(j * 128, 128, dim=1).store(gl.load(q_rows + (j * 128) + offs_c[None, :], mask=h_ok, other=0.0))
    qrope.store(gl.load(q_rows + _LAT + offs_r[None, :], mask=h_ok, other=0.0))
    fence_async_shared()

    offs_n = gl.arange(0, 64, layout=scols)
    m_i = gl.full([64], float("-inf"), gl.float32, srows)
    l_i = gl.zeros([64], gl.float32, srows)
    o = gl.zeros([64, 256], gl.float32, mma_o)
    s0 = gl.zeros([64, 64], gl.float32, mma_s)
    for i in range(n_blocks):
        b = i % 2
        idx = gl.load(idx_ptr + start + i * 64 + offs_n)
        valid = (idx >= 0) & (idx < num_slots)
        mbarrier.wait(k_ready.index(b), (i // 2) & 1)
        kb = klat.index(b)
        kr = krope.index(b)
        tok_s = warpgroup_mma(qlat, kb.permute((1, 0)), s0, use_acc=False, is_async=True)
        tok_s = warpgroup_mma(qrope, kr.permute((1, 0)), tok_s, is_async=True)
        s = warpgroup_mma_wait(0, deps=[tok_s])
        s = gl.where(valid[None, :], s * qk_scale, float("-inf"))
        m_new = gl.maximum(m_i, gl.max(s, 1))
        m_use = gl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = gl.exp2(m_i - m_use)
        p = gl.exp2(s - m_use[:, None])
        l_i = l_i * alpha + gl.sum(p, 1)
        m_i = m_new
        pb = p.to(gl.bfloat16)
        # math 1 must be done with the previous P and alpha (a fresh barrier passes phase 1)
        mbarrier.wait(p_free, (i & 1) ^ 1)
        p_smem.store(pb)
        alpha_smem.store(alpha)
        fence_async_shared()
        mbarrier.arrive(p_ready, count=1)
        o = o * gl.convert_layout(alpha, orows)[:, None]
        tok_o = warpgroup_mma(gl.convert_layout(pb, p_op), kb.slice(0, 256, dim=1), o, is_async=True)
        o = warpgroup_mma_wait(0, deps=[tok_o])
        mbarrier.arrive(k_free.index(b), count=1)

    has = l_i > 0.0
    inv = gl.where(has, 1.0 / gl.where(has, l_i, 1.0), 0.0)
    lse2 = gl.where(has, m_i + gl.log2(gl.where(has, l_i, 1.0)), float("-inf"))
    oscale_smem.store(inv)
    mbarrier.arrive(o_ready, count=1)
    offs_hs = head0 + gl.arange(0, 64, layout=srows)
    lse_ptrs = lse_ptr + tok * stride_lt + pid_s.to(gl.int64) * stride_ls + offs_hs.to(gl.int64) * stride_lh
    if SPLIT:
        gl.store(lse_ptrs, lse2, mask=offs_hs < num_heads)
    else:
        gl.store(lse_ptrs, lse2 * _LN2, mask=offs_hs < num_heads)
    _store_o(o * gl.convert_layout(inv, orows)[:, None], out_ptr, tok, head0, num_heads, stride_ot, stride_os,
             stride_oh, pid_s, 0, SPLIT, mma_o)


@gluon.jit
def _shared_state(K_READY_ARRIVALS: gl.constexpr):
    """What the three partitions meet in, for decode and prefill alike: Q, the double-buffered K,
    P with its row factors, and the barriers. A K buffer is ready after K_READY_ARRIVALS arrivals
    (decode: the producer's one; prefill: one per producer thread's cp.async) and free when both
    math warpgroups are done with it."""
    lay_lat: gl.constexpr = gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=2)
    vec: gl.constexpr = gl.SwizzledSharedLayout(vec=1, per_phase=1, max_phase=1, order=[0])
    qlat = gl.allocate_shared_memory(gl.bfloat16, [64, _LAT], lay_lat)
    qrope = gl.allocate_shared_memory(gl.bfloat16, [64, _ROPE], lay_lat)
    klat = gl.allocate_shared_memory(gl.bfloat16, [2, 64, _LAT], lay_lat)
    krope = gl.allocate_shared_memory(gl.bfloat16, [2, 64, _ROPE], lay_lat)
    p_smem = gl.allocate_shared_memory(gl.bfloat16, [64, 64], lay_lat)
    alpha_smem = gl.allocate_shared_memory(gl.float32, [64], vec)
    oscale_smem = gl.allocate_shared_memory(gl.float32, [64], vec)
    k_ready = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    k_free = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    p_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    p_free = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    o_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    for b in gl.static_range(2):
        mbarrier.init(k_ready.index(b), count=K_READY_ARRIVALS)
        mbarrier.init(k_free.index(b), count=2)
    mbarrier.init(p_ready, count=1)
    mbarrier.init(p_free, count=1)
    mbarrier.init(o_ready, count=1)
    return qlat, qrope, klat, krope, p_smem, alpha_smem, oscale_smem, k_ready, k_free, p_ready, p_free, o_ready


@gluon.jit
def _decode_kernel(q_ptr, kv_ptr, idx_ptr, out_ptr, lse_ptr,
                   num_heads, num_slots, chunk,
                   stride_qt, stride_qh, stride_ko, stride_it,
                   stride_ot, stride_os, stride_oh, stride_lt, stride_ls, stride_lh,
                   qk_scale,
                   SPLIT: gl.constexpr, BF16_DEQUANT: gl.constexpr, MATH1_REGS: gl.constexpr,
                   PRODUCER_REGS: gl.constexpr):
    pid_h = gl.program_id(0)
    pid_s = gl.program_id(1)
    tok = gl.program_id(2).to(gl.int64)
    head0 = pid_h * 64
    start = pid_s * chunk
    n_blocks = chunk // 64

    (qlat, qrope, klat, krope, p_smem, alpha_smem, oscale_smem,
     k_ready, k_free, p_ready, p_free, o_ready) = _shared_state(1)

    q_tok = q_ptr + tok * stride_qt
    idx_tok = idx_ptr + tok * stride_it
    gl.warp_specialize([
        (_math0, (q_tok, idx_tok, qlat, qrope, klat, krope, p_smem, alpha_smem, oscale_smem,
                  k_ready, k_free, p_ready, p_free, o_ready,
                  out_ptr, lse_ptr, tok, head0, num_heads, num_slots, start, n_blocks,
                  stride_qh, stride_ot, stride_os, stride_oh, stride_lt, stride_ls, stride_lh, pid_s, qk_scale,
                  SPLIT)),
        (_math1, (klat, p_smem, alpha_smem, oscale_smem, k_ready, k_free, p_ready, p_free, o_ready,
                  out_ptr, lse_ptr, tok, head0, num_heads, n_blocks,
                  stride_ot, stride_os, stride_oh, pid_s, SPLIT)),
        (_producer, (kv_ptr, idx_tok, klat, krope, k_ready, k_free,
                     num_slots, stride_ko, start, n_blocks, BF16_DEQUANT)),
    ], [4, 4], [MATH1_REGS, PRODUCER_REGS])


# --------------------------------------------------------------------------------------------
# wrapper
# --------------------------------------------------------------------------------------------

_TRITON_MLA = []  # triton_mla loaded once from this folder: its split choice and combine kernel


def _triton_mla():
    if not _TRITON_MLA:
        import importlib.util  # noqa: PLC0415 - loaded by path like this file
        import os  # noqa: PLC0415

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "triton_mla.py")
        spec = importlib.util.spec_from_file_location("_dsabench_triton_mla_for_gluon", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _TRITON_MLA.append(mod)
    return _TRITON_MLA[0]


def even_split(n_blocks: int, num_splits: int) -> int:
    """Key blocks per split: the fewest, at least ceil(n_blocks / num_splits), that divide n_blocks
    (a split reads whole chunks, so the last one must not run past topk). At most the splits asked
    for; n_blocks itself (one split) when nothing smaller divides."""
    per = math.ceil(n_blocks / max(1, min(int(num_splits), n_blocks)))
    while n_blocks % per:
        per += 1
    return per


def _refuse(cond: bool, msg: str) -> None:
    if cond:
        raise ValueError(f"gluon sparse_mla_decode: {msg}")


def sparse_mla_decode(q, kv_cache, indices, softmax_scale: float, *, num_splits: int | None = None,
                      bf16_dequant: bool = False):
    """Sparse fp8 MLA decode; see the module docstring. Returns (out [T,1,H,512] bf16, lse [T,1,H] f32).
    Raises ValueError for inputs this kernel does not take (`--kernel gluon` records such a case
    `unsupported` before the call: bench/kernels/attention.gluon_refusal)."""
    import torch  # noqa: PLC0415

    _refuse(not q.is_cuda or torch.cuda.get_device_capability(q.device) != (9, 0), "needs an sm_90 device")
    _refuse(q.dim() != 4 or q.shape[1] != 1 or q.shape[3] != D_QK or q.dtype != torch.bfloat16 or q.stride(3) != 1,
            f"q must be bf16 [T, 1, H, {D_QK}] with a unit last stride; got {q.dtype} {tuple(q.shape)}")
    tokens, heads = q.shape[0], q.shape[2]
    _refuse(heads % BLOCK_H != 0, f"H must be a multiple of {BLOCK_H}; got {heads}")
    _refuse(kv_cache.dtype != torch.uint8 or kv_cache.shape[-1] != RECORD_BYTES or kv_cache.stride(-1) != 1,
            f"kv_cache must be uint8 [..., {RECORD_BYTES}]; got {kv_cache.dtype} {tuple(kv_cache.shape)}")
    if kv_cache.dim() == 4:
        _refuse(kv_cache.shape[2] != 1, f"kv_cache must be [num_blocks, block_size, 1, 656]; got {tuple(kv_cache.shape)}")
        num_slots = kv_cache.shape[0] * kv_cache.shape[1]
        _refuse(kv_cache.stride(1) != RECORD_BYTES or (kv_cache.shape[0] > 1 and kv_cache.stride(0) !=
                                                       kv_cache.shape[1] * RECORD_BYTES),
                f"kv_cache records must be {RECORD_BYTES} bytes apart and blocks contiguous; strides {kv_cache.stride()}")
    elif kv_cache.dim() == 2:
        num_slots = kv_cache.shape[0]
        _refuse(kv_cache.stride(0) != RECORD_BYTES, f"kv_cache rows must be {RECORD_BYTES} bytes apart")
    else:
        _refuse(True, f"kv_cache must be 4-D or 2-D; got {tuple(kv_cache.shape)}")
    _refuse(kv_cache.data_ptr() % 16 != 0, "kv_cache must be 16-byte aligned")
    _refuse(num_slots >= 2**31, "too many slots for int32 indices")
    _refuse(indices.dtype != torch.int32, f"indices must be int32; got {indices.dtype}")
    idx = indices[:, 0, :] if indices.dim() == 3 and indices.shape[1] == 1 else indices
    _refuse(idx.dim() != 2 or idx.shape[0] != tokens, f"indices must be [T, 1, topk]; got {tuple(indices.shape)}")
    if idx.stride(1) != 1:
        idx = idx.contiguous()
    topk = idx.shape[1]
    _refuse(topk == 0 or topk % BLOCK_N != 0, f"topk must be a positive multiple of {BLOCK_N}; got {topk}")

    out = torch.empty((tokens, 1, heads, D_LATENT), dtype=torch.bfloat16, device=q.device)
    lse = torch.empty((tokens, 1, heads), dtype=torch.float32, device=q.device)
    if tokens == 0:
        return out, lse
    tm = _triton_mla()
    n_blocks = topk // BLOCK_N
    head_blocks = heads // BLOCK_H
    if num_splits is None:
        num_splits = tm.choose_splits(tokens, head_blocks, topk, BLOCK_N, tm._sm_count(q.device))
    per = even_split(n_blocks, num_splits)
    chunk, num_splits = per * BLOCK_N, n_blocks // per
    qk_scale = float(softmax_scale) * LOG2E
    consts = dict(BF16_DEQUANT=bool(bf16_dequant), MATH1_REGS=WORKER_REGS[0], PRODUCER_REGS=WORKER_REGS[1],
                  num_warps=4, maxnreg=MAXNREG)
    grid = (head_blocks, num_splits, tokens)
    if num_splits == 1:
        _decode_kernel[grid](q, kv_cache, idx, out, lse, heads, num_slots, chunk,
                             q.stride(0), q.stride(2), RECORD_BYTES, idx.stride(0),
                             out.stride(0), 0, out.stride(2), lse.stride(0), 0, lse.stride(2),
                             qk_scale, SPLIT=False, **consts)
        return out, lse
    part = torch.empty((tokens, num_splits, heads, D_LATENT), dtype=torch.float32, device=q.device)
    plse = torch.empty((tokens, num_splits, heads), dtype=torch.float32, device=q.device)
    _decode_kernel[grid](q, kv_cache, idx, part, plse, heads, num_slots, chunk,
                         q.stride(0), q.stride(2), RECORD_BYTES, idx.stride(0),
                         part.stride(0), part.stride(1), part.stride(2), plse.stride(0), plse.stride(1),
                         plse.stride(2), qk_scale, SPLIT=True, **consts)
    out3, lse2 = out[:, 0], lse[:, 0]
    cbh = 8
    tm._combine_kernel[(math.ceil(heads / cbh), tokens)](
        part, plse, out3, lse2, heads, num_splits,
        part.stride(0), part.stride(1), part.stride(2),
        plse.stride(0), plse.stride(1), plse.stride(2),
        out3.stride(0), out3.stride(1), lse2.stride(0), lse2.stride(1),
        BLOCK_H=cbh, DV=D_LATENT, num_warps=4,
    )
    return out, lse
