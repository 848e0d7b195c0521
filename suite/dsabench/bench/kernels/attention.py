"""The two attention calls of forward_mixed (sparse decode, sparse prefill) for a chosen kernel.

A backend's forward calls `decode(q, kv_cache, indices, scale)` and `prefill(q, kv, indices,
scale)` and gets the output tensor only, whichever kernel runs: `reference` (the backend's own
plain-framework ops, passed in), `triton` (kernels/triton_mla.py, torch on CUDA), `gluon` (the
warp-specialized decode and prefill of kernels/gluon_mla.py and gluon_mla_prefill.py, sm_90) or `flashmla`
(kernels/flashmla.py, FastDeploy's argument layout). The fused kernels also return the
log-sum-exp; forward_mixed does not use it, so it is dropped here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

Attend = Callable[[Any, Any, Any, float], Any]


@dataclass(frozen=True)
class Attention:
    kernel: str
    decode: Attend
    prefill: Attend


def triton_attention() -> Attention:
    from dsabench.bench.kernels import triton_mla  # noqa: PLC0415 - imports triton: CUDA machines only

    def decode(q, kv_cache, indices, scale):
        return triton_mla.sparse_mla_decode(q, kv_cache, indices, scale)[0]

    def prefill(q, kv, indices, scale):
        return triton_mla.sparse_mla_prefill(q, kv, indices, scale)[0]

    return Attention("triton", decode, prefill)


GLUON_HEAD_BLOCK = GLUON_TOPK_BLOCK = 64  # gluon_mla's BLOCK_H and BLOCK_N (a test reads them there)


def gluon_attention() -> Attention:
    """gluon_mla's warp-specialized decode and gluon_mla_prefill's prefill: a producer warpgroup
    gathers (and for decode dequantizes) while two math warpgroups run the wgmma. Written for sm_90,
    so another device is refused here, before anything is measured. The prefill skips the key
    blocks after a row's last valid index (exact; causal rows are -1 padded at the end)."""
    import torch  # noqa: PLC0415

    from dsabench.bench.kernels import gluon_mla, gluon_mla_prefill  # noqa: PLC0415 - imports triton: CUDA only

    capability = torch.cuda.get_device_capability()
    if capability != (9, 0):
        raise ValueError(f"kernel 'gluon': its decode is written for sm_90 (Hopper); this device is "
                         f"sm_{capability[0]}{capability[1]} (use --kernel triton)")

    def decode(q, kv_cache, indices, scale):
        return gluon_mla.sparse_mla_decode(q, kv_cache, indices, scale)[0]

    def prefill(q, kv, indices, scale):
        return gluon_mla_prefill.sparse_mla_prefill(q, kv, indices, scale)[0]

    return Attention("gluon", decode, prefill)


def flashmla_attention(framework: str) -> Attention:
    """FlashMLA through `import_flash_mla(framework)` (Paddle: after paddle.enable_compat).
    Written from FlashMLA's documented API; it has never run on the machines this suite was
    built on (FlashMLA could not be installed there)."""
    from dsabench.bench.kernels import flashmla  # noqa: PLC0415

    module = flashmla.import_flash_mla(framework)

    def decode(q, kv_cache, indices, scale):
        return flashmla.sparse_decode(module, q, kv_cache, indices, scale)

    def prefill(q, kv, indices, scale):
        return flashmla.sparse_prefill(module, q, kv, indices, scale)

    return Attention("flashmla", decode, prefill)


def attention_for(kernel: str, framework: str, reference: Attention) -> Attention:
    """The Attention of `kernel` for a backend of `framework` whose own ops are `reference`.
    ValueError for a kernel this framework cannot run (the caller resolved it with select first)."""
    if kernel == "reference":
        return reference
    if kernel == "triton" and framework == "torch":
        return triton_attention()
    if kernel == "gluon" and framework == "torch":
        return gluon_attention()
    if kernel == "flashmla":
        return flashmla_attention(framework)
    raise ValueError(f"kernel {kernel!r}: the {framework} backend cannot run it")


def refusal(kernel: str, case) -> str:
    """'' when `kernel` takes both attention calls of `case`, else why not (the worker records the
    case `unsupported` with it, rather than let the kernel raise mid-forward). A pure function of
    the case: nothing is imported that needs a GPU."""
    if kernel == "flashmla":
        from dsabench.bench.kernels import flashmla  # noqa: PLC0415 - framework-free until a call

        return flashmla.refusal(case)
    if kernel == "triton" and case.has_decode and case.cache_heads != 1:
        return (f"{case.cache_heads} cache heads (the suite's Triton decode reads one-head caches "
                "[blocks, block_size, 1, 656])")
    if kernel == "gluon":
        return gluon_refusal(case)
    return ""


def gluon_refusal(case) -> str:
    """What the Gluon decode and prefill do not take, every reason joined by '; ' ('' when they
    take both calls of the case). Only the decode reads the cache."""
    from dsabench.workload.dims import DEFAULT_DIMS  # noqa: PLC0415

    calls = " and ".join(c for c, has in (("decode", case.has_decode), ("prefill", case.has_prefill)) if has)
    why = []
    if case.heads % GLUON_HEAD_BLOCK:
        why.append(f"{case.heads} query heads (the Gluon {calls} takes a multiple of {GLUON_HEAD_BLOCK})")
    if case.has_decode and case.cache_heads != 1:
        why.append(f"{case.cache_heads} cache heads (the Gluon decode reads one-head caches)")
    if case.topk <= 0 or case.topk % GLUON_TOPK_BLOCK:
        why.append(f"topk {case.topk} (the Gluon {calls} takes a positive multiple of {GLUON_TOPK_BLOCK})")
    d = DEFAULT_DIMS
    if (d.q_head_dim, d.kv_lora_rank, d.record_bytes) != (576, 512, 656):
        why.append(f"head dims qk {d.q_head_dim} / v {d.kv_lora_rank} with {d.record_bytes}-byte records "
                   "(the Gluon kernels are written for qk 576, v 512, 656 bytes)")
    return "; ".join(why)
