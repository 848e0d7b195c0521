"""FlashMLA's sparse kernels, called with the argument layout FastDeploy's `forward_mixed` uses.

Used when the `flash_mla` package imports (a GPU machine with FlashMLA built for it). Under
Paddle, FastDeploy first runs `paddle.enable_compat(scope={"flash_mla"})` so that FlashMLA's
torch-facing interface accepts Paddle tensors; `import_flash_mla("paddle")` does the same.

Written from FlashMLA's documented interface (`flash_mla/flash_mla_interface.py`: the
`get_mla_metadata()` that takes no arguments and returns (FlashMLASchedMeta, None), and
`flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, head_dim_v, sched_meta,
num_splits, softmax_scale, causal, is_fp8_kvcache, indices, ...)`) and from FastDeploy's calls.
It has never run here: FlashMLA cannot be built or installed on these machines.
"""

from __future__ import annotations

import importlib

HEAD_DIM_V = 512


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
