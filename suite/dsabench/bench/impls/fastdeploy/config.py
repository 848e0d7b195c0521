"""The FDConfig-shaped object `DSAAttentionBackend.__init__` reads, with DeepSeek-V3.2's values.

FastDeploy's constructor reads fields of `fd_config` and of its `model_config`, `cache_config`,
`parallel_config` and `speculative_config`. Each is a `ConfigNode`: it serves the fields below,
records every field read (so a record can say what a commit's constructor needed), and answers
a field it does not carry with `MissingConfigField`, an AttributeError that names the full path
(`fd_config.model_config.x`), so that FastDeploy's own `getattr(cfg, name, default)` still
falls back to its default. Commits differ: 3d3e282b reads `fd_config.enable_rope_3d_runtime`,
08db3779 `getattr(fd_config.model_config, "rope_3d", False)`; both are carried (False: DSA uses
no 3-D rope). Framework-free.
"""

from __future__ import annotations

from typing import Any

from dsabench.workload.cases import Case
from dsabench.workload.dims import DEFAULT_DIMS, Dims

# DeepSeek-V3.2's config.json values that the per-case Dims do not carry.
MAX_MODEL_LEN = 163840  # max_position_embeddings
NUM_HIDDEN_LAYERS = 61
INDEX_HEAD_DIM = 128
INDEX_N_HEADS = 64
ROPE_THETA = 10000.0
ORIGINAL_MAX_POSITION_EMBEDDINGS = 4096
V_HEAD_DIM = 128


class MissingConfigField(AttributeError):
    """A commit's constructor read a config field the plug-in does not supply."""


class ConfigNode:
    """A read-tracking namespace: `node.x` serves field x or raises MissingConfigField."""

    def __init__(self, path: str, fields: dict[str, Any], reads: list[str]) -> None:
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_fields", dict(fields))
        object.__setattr__(self, "_reads", reads)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        fields = object.__getattribute__(self, "_fields")
        path = f"{object.__getattribute__(self, '_path')}.{name}"
        reads = object.__getattribute__(self, "_reads")
        if name not in fields:
            reads.append(path)
            raise MissingConfigField(
                f"{path} is read but not supplied by dsabench's FastDeploy config "
                f"(it supplies: {', '.join(sorted(fields))})"
            )
        value = fields[name]
        if not isinstance(value, ConfigNode):  # sections are paths, not fields
            reads.append(path)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{object.__getattribute__(self, '_path')} is read-only (tried to set {name})")

    def __repr__(self) -> str:
        return f"ConfigNode({object.__getattribute__(self, '_path')})"


def config_reads(node: ConfigNode) -> list[str]:
    """The field paths read so far (in order, repeats removed), including those that were missing."""
    seen: dict[str, None] = {}
    for path in object.__getattribute__(node, "_reads"):
        seen.setdefault(path, None)
    return list(seen)


def fd_config_for(case: Case, dims: Dims = DEFAULT_DIMS) -> ConfigNode:
    """DeepSeek-V3.2 on one rank with the case's heads, block size and top-k; no speculation, no
    PD disaggregation, tensor parallel rank 0 of 1."""
    reads: list[str] = []
    model = {
        "max_model_len": MAX_MODEL_LEN,
        "rope_theta": ROPE_THETA,
        "rope_3d": False,
        "causal": True,
        "head_dim": V_HEAD_DIM,  # not read by forward_mixed; FastDeploy's own tests use 128
        "num_hidden_layers": NUM_HIDDEN_LAYERS,
        "num_attention_heads": case.heads,
        "num_key_value_heads": 1,
        "index_head_dim": INDEX_HEAD_DIM,
        "index_n_heads": INDEX_N_HEADS,
        "index_topk": case.topk,
        "kv_lora_rank": dims.kv_lora_rank,
        "qk_rope_head_dim": dims.qk_rope_head_dim,
        "qk_nope_head_dim": dims.qk_nope_head_dim,
        "v_head_dim": V_HEAD_DIM,
        "rope_scaling": {
            "type": "yarn",
            "factor": dims.rope_factor,
            "mscale": 1.0,
            "mscale_all_dim": dims.mscale_all_dim,
            "original_max_position_embeddings": ORIGINAL_MAX_POSITION_EMBEDDINGS,
            "beta_fast": 32,
            "beta_slow": 1,
        },
        "start_layer_index": 0,
        "model_type": "deepseek_v32",
    }
    cache = {"block_size": case.block_size}
    parallel = {
        "pd_disaggregation_mode": "none",
        "tensor_parallel_rank": 0,
        "tensor_parallel_size": 1,
        "local_data_parallel_id": 0,
        "expert_parallel_size": 1,
    }
    speculative = {"method": None, "num_speculative_tokens": 0, "model_type": None}
    return ConfigNode(
        "fd_config",
        {
            "model_config": ConfigNode("fd_config.model_config", model, reads),
            "cache_config": ConfigNode("fd_config.cache_config", cache, reads),
            "parallel_config": ConfigNode("fd_config.parallel_config", parallel, reads),
            "speculative_config": ConfigNode("fd_config.speculative_config", speculative, reads),
            "enable_rope_3d_runtime": False,
        },
        reads,
    )
