"""DeepSeek-V3.2 DSA dimensions and the sizes derived from them.

Defaults follow the model config FastDeploy reads (kv_lora_rank 512, qk_rope_head_dim 64,
qk_nope_head_dim 128, index_topk 2048, 128 attention heads, yarn rope factor 40 with
mscale_all_dim 1) and FastDeploy's cache layout for "fp8_ds_mla": a 656-byte record per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NOPE_TILE = 128  # latent values per fp8 scale tile (FlashMLA's "FP8 with scale" format)
FP8_MAX = 448.0  # largest finite float8_e4m3fn
SCALE_BYTES = 4  # one float32 scale per tile
ROPE_ELEM_BYTES = 2  # rope values stay bf16


@dataclass(frozen=True)
class Dims:
    """Model dimensions of one DSA layer on one tensor-parallel rank."""

    kv_lora_rank: int = 512
    qk_rope_head_dim: int = 64
    qk_nope_head_dim: int = 128
    total_heads: int = 128
    rope_factor: float = 40.0
    mscale_all_dim: float = 1.0

    @property
    def q_head_dim(self) -> int:
        """Query width after absorbing W_UK: latent (512) plus rope (64) = 576."""
        return self.kv_lora_rank + self.qk_rope_head_dim

    @property
    def num_tiles(self) -> int:
        return self.kv_lora_rank // NOPE_TILE

    @property
    def record_bytes(self) -> int:
        """Bytes of one token in the fp8_ds_mla cache: 512 fp8 + 4*4 scale + 64*2 rope = 656."""
        return self.kv_lora_rank + SCALE_BYTES * self.num_tiles + ROPE_ELEM_BYTES * self.qk_rope_head_dim

    @property
    def scale_offset(self) -> int:
        return self.kv_lora_rank

    @property
    def rope_offset(self) -> int:
        return self.kv_lora_rank + SCALE_BYTES * self.num_tiles

    @property
    def softmax_scale(self) -> float:
        """(qk_nope + qk_rope)^-0.5 times yarn mscale squared, as DSAAttentionBackend.__init__."""
        return (self.qk_nope_head_dim + self.qk_rope_head_dim) ** -0.5 * yarn_mscale(
            self.rope_factor, self.mscale_all_dim
        ) ** 2


def yarn_mscale(factor: float, mscale_all_dim: float) -> float:
    """0.1 * mscale_all_dim * ln(factor) + 1, or 1 when factor <= 1 (yarn_get_mscale)."""
    if factor <= 1:
        return 1.0
    return 0.1 * mscale_all_dim * math.log(factor) + 1.0


DEFAULT_DIMS = Dims()


def cache_bytes(num_blocks: int, cache_heads: int, block_size: int, dims: Dims = DEFAULT_DIMS) -> int:
    """Bytes of one layer's paged latent cache [num_blocks, cache_heads, block_size, 656] uint8."""
    return num_blocks * cache_heads * block_size * dims.record_bytes


def blocks_for(tokens: int, block_size: int) -> int:
    return -(-tokens // block_size)
