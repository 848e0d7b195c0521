"""Fixture: the engine-wide configuration (only the type matters to the attention backend)."""


class FDConfig:
    def __init__(self, model_config=None, cache_config=None, parallel_config=None, speculative_config=None):
        self.model_config = model_config
        self.cache_config = cache_config
        self.parallel_config = parallel_config
        self.speculative_config = speculative_config
        self.enable_rope_3d_runtime = False
