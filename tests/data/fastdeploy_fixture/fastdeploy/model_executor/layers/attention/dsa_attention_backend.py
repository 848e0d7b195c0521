"""Fixture: the DSA attention backend, same signatures as FastDeploy's, small bodies.

The scale and layout lines are written as FastDeploy wrote them before PR #7253; the test
rewrites them into the "after" spelling for its second commit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

import paddle

from fastdeploy.platforms import current_platform

if current_platform.is_cuda():
    paddle.enable_compat(scope={"flash_mla"})

from fastdeploy.config import FDConfig
from fastdeploy.model_executor.layers.attention.attention import Attention
from fastdeploy.model_executor.layers.attention.base_attention_backend import (
    AttentionBackend,
    AttentionMetadata,
)
from fastdeploy.model_executor.layers.attention.ops import (
    get_block_shape_and_split_kv_block,
    init_signal_layerwise,
)
from fastdeploy.model_executor.layers.attention.utils import init_rank_and_device_id


def yarn_get_mscale(scale=1, mscale=1):
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def compute_slot_mapping(block_tables, positions, batch_id_per_token, block_size: int) -> paddle.Tensor:
    slots = block_tables[batch_id_per_token, positions // block_size] * block_size + positions % block_size
    return slots.cast(paddle.int64)


@dataclass
class DSAAttentionMetadata(AttentionMetadata):
    block_tables: Optional[paddle.Tensor] = None
    kv_signal_metadata: Optional[paddle.Tensor] = None
    kv_signal_data_list: List[Optional[paddle.Tensor]] = field(default_factory=list)
    max_enc_len_this_time: Optional[paddle.Tensor] = None
    max_dec_len_this_time: Optional[paddle.Tensor] = None
    max_kv_len_this_time: Optional[paddle.Tensor] = None


class DSAAttentionBackend(AttentionBackend):
    def __init__(
        self,
        fd_config: FDConfig,
        kv_num_heads: int,
        num_heads: int,
        head_dim: int,
        encoder_block_shape_q: int = -1,
        decoder_block_shape_q: int = -1,
    ) -> None:
        super().__init__()
        self.attention_metadata = None
        model = fd_config.model_config
        self.block_size = fd_config.cache_config.block_size
        self.rope_3d = fd_config.enable_rope_3d_runtime
        self.num_heads = num_heads
        self.num_layers = model.num_hidden_layers
        self.kv_lora_rank = model.kv_lora_rank
        self.attn_softmax_scale = (model.qk_nope_head_dim + model.qk_rope_head_dim) ** -0.5
        rope_scaling = getattr(model, "rope_scaling", None)
        if rope_scaling:
            mscale = yarn_get_mscale(rope_scaling["factor"], float(rope_scaling.get("mscale_all_dim", False)))
            self.attn_softmax_scale = self.attn_softmax_scale * mscale * mscale
        self.pd_disaggregation_mode = fd_config.parallel_config.pd_disaggregation_mode
        self.start_layer_index = model.start_layer_index
        self.rank, self.device_id = init_rank_and_device_id(fd_config)

    def init_attention_metadata(self, forward_meta):
        get_block_shape_and_split_kv_block(forward_meta.seq_lens_encoder, self.block_size)
        self.attention_metadata = DSAAttentionMetadata(block_tables=forward_meta.block_tables)

    def forward_mixed(
        self,
        q: paddle.Tensor,
        k: paddle.Tensor,
        v: paddle.Tensor,
        qkv: paddle.Tensor,
        compressed_kv: paddle.Tensor,
        k_pe: paddle.Tensor,
        layer: Attention,
        forward_meta,
    ) -> paddle.Tensor:
        if self.pd_disaggregation_mode == "per_query":
            init_signal_layerwise(self.attention_metadata.kv_signal_metadata, layer.layer_id)
        latent_cache = forward_meta.caches[2 * layer.layer_id]
        if current_platform.is_cuda():
            import flash_mla

            from fastdeploy.model_executor.ops.gpu import dsk_attn_write_cache

        k_range = paddle.tensor(200.0)
        scale = paddle.abs(compressed_kv).max() / k_range

        slot_mapping = compute_slot_mapping(
            forward_meta.block_tables, forward_meta.position_ids, forward_meta.batch_id_per_token, self.block_size
        )
        dsk_attn_write_cache(compressed_kv, k_pe, latent_cache, slot_mapping, scale.cast(paddle.float32), "fp8_ds_mla")

        out_prefill = None
        if forward_meta.max_len_tensor_cpu[1]:
            out_prefill, _, _ = flash_mla.flash_mla_sparse_fwd(q, k, v, sm_scale=self.attn_softmax_scale)
        if not forward_meta.max_len_tensor_cpu[2]:
            return out_prefill

        tile_metadata, _ = flash_mla.get_mla_metadata()
        decode_cache = latent_cache.transpose([0, 2, 1, 3]).contiguous()
        out_decode, _ = flash_mla.flash_mla_with_kvcache(
            q.unsqueeze(1).contiguous(), decode_cache, None, None, 512, tile_metadata, None,
            self.attn_softmax_scale, False, True, v, None, None, None, None, None,
        )
        if out_prefill is None:
            return out_decode

        from fastdeploy.model_executor.ops.gpu import merge_prefill_decode_output

        merge_prefill_decode_output(
            out_prefill, out_decode, forward_meta.seq_lens_encoder, forward_meta.seq_lens_decoder,
            forward_meta.seq_lens_this_time, forward_meta.cu_seqlens_q, self.num_heads * 4, 128, 1,
        )
        return out_prefill
