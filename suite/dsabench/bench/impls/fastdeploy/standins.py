"""Minimal stand-ins for the FastDeploy modules `dsa_attention_backend.py` imports.

A stand-in is used only where the checkout's own module does not import cleanly (or, for
`fastdeploy.platforms`, where the suite's ops replace FastDeploy's). Each declares what it
provides and why it may stand in; the loader records which were used. None of them computes
anything the measured forward depends on: the forward's numbers come from FastDeploy's own
lines and the ops (FastDeploy's or dsabench's, recorded as `ops`).
"""

from __future__ import annotations

import types
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

from dsabench.errors import Unsupported

PLATFORMS = "fastdeploy.platforms"
CONFIG = "fastdeploy.config"
ATTENTION = "fastdeploy.model_executor.layers.attention.attention"
BASE = "fastdeploy.model_executor.layers.attention.base_attention_backend"
UTILS = "fastdeploy.model_executor.layers.attention.utils"
ATTN_OPS = "fastdeploy.model_executor.layers.attention.ops"

# Why each may stand in: what of it the DSA backend uses.
ROLE = {
    PLATFORMS: "current_platform: is_cuda() True so forward_mixed takes the path that calls the ops",
    CONFIG: "FDConfig: a type annotation only",
    ATTENTION: "Attention: a type annotation only (forward_mixed reads layer.layer_id)",
    BASE: "AttentionBackend, AttentionMetadata: abstract bases",
    UTILS: "init_rank_and_device_id: rank and device id, used by PD disaggregation only",
    ATTN_OPS: "four PD-disaggregation/metadata ops that forward_mixed does not call with pd_disaggregation_mode 'none'",
}


class CudaPathPlatform:
    """FastDeploy's `current_platform`, answering as CUDA so forward_mixed runs the ops it calls there."""

    def is_cuda(self) -> bool:
        return True

    def __getattr__(self, name: str):
        if name.startswith("is_"):
            return lambda: False  # is_xpu, is_npu, is_dcu, is_iluvatar, ... : not those platforms
        raise AttributeError(f"{PLATFORMS} stand-in: current_platform.{name} is not provided")


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name, f"dsabench stand-in: {ROLE[name]}")
    for key, value in attrs.items():
        setattr(mod, key, value)
    mod.__dsabench_standin__ = True
    return mod


def _platforms() -> types.ModuleType:
    return _module(PLATFORMS, current_platform=CudaPathPlatform())


def _config() -> types.ModuleType:
    class FDConfig:
        """Stand-in: the backend receives dsabench's ConfigNode; this class only names the type."""

    return _module(CONFIG, FDConfig=FDConfig)


def _attention() -> types.ModuleType:
    class Attention:
        """Stand-in: the backend reads only `layer.layer_id` of its layer argument."""

    return _module(ATTENTION, Attention=Attention)


def _base() -> types.ModuleType:
    @dataclass
    class AttentionMetadata(ABC):
        """Stand-in base of DSAAttentionMetadata (a dataclass with no fields)."""

    class AttentionBackend(ABC):
        """Stand-in base of DSAAttentionBackend: the abstract per-step metadata hook."""

        @abstractmethod
        def init_attention_metadata(self, forward_meta):
            raise NotImplementedError

    return _module(BASE, AttentionBackend=AttentionBackend, AttentionMetadata=AttentionMetadata)


def _utils() -> types.ModuleType:
    def init_rank_and_device_id(fd_config):
        par = fd_config.parallel_config
        rank = par.local_data_parallel_id * par.tensor_parallel_size + par.tensor_parallel_rank
        return rank, rank

    return _module(UTILS, init_rank_and_device_id=init_rank_and_device_id)


def _not_called(name: str) -> Callable:
    def op(*args, **kwargs):
        raise Unsupported(
            f"{ATTN_OPS}.{name} is a dsabench stand-in that does not compute: forward_mixed calls it only with "
            "PD disaggregation, and init_attention_metadata is not run by the plug-in"
        )

    op.__name__ = name
    return op


def _attn_ops() -> types.ModuleType:
    names = ("get_block_shape_and_split_kv_block", "init_kv_signal_per_query", "init_signal_layerwise",
             "open_shm_and_get_meta_signal")
    return _module(ATTN_OPS, **{n: _not_called(n) for n in names})


FACTORIES: dict[str, Callable[[], types.ModuleType]] = {
    PLATFORMS: _platforms,
    ATTN_OPS: _attn_ops,
    CONFIG: _config,
    ATTENTION: _attention,
    BASE: _base,
    UTILS: _utils,
}
# In the order dsa_attention_backend.py imports them (utils imports config and platforms itself).
DEPENDENCIES = tuple(FACTORIES)


def declared(mod: types.ModuleType) -> list[str]:
    return sorted(k for k in vars(mod) if not k.startswith("__"))
