"""The two attention calls of forward_mixed (sparse decode, sparse prefill) for a chosen kernel.

A backend's forward calls `decode(q, kv_cache, indices, scale)` and `prefill(q, kv, indices,
scale)` and gets the output tensor only, whichever kernel runs: `reference` (the backend's own
plain-framework ops, passed in), `triton` (kernels/triton_mla.py, torch on CUDA) or `flashmla`
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
    return ""
