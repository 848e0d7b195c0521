"""Warp-specialized sparse bf16 MLA prefill for sm_90a in Triton's Gluon (issue 23, item 5).

Loaded by path like gluon_mla.py, whose math partitions it shares (it loads that file from this
folder; both import only triton, and torch inside the wrapper). The prefill of `--kernel gluon`
(bench/kernels/attention.gluon_attention, skipping masked tail
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
A "balanced" variant (FlashMLA's split of the math: each math warpgroup computes S of every
other block) was measured slower as written (1.61x / 1.57x FlashMLA at p2048 / p4096 on equal
work, against 1.22x / 1.20x) and removed; it is in this file at commit e684c6b.
Blocks after the last one holding a valid index are skipped (``skip_masked_blocks``; the causal
rows of a fresh prefill are -1 padded at the end): every partition finds that block from the
index row before its loop. Exact: a block with no valid key leaves m, l and O as they are.
"""

from __future__ import annotations

import importlib.util
import os

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import async_copy, mbarrier


def _load_decode():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gluon_mla.py")
    spec = importlib.util.spec_from_file_location("_dsabench_gluon_mla_for_prefill", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_GM = _load_decode()
_math0 = _GM._math0  # the jit partitions, called from this file's kernel
_math1 = _GM._math1
_shared_state = _GM._shared_state
D_LATENT, D_QK = _GM.D_LATENT, _GM.D_QK
BLOCK_H, BLOCK_N = _GM.BLOCK_H, _GM.BLOCK_N
LOG2E = _GM.LOG2E
# Registers a thread: the producer only computes addresses; the rest as in decode.
MAXNREG = 168
WORKER_REGS = (160, 96)
SCAN = 2048  # indices read at once when looking for the last valid block
_LAT = gl.constexpr(D_LATENT)
_SCAN = gl.constexpr(SCAN)


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

    (qlat, qrope, klat, krope, p_smem, alpha_smem, oscale_smem,
     k_ready, k_free, p_ready, p_free, o_ready) = _shared_state(128)  # one cp.async arrival per producer thread

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


def _refuse(cond: bool, msg: str) -> None:
    if cond:
        raise ValueError(f"gluon sparse_mla_prefill: {msg}")


def sparse_mla_prefill(q, kv, indices, softmax_scale: float, *, skip_masked_blocks: bool = True):
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
    _prefill_kernel[(heads // BLOCK_H, tokens)](
        q, kv, idx, out, lse, heads, rows, topk,
        q.stride(0), q.stride(1), kv.stride(0), idx.stride(0),
        out.stride(0), out.stride(1), lse.stride(0), lse.stride(1),
        float(softmax_scale) * LOG2E,
        SKIP=bool(skip_masked_blocks), MATH1_REGS=WORKER_REGS[0], PRODUCER_REGS=WORKER_REGS[1],
        num_warps=4, maxnreg=MAXNREG)
    return out, lse
