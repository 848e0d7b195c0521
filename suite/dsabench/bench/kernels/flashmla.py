"""FlashMLA's sparse kernels, called with the argument layout FastDeploy's `forward_mixed` uses.

Used when the `flash_mla` package imports (a GPU machine with FlashMLA built for it). Under
Paddle, FastDeploy first runs `paddle.enable_compat(scope={"flash_mla"})` so that FlashMLA's
torch-facing interface accepts Paddle tensors; `import_flash_mla("paddle")` does the same.

Written from FlashMLA's interface (`flash_mla/flash_mla_interface.py`: the
`get_mla_metadata()` that takes no arguments and returns (FlashMLASchedMeta, None), and
`flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, head_dim_v, sched_meta,
num_splits, softmax_scale, causal, is_fp8_kvcache, indices, ...)`) and from FastDeploy's calls;
run on an H200 with FlashMLA 9241ae3 built from source (docs/kernels.md, issue 23).

`refusal(case)` says, without calling it, when FlashMLA would refuse a case: its checks raise
(TORCH_CHECK, KU_ASSERT) deep in the call, and the worker records such a case `unsupported` with
the reason instead of `crashed`.
"""

from __future__ import annotations

import importlib

from dsabench.workload.cases import Case
from dsabench.workload.dims import DEFAULT_DIMS, Dims

HEAD_DIM_V = 512

# What FlashMLA 9241ae3 checks before its sm90 sparse kernels run (csrc/api/sparse_decode.h,
# csrc/api/sparse_fwd.h, csrc/sm90/decode/sparse_fp8/splitkv_mla.cuh, csrc/sm90/prefill/sparse/phase1.cuh).
# Not checked by FlashMLA, and true of every case the suite builds: int32 indices that are -1 or a
# slot of the cache (decode) / a row of kv (prefill), a cache whose blocks are contiguous 656-byte
# records (stride(1) == 656: both layouts of forward_mixed), strides below 2**31.
QUERY_HEADS = (64, 128)  # "Unsupported h_q": DISPATCH_NUM_HEADS instantiates 64 and 128 only
V32_FORMAT = (576, 512, 656)  # d_qk, d_v, bytes per token: the V3.2 cache format FastDeploy writes
DECODE_TOPK_BLOCK = 64  # splitkv_mla.cuh: KU_ASSERT(params.topk % TOPK_BLOCK_SIZE == 0)
PREFILL_TOPK_BLOCK = 128  # phase1.cuh: KU_ASSERT(params.topk % (2*B_TOPK) == 0), B_TOPK = 64


class FlashMLAUnavailable(ImportError):
    pass


def import_flash_mla(framework: str):
    """The `flash_mla` module, or FlashMLAUnavailable saying why not."""
    try:
        if framework == "paddle":
            import paddle  # noqa: PLC0415

            enable = getattr(paddle, "enable_compat", None)
            if enable is None:
                raise FlashMLAUnavailable(f"paddle {paddle.__version__} has no enable_compat (needs Paddle 3.x)")
            enable(scope={"flash_mla"})
        return importlib.import_module("flash_mla")
    except FlashMLAUnavailable:
        raise
    except Exception as exc:  # ImportError, or a build for another CUDA/arch failing at load
        raise FlashMLAUnavailable(f"flash_mla does not import: {type(exc).__name__}: {exc}") from exc


def sparse_decode(flash_mla, q, kv_cache, indices, softmax_scale: float):
    """q [T, 1, H, 576] bf16; kv_cache [N, B, 1, 656] uint8 (FastDeploy's view); indices [T, 1, topk]
    int32 global slots, -1 masked. Returns out [T, 1, H, 512] bf16, as FastDeploy takes it."""
    sched_meta, _ = flash_mla.get_mla_metadata()
    out, _lse = flash_mla.flash_mla_with_kvcache(
        q, kv_cache, None, None, HEAD_DIM_V, sched_meta, None, softmax_scale, False, True, indices,
        None, None, None, None, None,
    )
    return out


def sparse_prefill(flash_mla, q, kv, indices, softmax_scale: float):
    """q [T, H, 576] bf16; kv [T, 1, 576] bf16; indices [T, 1, topk] int32 rows of kv, -1 masked.
    Returns out [T, H, 512] bf16 (FlashMLA also returns max_logits and lse, unused here)."""
    out, _max_logits, _lse = flash_mla.flash_mla_sparse_fwd(q, kv, indices, sm_scale=softmax_scale)
    return out


def refusal(case: Case, dims: Dims = DEFAULT_DIMS) -> str:
    """'' when FlashMLA's sparse decode and prefill (sm90, V3.2 cache format) accept both calls
    `forward_mixed` makes for `case`, else every reason it would refuse them, joined by '; '.
    A pure function of the case's dimensions: FlashMLA is never imported."""
    why = []
    if case.heads not in QUERY_HEADS:
        why.append(f"{case.heads} query heads (FlashMLA's sparse kernels take {' or '.join(map(str, QUERY_HEADS))})")
    if case.cache_heads != 1:
        why.append(f"{case.cache_heads} cache heads (FlashMLA's sparse kernels take one: h_kv == 1, MQA)")
    if (dims.q_head_dim, dims.kv_lora_rank, dims.record_bytes) != V32_FORMAT:
        why.append(f"head dims qk {dims.q_head_dim} / v {dims.kv_lora_rank} with {dims.record_bytes}-byte records "
                   "(FlashMLA's V3.2 format is qk 576, v 512, 656 bytes)")
    if case.topk <= 0:
        why.append(f"topk {case.topk} (FlashMLA needs topk > 0)")
    else:
        if case.has_decode and case.topk % DECODE_TOPK_BLOCK:
            why.append(f"topk {case.topk} for its decode (FlashMLA's sparse decode takes a multiple of "
                       f"{DECODE_TOPK_BLOCK})")
        if case.has_prefill and case.topk % PREFILL_TOPK_BLOCK:
            why.append(f"topk {case.topk} for its prefill (FlashMLA's sparse prefill takes a multiple of "
                       f"{PREFILL_TOPK_BLOCK})")
    return "; ".join(why)
