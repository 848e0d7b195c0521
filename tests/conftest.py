"""Shared fixtures: real framework backends on the CPU (never a stand-in)."""

from __future__ import annotations

import pytest

from dsabench.workload.cases import Case
from dsabench.workload.variants import BASELINE


def make_case(phase="decode", batch=2, context_len=96, prefill_len=0, num_blocks=16, block_size=16,
              cache_heads=1, heads=4, topk=32, variant=BASELINE, graph=False, seed=0, mode="hot") -> Case:
    if phase == "prefill":
        context_len = 0
    if phase != "decode" and prefill_len == 0:
        prefill_len = 24
    return Case("test", phase, batch, context_len, prefill_len, num_blocks, block_size, cache_heads, heads,
                topk, variant, graph, seed, mode)


@pytest.fixture(scope="session", params=["paddle", "torch"])
def backend(request):
    pytest.importorskip(request.param)
    from dsabench.bench.backends.registry import get_backend

    return get_backend(request.param)


@pytest.fixture(scope="session")
def paddle_backend():
    pytest.importorskip("paddle")
    from dsabench.bench.backends.registry import get_backend

    return get_backend("paddle")


@pytest.fixture(scope="session", autouse=True)
def _frame_cache_of_the_session(tmp_path_factory):
    """Loaded runs' rows are cached (store.frame_cache) in a directory of this session, never the
    user's; set in the environment, so the CLI processes the tests start use it too."""
    import os

    os.environ["DSABENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("frame-cache"))
