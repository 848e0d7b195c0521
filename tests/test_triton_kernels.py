"""GPU checks of the fused Triton sparse-MLA kernels (suite/dsabench/bench/kernels/triton_mla.py).

Skipped without Triton or without a CUDA device (CI has neither GPU nor, usually, Triton). The kernel
module and the float64 references (scripts/kernel_check.py) are loaded from their file paths, so
these tests need no dsabench import. Bound: ||out - ref|| / ||ref|| < 1e-2 against a float64
reference from the same dequantized data (bf16 operands give about 2e-3 to 5e-3).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
if not torch.cuda.is_available():
    pytest.skip("the Triton kernels need a CUDA device", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


KC = _load("kernel_check_helpers", ROOT / "scripts" / "kernel_check.py")
K = KC.load_kernels()
SCALE = 0.1352


@pytest.mark.parametrize(
    "tokens,heads,topk,block_size,layout",
    [
        (1, 128, 2048, 64, "plain"),
        (3, 20, 200, 16, "transposed"),
        (17, 16, 64, 32, "plain"),
        (17, 64, 200, 64, "rows"),
        (5, 128, 256, 16, "padded"),
        (64, 128, 2048, 64, "transposed"),
        (64, 20, 200, 16, "plain"),
    ],
)
def test_decode_matches_float64(tokens, heads, topk, block_size, layout):
    r = KC.check_decode(K, tokens, heads, topk, block_size, layout=layout, seed=tokens * 7 + heads)
    assert r["finite"], r
    assert r["rel_err"] < KC.REL_BOUND, r
    assert r["lse_inf_match"] and r["lse_err_over_cond"] < KC.LSE_BOUND, r
    assert r["masked_rows_zero"], r
    assert r["garbage_invariant"], r
    assert r["graph_bitwise"], r


@pytest.mark.parametrize("num_splits", [1, 3, 7])
def test_decode_split_k_matches(num_splits):
    r = KC.check_decode(K, 3, 128, 2048, 32, seed=5, num_splits=num_splits, garbage_swap=False)
    assert r["ok"], r


@pytest.mark.parametrize(
    "tokens,heads,topk,rows",
    [(1, 128, 64, None), (17, 20, 200, 40), (64, 64, 2048, 3000), (130, 128, 2048, None)],
)
def test_prefill_matches_float64(tokens, heads, topk, rows):
    r = KC.check_prefill(K, tokens, heads, topk, rows=rows, seed=tokens + heads)
    assert r["ok"], r


def test_all_masked_row_gives_zero_and_neg_inf():
    q, cache, idx, _ = KC.make_decode(4, 64, 128, 16, seed=3)
    idx[1] = -1
    out, lse = K.sparse_mla_decode(q, cache, idx, SCALE)
    assert bool((out[1] == 0).all())
    assert bool(torch.isneginf(lse[1]).all())
    assert bool(torch.isfinite(out).all())


def test_decode_rejects_bad_layout():
    q, cache, idx, _ = KC.make_decode(2, 16, 64, 16, seed=1)
    with pytest.raises(ValueError):
        K.sparse_mla_decode(q, cache[..., :600], idx, SCALE)
    with pytest.raises(TypeError):
        K.sparse_mla_decode(q, cache, idx.long(), SCALE)
