"""One case through FastDeploy's own forward_mixed: build backend and meta, return a forward.

The inputs are the mirror's (`PaddleBackend.prepare`: same seeded cache, background garbage and
context records), so a FastDeploy commit and the mirror, or two commits, run on identical bytes.
`init_attention_metadata` is not run: its op (get_block_shape_and_split_kv_block) fills tile
buffers of FastDeploy's MLA kernels that DSA's forward_mixed does not read; the metadata it would
make is set as FastDeploy's own unit tests set it (a DSAAttentionMetadata with one signal slot
per layer and the three max lengths).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import paddle

from dsabench.bench.backends.base import NULL_MARKER, Marker
from dsabench.bench.backends.common import view_refusal
from dsabench.bench.backends.paddle import PaddleBackend, PaddleState
from dsabench.bench.impls.fastdeploy.config import MissingConfigField, config_reads, fd_config_for
from dsabench.bench.impls.fastdeploy.loader import LoadedBackend, UnsupportedLayout
from dsabench.bench.impls.fastdeploy.meta import MAX_DEC, MAX_ENC, MAX_KV, CallArgs, call_args
from dsabench.errors import InvalidCase
from dsabench.workload.cases import Case
from dsabench.workload.dims import DEFAULT_DIMS, Dims
from dsabench.workload.inputs import HostInputs


@dataclass
class FastDeployState:
    mirror: PaddleState  # the case's tensors; mirror.latent_cache is the cache forward_meta.caches[0]
    backend: Any  # the commit's DSAAttentionBackend instance
    args: CallArgs
    loaded: LoadedBackend
    config_reads: list[str] = field(default_factory=list)

    @property
    def inputs_bytes(self) -> int:
        return self.mirror.inputs_bytes


def construct(loaded: LoadedBackend, case: Case, dims: Dims = DEFAULT_DIMS) -> tuple[Any, list[str]]:
    """DSAAttentionBackend(fd_config, kv_num_heads=1, num_heads=H, head_dim=576), and the config
    fields its constructor read; a field it needs that the plug-in lacks is one clear error."""
    cfg = fd_config_for(case, dims)
    try:
        backend = loaded.cls(cfg, kv_num_heads=1, num_heads=case.heads, head_dim=dims.q_head_dim)
    except MissingConfigField as exc:
        raise UnsupportedLayout(f"{loaded.label}: DSAAttentionBackend.__init__ fails: {exc}") from exc
    except AttributeError as exc:
        raise UnsupportedLayout(f"{loaded.label}: DSAAttentionBackend.__init__ fails: {exc}") from exc
    return backend, config_reads(cfg)


def _metadata(loaded: LoadedBackend, backend: Any, meta) -> None:
    md_cls = getattr(loaded.module, "DSAAttentionMetadata", None)
    if md_cls is None:
        raise UnsupportedLayout(f"{loaded.label}: the backend module has no DSAAttentionMetadata")
    md = md_cls()
    md.kv_signal_data_list = [None] * int(getattr(backend, "num_layers", 1))
    md.block_tables = meta.block_tables
    md.max_enc_len_this_time = meta.max_len_tensor_cpu[MAX_ENC]
    md.max_dec_len_this_time = meta.max_len_tensor_cpu[MAX_DEC]
    md.max_kv_len_this_time = meta.max_len_tensor_cpu[MAX_KV]
    backend.attention_metadata = md


def prepare(loaded: LoadedBackend, st: PaddleState, host: HostInputs, place) -> FastDeployState:
    """The commit's backend, its metadata and call args over the case's tensors `st` (built by
    PaddleBackend.prepare, which seeds Paddle's generator: the constructor draws from it after)."""
    backend, reads = construct(loaded, st.case)
    args = call_args(st, host, place)
    _metadata(loaded, backend, args.forward_meta)
    return FastDeployState(st, backend, args, loaded, reads)


def forward(state: FastDeployState, mark: Marker = NULL_MARKER) -> paddle.Tensor:
    """One forward_mixed of the commit's code; phases marked as the mirror's (`scale` spans
    FastDeploy's lines from entry to compute_slot_mapping)."""
    loaded = state.loaded
    loaded.activate()
    bridge = loaded.bridge
    bridge.mark = mark
    bridge.open("scale")
    try:
        return state.backend.forward_mixed(*state.args.as_tuple())
    except AssertionError as exc:
        shape = state.mirror.latent_cache.shape
        if shape[1] != 1:  # FastDeploy asserts cache heads == 1 before its view
            raise InvalidCase(f"{loaded.label}: {view_refusal(shape)}") from exc
        raise
    except (ImportError, AttributeError) as exc:
        raise UnsupportedLayout(f"{loaded.label}: forward_mixed fails: {type(exc).__name__}: {exc}") from exc
    finally:
        bridge.close()
        bridge.mark = NULL_MARKER


def layout_copy_bytes(state: FastDeployState) -> int:
    """Bytes the commit's layout line copied in the last forward: 0 when the cache the decode
    kernel received shares the cache's memory (a view), its size when it is a new buffer."""
    bridge = state.loaded.bridge
    if not state.mirror.case.has_decode:
        return 0
    if bridge.decode_cache_ptr is None:
        forward(state)
    same = bridge.decode_cache_ptr == state.mirror.latent_cache.data_ptr()
    return 0 if same else bridge.decode_cache_bytes


@dataclass
class Prepared:
    """What `run` hands back: the forward to time, its first output, and what ran."""

    forward: Callable[[], paddle.Tensor]
    output: paddle.Tensor
    state: FastDeployState
    record: dict


def run(loaded: LoadedBackend, mirror_backend: PaddleBackend, case: Case, host: HostInputs) -> Prepared:
    """Build backend + meta for `case`, run forward_mixed once, and return a callable forward."""
    state = prepare(loaded, mirror_backend.prepare(case, host), host, mirror_backend.place)
    out = forward(state)
    mirror_backend.synchronize()
    record = {
        **loaded.describe(),
        "config_reads": state.config_reads,
        "layout_copy_bytes": layout_copy_bytes(state),
        "compressed_kv_dtype": str(state.args.compressed_kv.dtype).replace("paddle.", ""),
    }
    return Prepared(lambda: forward(state), out, state, record)
