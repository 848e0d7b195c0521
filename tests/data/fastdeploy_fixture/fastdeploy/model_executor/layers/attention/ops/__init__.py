"""Fixture: attention ops bound from the compiled extension (not built in this tree)."""

from fastdeploy.model_executor.ops.gpu import (  # noqa: F401
    get_block_shape_and_split_kv_block,
    init_kv_signal_per_query,
    init_signal_layerwise,
    open_shm_and_get_meta_signal,
)
