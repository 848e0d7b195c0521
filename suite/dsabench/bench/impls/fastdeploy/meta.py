"""The ForwardMeta-shaped object and the call arguments of one case, from the mirror's device state.

`forward_mixed(q, k, v, qkv, compressed_kv, k_pe, layer, forward_meta)` as FastDeploy's
DeepSeek-V3.2 attention calls it: q [T, H, 576], k = the new tokens' latent+rope [T, 1, 576],
v = the indexer's top-k [T, 1, topk], qkv None. FastDeploy passes one top-k tensor to both
kernels; here each row holds the indices in the spelling its kernel reads (decode rows: global
cache slots; prefill rows: rows of this step's new tokens), the same choice per row as the
mirror, so the two compute the same output. On a CPU Paddle build `compressed_kv` is handed
over as float32 holding the same bf16 values: that build has no bfloat16 `abs` kernel, which
FastDeploy's scale line calls (the mirror upcasts inside its scale phase instead); the cache
records written from it are the same bytes, since the write-cache math works in float32. The meta carries exactly the fields forward_mixed
reads; reading any other one is an AttributeError that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import paddle

from dsabench.bench.backends.paddle import PaddleState
from dsabench.workload.inputs import HostInputs

# max_len_tensor_cpu slots that DSAAttentionBackend reads: [1] max encoder (prefill) length,
# [2] max decoder length (cached tokens of decode requests), [5] max kv length.
MAX_ENC, MAX_DEC, MAX_KV = 1, 2, 5


@dataclass
class ForwardMeta:
    """The fields of FastDeploy's ForwardMeta that DSAAttentionBackend.forward_mixed reads."""

    caches: list  # caches[2 * layer_id] is the layer's latent cache [N, heads, B, 656] uint8
    block_tables: paddle.Tensor  # [B, max_blocks] int32
    position_ids: paddle.Tensor  # [T] int32
    batch_id_per_token: paddle.Tensor  # [T] int32
    max_len_tensor_cpu: paddle.Tensor  # [6] int32 on the host
    seq_lens_encoder: paddle.Tensor  # [B, 1] int32
    seq_lens_decoder: paddle.Tensor  # [B, 1] int32
    seq_lens_this_time: paddle.Tensor  # [B] int32
    cu_seqlens_q: paddle.Tensor  # [B + 1] int32


@dataclass(frozen=True)
class Layer:
    """What forward_mixed reads of its `layer` argument (FastDeploy's Attention): the layer id."""

    layer_id: int = 0


@dataclass
class CallArgs:
    q: paddle.Tensor
    k: paddle.Tensor
    v: paddle.Tensor
    qkv: Any
    compressed_kv: paddle.Tensor
    k_pe: paddle.Tensor
    layer: Layer
    forward_meta: ForwardMeta

    def as_tuple(self) -> tuple:
        return (self.q, self.k, self.v, self.qkv, self.compressed_kv, self.k_pe, self.layer, self.forward_meta)


def max_len_values(host: HostInputs) -> np.ndarray:
    """[max this-time, max encoder, max decoder, max encoder+decoder, max decoder (decode-only), max kv].

    Only slots 1, 2 and 5 are read by the DSA backend; the others are filled by their names.
    """
    enc, dec, this = host.seq_lens_encoder, host.seq_lens_decoder, host.seq_lens_this_time
    kv = dec + this

    def top(a):
        return int(a.max()) if a.size else 0

    return np.array([top(this), top(enc), top(dec), top(enc + dec), top(dec[enc == 0]), top(kv)], dtype=np.int32)


def call_args(st: PaddleState, host: HostInputs, place) -> CallArgs:
    """The arguments of one forward_mixed of the case whose mirror state is `st`."""

    def dev(a: np.ndarray) -> paddle.Tensor:
        return paddle.to_tensor(a, place=place)

    mask = st.decode_token_mask.reshape([-1, 1, 1])
    v = paddle.where(mask, st.decode_indices, st.prefill_indices)
    b = len(host.seq_lens_this_time)
    meta = ForwardMeta(
        caches=[st.latent_cache],
        block_tables=st.block_tables,
        position_ids=st.position_ids,
        batch_id_per_token=st.batch_id_per_token,
        max_len_tensor_cpu=paddle.to_tensor(max_len_values(host), place=paddle.CPUPlace()),
        seq_lens_encoder=dev(host.seq_lens_encoder.reshape(b, 1)),
        seq_lens_decoder=dev(host.seq_lens_decoder.reshape(b, 1)),
        seq_lens_this_time=dev(host.seq_lens_this_time),
        cu_seqlens_q=dev(host.cu_seqlens_q),
    )
    compressed_kv = st.compressed_kv
    if cpu_needs_float32(compressed_kv):
        compressed_kv = compressed_kv.cast(paddle.float32)
    return CallArgs(st.q, st.prefill_kv, v, None, compressed_kv, st.k_pe, Layer(0), meta)


def cpu_needs_float32(t: paddle.Tensor) -> bool:
    """A bf16 tensor on the CPU, where Paddle has no bf16 `abs` kernel."""
    return t.dtype == paddle.bfloat16 and t.place.is_cpu_place()
