"""Fixture: rank and device of this process."""

import os

from fastdeploy.config import FDConfig
from fastdeploy.platforms import current_platform


def init_rank_and_device_id(fd_config: FDConfig):
    par = fd_config.parallel_config
    rank = par.local_data_parallel_id * par.tensor_parallel_size + par.tensor_parallel_rank
    name = "XPU_VISIBLE_DEVICES" if current_platform.is_xpu() else "CUDA_VISIBLE_DEVICES"
    visible = os.getenv(name)
    return rank, rank if visible is None else visible.split(",")[rank % len(visible.split(","))]
