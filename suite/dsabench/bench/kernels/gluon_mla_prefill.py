"""Warp-specialized sparse bf16 MLA prefill for sm_90a in Triton's Gluon (issue 23, item 5).

Loaded by path like gluon_mla.py, whose math partitions it shares (it loads that file from this
folder; both import only triton, and torch inside the wrapper). The prefill of `--kernel gluon`
(bench/kernels/attention.gluon_attention, the default variant: unbalanced, skipping masked tail
blocks); scripts/gluon_check.py measures it against the Triton kernel and FlashMLA.

``sparse_mla_prefill(q, kv, indices, softmax_scale) -> (out, lse)`` has the contract of
triton_mla.sparse_mla_prefill: q [T,H,576] bf16, kv [S,1,576] or [S,576] bf16 (K = all 576
columns, V = the first 512), indices [T,1,topk] or [T,topk] int32 rows of kv (-1 and
out-of-range rows masked, never read), out [T,H,512] bf16, lse [T,H] float32 natural log; an
all-masked row gives out 0 and lse -inf. CUDA-graph capturable, deterministic (no atomics).
Narrower than the Triton kernel, and it says so with a ValueError (`--kernel gluon` refuses
such a case before the call: attention.gluon_refusal): an
sm_90 device, H a multiple of 64, topk a multiple of 64, unit last strides of q and kv, kv rows
16-byte aligned.

Design (FlashMLA's sm90 sparse prefill shape, the decode kernel's partitions): one CTA per
(64 heads, token), three warpgroups through mbarriers:
  producer (worker, 4 warps)  gathers each block of 64 kv rows straight into shared memory with
                              cp.async (16 B a copy; masked rows are zero-filled, never read),
                              double-buffered: K_lat [2, 64, 512], K_rope [2, 64, 64]; each thread's
                              copies arrive on the buffer's barrier when they land (no register
                              staging, no wait in the producer);
  math 0, math 1              gluon_mla's: S = Q K^T, online softmax, O[:, :256] in math 0 and
                              O[:, 256:] in math 1 from P in shared memory.
``balanced=True``: FlashMLA's split of the math instead (its kernel shape, written anew): math 0
takes S = Q K^T of the even blocks, math 1 of the odd ones; math 1 takes the max over both, math 0
rescales its P to it; each warpgroup then adds both blocks' P V to its 256 columns (its own P
from registers, the other's from shared memory), so both do the same work. Each K buffer has a
left half (V columns 0..255) and a right half (256..511 and the rope) with their own barriers;
the even block's P goes into its rope part, dead after its S. Math 0 and math 1 get 216
registers, the producer 72. Slower as written (H200, 2026-12-03, scripts/gluon_check.py: 1.61x
and 1.57x FlashMLA at p2048 and p4096 without skipping, against 1.22x and 1.20x for the default):
each warpgroup waits for every wgmma before its next step, where FlashMLA overlaps them.
Blocks after the last one holding a valid index are skipped (``skip_masked_blocks``; the causal
rows of a fresh prefill are -1 padded at the end): every partition finds that block from the
index row before its loop. Exact: a block with no valid key leaves m, l and O as they are.
"""

from __future__ import annotations

import importlib.util
import os

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import async_copy, fence_async_shared, mbarrier, \
    warpgroup_mma, warpgroup_mma_wait


def _load_decode():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gluon_mla.py")
    spec = importlib.util.spec_from_file_location("_dsabench_gluon_mla_for_prefill", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_GM = _load_decode()
_math0 = _GM._math0  # the jit partitions, called from this file's kernel
_math1 = _GM._math1
_store_o = _GM._store_o
D_LATENT, D_ROPE, D_QK = _GM.D_LATENT, _GM.D_ROPE, _GM.D_QK
BLOCK_H, BLOCK_N = _GM.BLOCK_H, _GM.BLOCK_N
LOG2E = _GM.LOG2E
# Registers a thread: the producer only computes addresses; the rest as in decode.
MAXNREG = 168
WORKER_REGS = (160, 96)
SCAN = 2048  # indices read at once when looking for the last valid block
_LAT = gl.constexpr(D_LATENT)
_SCAN = gl.constexpr(SCAN)
_LN2 = gl.constexpr(_GM.LN2)
BALANCED_REGS = (216, 72)  # math 1 and the producer; math 0 gets 216 too (FlashMLA: 216/216/72)


@gluon.jit
def _producer(kv_ptr, idx_ptr, klat, krope, k_ready, k_free, num_rows, stride_kv, n_blocks):
    """cp.async each block of 64 kv rows into the free buffer (4 warps); the next block's indices
    are read one block ahead."""
    blk: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0])  # [64, 64] bf16: 16 B a thread
    offs_n = gl.arange(0, 64, layout=gl.SliceLayout(1, blk))
    offs_c = gl.arange(0, 64, layout=gl.SliceLayout(0, blk))
    idx = gl.load(idx_ptr + offs_n)
    for i in range(n_blocks):
        b = i % 2
        ok = (idx >= 0) & (idx < num_rows)
        ptrs = (kv_ptr + gl.where(ok, idx, 0).to(gl.int64) * stride_kv)[:, None] + offs_c[None, :]
        okm = ok[:, None]
        idx = gl.load(idx_ptr + gl.minimum(i + 1, n_blocks - 1) * 64 + offs_n)
        # wait until both math warpgroups released this buffer (a fresh barrier passes phase 1)
        mbarrier.wait(k_free.index(b), ((i // 2) & 1) ^ 1)
        kl = klat.index(b)
        for j in gl.static_range(_LAT // 64):
            async_copy.async_copy_global_to_shared(kl.slice(j * 64, 64, dim=1), ptrs + j * 64, mask=okm)
        async_copy.async_copy_global_to_shared(krope.index(b), ptrs + _LAT, mask=okm)
        async_copy.mbarrier_arrive(k_ready.index(b), increment_count=False)


@gluon.jit
def _used_blocks(idx_ptr, topk, num_rows, SKIP: gl.constexpr):
    """Blocks up to the last one with a valid index (all of them without SKIP)."""
    if SKIP:
        scan: gl.constexpr = gl.BlockedLayout([4], [32], [4], [0])
        offs = gl.arange(0, _SCAN, layout=scan)
        last = gl.max(gl.full([_SCAN], -1, gl.int32, scan), 0)
        for k0 in range(0, topk, _SCAN):
            o = k0 + offs
            idx = gl.load(idx_ptr + o, mask=o < topk, other=-1)
            ok = (idx >= 0) & (idx < num_rows)
            last = gl.maximum(last, gl.max(gl.where(ok, o, -1), 0))
        n = (last + 64) // 64
    else:
        n = topk // 64
    return n


@gluon.jit(do_not_specialize=["num_heads", "num_rows", "topk"])
def _prefill_kernel(q_ptr, kv_ptr, idx_ptr, out_ptr, lse_ptr,
                    num_heads, num_rows, topk,
                    stride_qt, stride_qh, stride_kv, stride_it,
                    stride_ot, stride_oh, stride_lt, stride_lh,
                    qk_scale,
                    SKIP: gl.constexpr, MATH1_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr):
    pid_h = gl.program_id(0)
    tok = gl.program_id(1).to(gl.int64)
    head0 = pid_h * 64
    q_tok = q_ptr + tok * stride_qt
    idx_tok = idx_ptr + tok * stride_it
    n_blocks = _used_blocks(idx_tok, topk, num_rows, SKIP)

    lay: gl.constexpr = gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=2)
    vec: gl.constexpr = gl.SwizzledSharedLayout(vec=1, per_phase=1, max_phase=1, order=[0])
    qlat = gl.allocate_shared_memory(gl.bfloat16, [64, _LAT], lay)
    qrope = gl.allocate_shared_memory(gl.bfloat16, [64, 64], lay)
    klat = gl.allocate_shared_memory(gl.bfloat16, [2, 64, _LAT], lay)
    krope = gl.allocate_shared_memory(gl.bfloat16, [2, 64, 64], lay)
    p_smem = gl.allocate_shared_memory(gl.bfloat16, [64, 64], lay)
    alpha_smem = gl.allocate_shared_memory(gl.float32, [64], vec)
    oscale_smem = gl.allocate_shared_memory(gl.float32, [64], vec)
    k_ready = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    k_free = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    p_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    p_free = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    o_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    for b in gl.static_range(2):
        mbarrier.init(k_ready.index(b), count=128)  # one cp.async arrival per producer thread
        mbarrier.init(k_free.index(b), count=2)
    mbarrier.init(p_ready, count=1)
    mbarrier.init(p_free, count=1)
    mbarrier.init(o_ready, count=1)

    zero = pid_h * 0  # split index and stride of the decode partitions' split axis
    gl.warp_specialize([
        (_math0, (q_tok, idx_tok, qlat, qrope, klat, krope, p_smem, alpha_smem, oscale_smem,
                  k_ready, k_free, p_ready, p_free, o_ready,
                  out_ptr, lse_ptr, tok, head0, num_heads, num_rows, 0, n_blocks,
                  stride_qh, stride_ot, 0, stride_oh, stride_lt, 0, stride_lh, zero, qk_scale,
                  False)),
        (_math1, (klat, p_smem, alpha_smem, oscale_smem, k_ready, k_free, p_ready, p_free, o_ready,
                  out_ptr, lse_ptr, tok, head0, num_heads, n_blocks,
                  stride_ot, 0, stride_oh, zero, False)),
        (_producer, (kv_ptr, idx_tok, klat, krope, k_ready, k_free, num_rows, stride_kv, n_blocks)),
    ], [4, 4], [MATH1_REGS, PRODUCER_REGS])


# --------------------------------------------------------------------------------------------
# balanced: FlashMLA's split of the math (each math warpgroup takes S = Q K^T of every other block)
# --------------------------------------------------------------------------------------------
# K buffer halves, each with its own ready and free barrier: L = latent columns 0..255 (V for math 0),
# R = latent 256..511 and the rope (V for math 1). Block 2p goes to buffer 0, block 2p+1 to buffer 1.
_K0L: gl.constexpr = gl.constexpr(0)
_K0R: gl.constexpr = gl.constexpr(1)
_K1L: gl.constexpr = gl.constexpr(2)
_K1R: gl.constexpr = gl.constexpr(3)
_M_INIT: gl.constexpr = gl.constexpr(-1e30)  # the running max before any key (finite: no inf - inf)


@gluon.jit
def _copy_half(kv_ptr, idx_ptr, klat, krope, ready, blk_i, num_rows, stride_kv, topk, RIGHT: gl.constexpr):
    """cp.async one half of block blk_i's rows (past topk: masked) into buffer half `klat`/`krope`."""
    blk: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0])
    offs_n = blk_i * 64 + gl.arange(0, 64, layout=gl.SliceLayout(1, blk))
    offs_c = gl.arange(0, 64, layout=gl.SliceLayout(0, blk))
    idx = gl.load(idx_ptr + offs_n, mask=offs_n < topk, other=-1)
    ok = (idx >= 0) & (idx < num_rows)
    ptrs = (kv_ptr + gl.where(ok, idx, 0).to(gl.int64) * stride_kv)[:, None] + offs_c[None, :]
    okm = ok[:, None]
    if RIGHT:
        for j in gl.static_range(4):
            async_copy.async_copy_global_to_shared(klat.slice(256 + j * 64, 64, dim=1), ptrs + (256 + j * 64),
                                                   mask=okm)
        async_copy.async_copy_global_to_shared(krope, ptrs + _LAT, mask=okm)
    else:
        for j in gl.static_range(4):
            async_copy.async_copy_global_to_shared(klat.slice(j * 64, 64, dim=1), ptrs + j * 64, mask=okm)
    async_copy.mbarrier_arrive(ready, increment_count=False)


@gluon.jit
def _bal_producer(kv_ptr, idx_ptr, klat, krope, k_ready, k_free, num_rows, stride_kv, topk, n_pairs):
    for p in range(n_pairs):
        ph = (p & 1) ^ 1  # a fresh barrier passes phase 1
        mbarrier.wait(k_free.index(_K0L), ph)
        _copy_half(kv_ptr, idx_ptr, klat.index(0), krope.index(0), k_ready.index(_K0L), 2 * p, num_rows, stride_kv, topk, False)
        mbarrier.wait(k_free.index(_K1R), ph)
        _copy_half(kv_ptr, idx_ptr, klat.index(1), krope.index(1), k_ready.index(_K1R), 2 * p + 1, num_rows, stride_kv, topk, True)
        mbarrier.wait(k_free.index(_K0R), ph)
        _copy_half(kv_ptr, idx_ptr, klat.index(0), krope.index(0), k_ready.index(_K0R), 2 * p, num_rows, stride_kv, topk, True)
        mbarrier.wait(k_free.index(_K1L), ph)
        _copy_half(kv_ptr, idx_ptr, klat.index(1), krope.index(1), k_ready.index(_K1L), 2 * p + 1, num_rows, stride_kv, topk, False)


@gluon.jit
def _bal_scores(qlat, qrope, kb, kr, idx_ptr, blk_i, num_rows, topk, qk_scale):
    """S = Q K^T of one block, scaled to base 2, masked keys -inf."""
    mma_s: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 64, 16])
    tok_s = warpgroup_mma(qlat, kb.permute((1, 0)), gl.zeros([64, 64], gl.float32, mma_s), use_acc=False,
                          is_async=True)
    tok_s = warpgroup_mma(qrope, kr.permute((1, 0)), tok_s, is_async=True)
    s = warpgroup_mma_wait(0, deps=[tok_s])
    offs = blk_i * 64 + gl.arange(0, 64, layout=gl.SliceLayout(0, mma_s))
    idx = gl.load(idx_ptr + offs, mask=offs < topk, other=-1)
    return gl.where(((idx >= 0) & (idx < num_rows))[None, :], s * qk_scale, float("-inf"))


@gluon.jit
def _bal_pv(a, v, o):
    tok = warpgroup_mma(a, v, o, is_async=True)
    return warpgroup_mma_wait(0, deps=[tok])


@gluon.jit
def _bal_epilogue(o, m, l, sl, l_mine, l_other, out_ptr, lse_ptr, tok, head0, num_heads,
                  stride_ot, stride_oh, stride_lt, stride_lh, WG: gl.constexpr):
    """Add the other warpgroup's row sums, normalize and store this warpgroup's 256 columns (and lse)."""
    mma_o: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 256, 16])
    srows: gl.constexpr = gl.SliceLayout(1, gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                                      instr_shape=[16, 64, 16]))
    sl.index(WG).store(l)
    mbarrier.arrive(l_mine, count=1)
    mbarrier.wait(l_other, 0)
    l = l + sl.index(1 - WG).load(srows)
    has = l > 0.0
    inv = gl.where(has, 1.0 / gl.where(has, l, 1.0), 0.0)
    if WG == 1:
        offs_h = head0 + gl.arange(0, 64, layout=srows)
        lse = gl.where(has, (m + gl.log2(gl.where(has, l, 1.0))) * _LN2, float("-inf"))
        gl.store(lse_ptr + tok * stride_lt + offs_h.to(gl.int64) * stride_lh, lse, mask=offs_h < num_heads)
    _store_o(o * gl.convert_layout(inv, gl.SliceLayout(1, mma_o))[:, None], out_ptr, tok, head0, num_heads,
             stride_ot, 0, stride_oh, tok * 0, WG * 256, False, mma_o)


@gluon.jit
def _bal_math0(q_ptr, idx_ptr, qlat, qrope, klat, krope, s1_smem, m_smem, l_smem, q_ready, k_ready, k_free,
               m0_ready, m1_ready, s0_ready, s1_ready, l0_ready, l1_ready,
               out_ptr, lse_ptr, tok, head0, num_heads, num_rows, topk, n_pairs,
               stride_qh, stride_ot, stride_oh, stride_lt, stride_lh, qk_scale):
    """Blocks 2p: S, softmax against the running max; O[:, :256] += P0 V0 + P1 V1 (default, 4 warps)."""
    mma_s: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 64, 16])
    mma_o: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 256, 16])
    p_op: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=mma_o, k_width=2)
    srows: gl.constexpr = gl.SliceLayout(1, mma_s)
    orows: gl.constexpr = gl.SliceLayout(1, mma_o)
    blk: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0])
    offs_h = head0 + gl.arange(0, 64, layout=gl.SliceLayout(1, blk))
    q_rows = q_ptr + offs_h[:, None].to(gl.int64) * stride_qh
    h_ok = (offs_h < num_heads)[:, None]
    offs_c = gl.arange(0, 128, layout=gl.SliceLayout(0, blk))
    for j in gl.static_range(4):
        qlat.index(0).slice(j * 128, 128, dim=1).store(gl.load(q_rows + (j * 128) + offs_c[None, :], mask=h_ok,
                                                               other=0.0))
    qrope.index(0).store(gl.load(q_rows + _LAT + gl.arange(0, 64, layout=gl.SliceLayout(0, blk))[None, :], mask=h_ok,
                                 other=0.0))
    fence_async_shared()
    mbarrier.arrive(q_ready, count=1)

    m = gl.full([64], _M_INIT, gl.float32, srows)
    l = gl.zeros([64], gl.float32, srows)
    o = gl.zeros([64, 256], gl.float32, mma_o)
    for p in range(n_pairs):
        ph = p & 1
        z = p >> 30  # 0, but not loop-invariant: keeps ptxas from hoisting every wgmma descriptor (spills)
        k0 = klat.index(z)
        mbarrier.wait(k_ready.index(_K0L), ph)
        mbarrier.wait(k_ready.index(_K0R), ph)
        s = _bal_scores(qlat.index(z), qrope.index(z), k0, krope.index(z), idx_ptr, 2 * p, num_rows, topk, qk_scale)
        m0 = gl.maximum(m, gl.max(s, 1))
        alpha = gl.exp2(m - m0)
        pr = gl.exp2(s - m0[:, None])
        l = l * alpha + gl.sum(pr, 1)
        m_smem.store(m0)
        mbarrier.arrive(m0_ready, count=1)
        pb = pr.to(gl.bfloat16)
        o = o * gl.convert_layout(alpha, orows)[:, None]
        o = _bal_pv(gl.convert_layout(pb, p_op), k0.slice(0, 256, dim=1), o)
        mbarrier.arrive(k_free.index(_K0L), count=1)
        # math 1's max over both blocks: rescale P0 to it and hand it over (in block 0's rope buffer)
        mbarrier.wait(m1_ready, ph)
        m = m_smem.load(srows)
        sc = gl.exp2(m0 - m)
        krope.index(z).store((pr * sc[:, None]).to(gl.bfloat16))
        fence_async_shared()
        mbarrier.arrive(s0_ready, count=1)
        l = l * sc
        o = o * gl.convert_layout(sc, orows)[:, None]
        mbarrier.wait(s1_ready, ph)
        mbarrier.wait(k_ready.index(_K1L), ph)
        o = _bal_pv(s1_smem, klat.index(z + 1).slice(0, 256, dim=1), o)
        mbarrier.arrive(k_free.index(_K1L), count=1)
    _bal_epilogue(o, m, l, l_smem, l0_ready, l1_ready, out_ptr, lse_ptr, tok, head0, num_heads,
                  stride_ot, stride_oh, stride_lt, stride_lh, 0)


@gluon.jit
def _bal_math1(idx_ptr, qlat, qrope, klat, krope, s1_smem, m_smem, l_smem, q_ready, k_ready, k_free,
               m0_ready, m1_ready, s0_ready, s1_ready, l0_ready, l1_ready,
               out_ptr, lse_ptr, tok, head0, num_heads, num_rows, topk, n_pairs,
               stride_ot, stride_oh, stride_lt, stride_lh, qk_scale):
    """Blocks 2p+1: S, softmax against math 0's max; O[:, 256:] += P1 V1 + P0 V0 (worker, 4 warps)."""
    mma_s: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 64, 16])
    mma_o: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 256, 16])
    p_op: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=mma_o, k_width=2)
    srows: gl.constexpr = gl.SliceLayout(1, mma_s)
    orows: gl.constexpr = gl.SliceLayout(1, mma_o)
    m = gl.full([64], _M_INIT, gl.float32, srows)
    l = gl.zeros([64], gl.float32, srows)
    o = gl.zeros([64, 256], gl.float32, mma_o)
    mbarrier.wait(q_ready, 0)
    for p in range(n_pairs):
        ph = p & 1
        z = p >> 30  # 0, not loop-invariant (as in math 0)
        k1 = klat.index(z + 1)
        mbarrier.wait(k_ready.index(_K1R), ph)
        mbarrier.wait(k_ready.index(_K1L), ph)
        s = _bal_scores(qlat.index(z), qrope.index(z), k1, krope.index(z + 1), idx_ptr, 2 * p + 1, num_rows, topk,
                        qk_scale)
        mbarrier.wait(m0_ready, ph)
        m1 = gl.maximum(m_smem.load(srows), gl.max(s, 1))
        alpha = gl.exp2(m - m1)
        m = m1
        pr = gl.exp2(s - m1[:, None])
        l = l * alpha + gl.sum(pr, 1)
        m_smem.store(m1)
        mbarrier.arrive(m1_ready, count=1)
        pb = pr.to(gl.bfloat16)
        o = o * gl.convert_layout(alpha, orows)[:, None]
        s1_smem.store(pb)
        fence_async_shared()
        mbarrier.arrive(s1_ready, count=1)
        o = _bal_pv(gl.convert_layout(pb, p_op), k1.slice(256, 256, dim=1), o)
        mbarrier.arrive(k_free.index(_K1R), count=1)
        mbarrier.wait(s0_ready, ph)
        o = _bal_pv(krope.index(z), klat.index(z).slice(256, 256, dim=1), o)
        mbarrier.arrive(k_free.index(_K0R), count=1)
    _bal_epilogue(o, m, l, l_smem, l1_ready, l0_ready, out_ptr, lse_ptr, tok, head0, num_heads,
                  stride_ot, stride_oh, stride_lt, stride_lh, 1)


@gluon.jit(do_not_specialize=["num_heads", "num_rows", "topk"])
def _balanced_kernel(q_ptr, kv_ptr, idx_ptr, out_ptr, lse_ptr,
                     num_heads, num_rows, topk,
                     stride_qt, stride_qh, stride_kv, stride_it,
                     stride_ot, stride_oh, stride_lt, stride_lh,
                     qk_scale,
                     SKIP: gl.constexpr, MATH1_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr):
    pid_h = gl.program_id(0)
    tok = gl.program_id(1).to(gl.int64)
    head0 = pid_h * 64
    idx_tok = idx_ptr + tok * stride_it
    n_pairs = (_used_blocks(idx_tok, topk, num_rows, SKIP) + 1) // 2

    lay: gl.constexpr = gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=2)
    vec: gl.constexpr = gl.SwizzledSharedLayout(vec=1, per_phase=1, max_phase=1, order=[0])
    qlat = gl.allocate_shared_memory(gl.bfloat16, [1, 64, _LAT], lay)  # [1, ...]: indexed by an opaque 0
    qrope = gl.allocate_shared_memory(gl.bfloat16, [1, 64, 64], lay)
    klat = gl.allocate_shared_memory(gl.bfloat16, [2, 64, _LAT], lay)
    krope = gl.allocate_shared_memory(gl.bfloat16, [2, 64, 64], lay)
    s1_smem = gl.allocate_shared_memory(gl.bfloat16, [64, 64], lay)
    m_smem = gl.allocate_shared_memory(gl.float32, [64], vec)
    l_smem = gl.allocate_shared_memory(gl.float32, [2, 64], vec)
    k_ready = gl.allocate_shared_memory(gl.int64, [4, 1], mbarrier.MBarrierLayout())
    k_free = gl.allocate_shared_memory(gl.int64, [4, 1], mbarrier.MBarrierLayout())
    sig = gl.allocate_shared_memory(gl.int64, [7, 1], mbarrier.MBarrierLayout())
    for b in gl.static_range(4):
        mbarrier.init(k_ready.index(b), count=128)  # one cp.async arrival per producer thread
        mbarrier.init(k_free.index(b), count=1)
    for b in gl.static_range(7):
        mbarrier.init(sig.index(b), count=1)
    sigs = (sig.index(0), sig.index(1), sig.index(2), sig.index(3), sig.index(4), sig.index(5), sig.index(6))
    # q_ready, m0_ready, m1_ready, s0_ready, s1_ready, l0_ready, l1_ready
    gl.warp_specialize([
        (_bal_math0, (q_ptr + tok * stride_qt, idx_tok, qlat, qrope, klat, krope, s1_smem, m_smem, l_smem,
                      sigs[0], k_ready, k_free, sigs[1], sigs[2], sigs[3], sigs[4], sigs[5], sigs[6],
                      out_ptr, lse_ptr, tok, head0, num_heads, num_rows, topk, n_pairs,
                      stride_qh, stride_ot, stride_oh, stride_lt, stride_lh, qk_scale)),
        (_bal_math1, (idx_tok, qlat, qrope, klat, krope, s1_smem, m_smem, l_smem,
                      sigs[0], k_ready, k_free, sigs[1], sigs[2], sigs[3], sigs[4], sigs[5], sigs[6],
                      out_ptr, lse_ptr, tok, head0, num_heads, num_rows, topk, n_pairs,
                      stride_ot, stride_oh, stride_lt, stride_lh, qk_scale)),
        (_bal_producer, (kv_ptr, idx_tok, klat, krope, k_ready, k_free, num_rows, stride_kv, topk, n_pairs)),
    ], [4, 4], [MATH1_REGS, PRODUCER_REGS])


def _refuse(cond: bool, msg: str) -> None:
    if cond:
        raise ValueError(f"gluon sparse_mla_prefill: {msg}")


def sparse_mla_prefill(q, kv, indices, softmax_scale: float, *, skip_masked_blocks: bool = True,
                       balanced: bool = False):
    """Sparse bf16 MLA prefill; see the module docstring. Returns (out [T,H,512] bf16, lse [T,H] f32).
    Raises ValueError for inputs this kernel does not take (`--kernel gluon` records such a case
    `unsupported` before the call: bench/kernels/attention.gluon_refusal)."""
    import torch  # noqa: PLC0415

    _refuse(not q.is_cuda or torch.cuda.get_device_capability(q.device) != (9, 0), "needs an sm_90 device")
    _refuse(q.dim() != 3 or q.shape[2] != D_QK or q.dtype != torch.bfloat16 or q.stride(2) != 1,
            f"q must be bf16 [T, H, {D_QK}] with a unit last stride; got {q.dtype} {tuple(q.shape)}")
    tokens, heads = q.shape[0], q.shape[1]
    _refuse(heads % BLOCK_H != 0, f"H must be a multiple of {BLOCK_H}; got {heads}")
    if kv.dim() == 3:
        _refuse(kv.shape[1] != 1, f"kv must be [S, 1, {D_QK}]; got {tuple(kv.shape)}")
        kv = kv[:, 0, :]
    _refuse(kv.dim() != 2 or kv.shape[1] != D_QK or kv.dtype != torch.bfloat16 or kv.stride(1) != 1,
            f"kv must be bf16 [S, 1, {D_QK}] with a unit last stride; got {kv.dtype} {tuple(kv.shape)}")
    _refuse(kv.data_ptr() % 16 != 0 or kv.stride(0) % 8 != 0, "kv rows must be 16-byte aligned")
    rows = kv.shape[0]
    _refuse(rows >= 2**31, "too many kv rows for int32 indices")
    _refuse(indices.dtype != torch.int32, f"indices must be int32; got {indices.dtype}")
    idx = indices[:, 0, :] if indices.dim() == 3 and indices.shape[1] == 1 else indices
    _refuse(idx.dim() != 2 or idx.shape[0] != tokens, f"indices must be [T, 1, topk]; got {tuple(indices.shape)}")
    _refuse(idx.stride(1) != 1, "indices must have a unit last stride")
    topk = idx.shape[1]
    _refuse(topk == 0 or topk % BLOCK_N != 0, f"topk must be a positive multiple of {BLOCK_N}; got {topk}")

    out = torch.empty((tokens, heads, D_LATENT), dtype=torch.bfloat16, device=q.device)
    lse = torch.empty((tokens, heads), dtype=torch.float32, device=q.device)
    if tokens == 0:
        return out, lse
    kernel, regs = (_balanced_kernel, BALANCED_REGS) if balanced else (_prefill_kernel, WORKER_REGS)
    kernel[(heads // BLOCK_H, tokens)](
        q, kv, idx, out, lse, heads, rows, topk,
        q.stride(0), q.stride(1), kv.stride(0), idx.stride(0),
        out.stride(0), out.stride(1), lse.stride(0), lse.stride(1),
        float(softmax_scale) * LOG2E,
        SKIP=bool(skip_masked_blocks), MATH1_REGS=regs[0], PRODUCER_REGS=regs[1],
        num_warps=4, maxnreg=MAXNREG)
    return out, lse
