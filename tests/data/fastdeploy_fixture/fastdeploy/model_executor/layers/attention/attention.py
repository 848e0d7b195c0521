"""Fixture: the attention layer; it needs the quantization package, absent from this tree."""

import paddle

from fastdeploy.model_executor.layers.quantization.quant_base import QuantMethodBase  # noqa: F401


class Attention(paddle.nn.Layer):
    def __init__(self, fd_config, layer_id: int, **kwargs) -> None:
        super().__init__()
        self.layer_id = layer_id
