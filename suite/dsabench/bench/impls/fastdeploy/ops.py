"""The suite's plain-Paddle `flash_mla` and `fastdeploy.model_executor.ops.gpu`, FastDeploy's layout.

Used where FastDeploy's compiled ops and FlashMLA do not import (a CPU machine, a tree that was
not built). Each function takes the arguments FastDeploy's `forward_mixed` passes, in the same
order, checks the ones it does not implement are unused, and calls the mirror's math
(`dsabench.bench.backends.paddle`): the numbers are the mirror's, the call sites FastDeploy's.

The two attention calls (`flash_mla_sparse_fwd`, `flash_mla_with_kvcache`) run the kernel the
backend asks for through the bridge (`PhaseBridge.attention`, set before each forward): None is
the mirror's plain-Paddle math; FlashMLA (bench/kernels/attention.py: `paddle.enable_compat`, as
FastDeploy does) takes FastDeploy's arguments as FastDeploy passes them. The bridge's `ran` says
which kernel each call really ran in the last forward, and records carry it (`attention_ran`).

`with_phases` wraps either set (FastDeploy's or these) in proxies that mark each op's phase
through a `PhaseBridge`, so a forward of FastDeploy's code is timed
per phase like the mirror: `write_cache`, `prefill`, `decode`, `merge` are the ops themselves;
`layout` runs from `get_mla_metadata` returning to `flash_mla_with_kvcache` being entered, which
is where FastDeploy evaluates the cache argument (`transpose(...).contiguous()` or `view`; the
`q.unsqueeze(1).contiguous()` argument falls in it too). The bridge also keeps the data pointer
and size of the cache the decode kernel received, so the layout copy is measured, not assumed.
"""

from __future__ import annotations

import types

import paddle

from dsabench.bench.backends.base import NULL_MARKER, Marker
from dsabench.bench.backends.paddle import merge_prefill_decode_output as _merge_rows
from dsabench.bench.backends.paddle import sparse_decode, sparse_prefill, write_cache
from dsabench.errors import InvalidCase, Unsupported
from dsabench.workload.dims import DEFAULT_DIMS

MERGE_WARPS = 4  # FastDeploy's merge kernel: tokens per (request, head) block = 4 warps * ceil(max_token / 4)


class PhaseBridge:
    """One open phase span at a time, opened and closed from inside the ops."""

    def __init__(self) -> None:
        self.mark: Marker = NULL_MARKER
        self._open = None
        self.decode_cache_ptr: int | None = None
        self.decode_cache_bytes = 0
        self.attention = None  # kernels.attention.Attention for dsabench's ops' two calls; None: plain Paddle
        self.ran: dict[str, str] = {}  # "prefill" / "decode" -> the kernel that call ran in the last forward

    def open(self, name: str) -> None:
        self.close()
        cm = self.mark(name)
        cm.__enter__()
        self._open = cm

    def close(self) -> None:
        cm, self._open = self._open, None
        if cm is not None:
            cm.__exit__(None, None, None)


def _unused(op: str, **args) -> None:
    for name, value in args.items():
        if value is not None:
            raise Unsupported(f"{op}: argument {name} is not implemented by dsabench's plain-Paddle op (got a value)")


def make_ops(dims=DEFAULT_DIMS, bridge: PhaseBridge | None = None) -> tuple[types.ModuleType, types.ModuleType]:
    """(flash_mla, fastdeploy.model_executor.ops.gpu) as module objects; the attention calls run
    `bridge.attention` when it is set (a kernel of bench/kernels), else the plain-Paddle math."""
    bridge = bridge or PhaseBridge()

    def kernel() -> str:
        return bridge.attention.kernel if bridge.attention is not None else "reference"

    def dsk_attn_write_cache(compressed_kv, k_pe, kv_cache, slot_mapping, scale, cache_quant_type):
        if cache_quant_type != "fp8_ds_mla":
            raise Unsupported(f"dsk_attn_write_cache: cache_quant_type {cache_quant_type!r}; dsabench has 'fp8_ds_mla'")
        write_cache(compressed_kv, k_pe, kv_cache, slot_mapping, scale)

    def flash_mla_sparse_fwd(q, kv, indices, sm_scale, d_v=512, attn_sink=None, topk_length=None):
        """(out, max_logits, lse); max_logits and lse are None: forward_mixed discards them."""
        _unused("flash_mla_sparse_fwd", attn_sink=attn_sink, topk_length=topk_length)
        if d_v != dims.kv_lora_rank:
            raise Unsupported(f"flash_mla_sparse_fwd: d_v {d_v}; FlashMLA and dsabench support {dims.kv_lora_rank}")
        bridge.ran["prefill"] = kernel()
        if bridge.attention is not None:  # FlashMLA takes indices >= s_kv as masked itself
            return bridge.attention.prefill(q, kv, indices, sm_scale), None, None
        s_kv = kv.shape[0]
        # FlashMLA: "invalid indices should be set to -1 or numbers >= s_kv"
        idx = paddle.where(indices < s_kv, indices, paddle.full_like(indices, -1))
        out = sparse_prefill(q, kv, idx, sm_scale)
        return out, None, None

    def get_mla_metadata(*args, **kwargs):
        """(tile_scheduler_metadata, num_splits): the plain-Paddle decode needs no tile schedule."""
        return None, None

    def flash_mla_with_kvcache(
        q, k_cache, block_table, cache_seqlens, head_dim_v, tile_scheduler_metadata, num_splits,
        softmax_scale=None, causal=False, is_fp8_kvcache=False, indices=None, attn_sink=None,
        extra_k_cache=None, extra_indices_in_kvcache=None, topk_length=None, extra_topk_length=None,
    ):
        """Sparse fp8 decode -> (out [T, 1, H, 512] bf16, None): lse is not computed (discarded)."""
        _unused("flash_mla_with_kvcache", block_table=block_table, cache_seqlens=cache_seqlens,
                num_splits=num_splits, attn_sink=attn_sink, extra_k_cache=extra_k_cache,
                extra_indices_in_kvcache=extra_indices_in_kvcache, topk_length=topk_length,
                extra_topk_length=extra_topk_length)
        if not is_fp8_kvcache or indices is None or causal:
            raise Unsupported("flash_mla_with_kvcache: dsabench implements the sparse fp8 mode only "
                              f"(is_fp8_kvcache={is_fp8_kvcache}, indices given={indices is not None}, causal={causal})")
        if head_dim_v != dims.kv_lora_rank:
            raise Unsupported(f"flash_mla_with_kvcache: head_dim_v {head_dim_v}; dsabench supports {dims.kv_lora_rank}")
        if softmax_scale is None:
            softmax_scale = q.shape[-1] ** -0.5
        bridge.ran["decode"] = kernel()
        out = (bridge.attention.decode if bridge.attention is not None else sparse_decode)(q, k_cache, indices,
                                                                                            softmax_scale)
        return out, None

    def merge_prefill_decode_output(encoder_res, decoder_res, seq_lens_encoder, seq_lens_decoder,
                                    seq_lens_this_time, cu_seq_q, head_num, head_dim, max_token):
        """In place: rows of decode requests (encoder 0, decoder > 0) of `encoder_res` take
        `decoder_res`'s, up to 4 * ceil(max_token / 4) tokens per request, as the CUDA kernel."""
        if head_dim != 128:
            raise Unsupported(f"merge_prefill_decode_output: head_dim {head_dim}; FastDeploy's kernel supports 128")
        t, h, d = encoder_res.shape
        if head_num * head_dim != h * d:
            raise InvalidCase(f"merge_prefill_decode_output: head_num {head_num} x head_dim {head_dim} != {h} x {d}")
        cu = cu_seq_q.reshape([-1])
        enc, dec = seq_lens_encoder.reshape([-1]), seq_lens_decoder.reshape([-1])
        this = seq_lens_this_time.reshape([-1])
        rows = paddle.arange(t, dtype=cu.dtype)
        req = paddle.clip(paddle.searchsorted(cu[1:], rows, right=True), max=enc.shape[0] - 1)
        offset = rows - paddle.gather(cu, req)
        cap = MERGE_WARPS * -(-max_token // MERGE_WARPS)
        take = (
            (paddle.gather(enc, req) == 0)
            & (paddle.gather(dec, req) != 0)
            & (offset < paddle.gather(this, req))
            & (offset < cap)
            & (rows < cu[-1])
        )
        _merge_rows(encoder_res, decoder_res, take)

    flash_mla = types.ModuleType("flash_mla", "dsabench's plain-Paddle FlashMLA (sparse prefill and fp8 decode)")
    flash_mla.flash_mla_sparse_fwd = flash_mla_sparse_fwd
    flash_mla.flash_mla_with_kvcache = flash_mla_with_kvcache
    flash_mla.get_mla_metadata = get_mla_metadata
    flash_mla.__dsabench__ = True
    gpu = types.ModuleType("fastdeploy.model_executor.ops.gpu", "dsabench's plain-Paddle FastDeploy GPU ops")
    gpu.dsk_attn_write_cache = dsk_attn_write_cache
    gpu.merge_prefill_decode_output = merge_prefill_decode_output
    gpu.__dsabench__ = True
    return flash_mla, gpu


def _marked(bridge: PhaseBridge, phase: str, fn):
    def op(*args, **kwargs):
        bridge.open(phase)
        try:
            return fn(*args, **kwargs)
        finally:
            bridge.close()

    op.__name__ = fn.__name__
    return op


def with_phases(bridge: PhaseBridge, flash_mla, gpu) -> tuple[types.ModuleType, types.ModuleType]:
    """Proxies of the ops (FastDeploy's or dsabench's) that mark their phases through `bridge`."""

    def get_mla_metadata(*args, **kwargs):
        bridge.close()
        result = flash_mla.get_mla_metadata(*args, **kwargs)
        bridge.open("layout")  # until the decode kernel is entered: FastDeploy's cache argument
        return result

    decode = _marked(bridge, "decode", flash_mla.flash_mla_with_kvcache)
    prefill = _marked(bridge, "prefill", flash_mla.flash_mla_sparse_fwd)
    theirs = not getattr(flash_mla, "__dsabench__", False)  # FastDeploy's flash_mla: FlashMLA itself runs

    def flash_mla_with_kvcache(q, k_cache, *args, **kwargs):
        if theirs:
            bridge.ran["decode"] = "flashmla"
        bridge.close()
        bridge.decode_cache_ptr = k_cache.data_ptr()
        bridge.decode_cache_bytes = int(k_cache.numel()) * k_cache.element_size()
        return decode(q, k_cache, *args, **kwargs)

    fm = types.ModuleType("flash_mla", f"phase-marked proxy of {flash_mla.__name__}")
    fm.get_mla_metadata = get_mla_metadata
    fm.flash_mla_with_kvcache = flash_mla_with_kvcache
    def flash_mla_sparse_fwd(*args, **kwargs):
        if theirs:
            bridge.ran["prefill"] = "flashmla"
        return prefill(*args, **kwargs)

    fm.flash_mla_sparse_fwd = flash_mla_sparse_fwd
    g = types.ModuleType(gpu.__name__, f"phase-marked proxy of {gpu.__name__}")
    g.dsk_attn_write_cache = _marked(bridge, "write_cache", gpu.dsk_attn_write_cache)
    g.merge_prefill_decode_output = _marked(bridge, "merge", gpu.merge_prefill_decode_output)
    return fm, g
