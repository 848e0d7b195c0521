"""GPU specifications of the Gluon sparse-MLA kernels (suite/dsabench/bench/kernels/gluon_mla.py:
warp-specialized fp8 decode; gluon_mla_prefill.py: bf16 prefill). Both are written for sm_90, so the
module is skipped without torch, without triton.experimental.gluon, without a CUDA device, or on a
device other than sm_90 (CI and the CPU machines skip it whole).

Kernels and the float64 references of scripts/kernel_check.py are loaded from their file paths (no
dsabench import). Bounds are kernel_check's: ||out - ref|| / ||ref|| < REL_BOUND and
|lse - ref| / cond < LSE_BOUND against a float64 reference from the same dequantized data.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton.experimental.gluon")
if not torch.cuda.is_available():
    pytest.skip("the Gluon kernels need a CUDA device", allow_module_level=True)
if torch.cuda.get_device_capability() != (9, 0):
    pytest.skip("the Gluon kernels are written for sm_90 (Hopper)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "suite" / "dsabench" / "bench" / "kernels"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # the jit looks functions up through their module
    spec.loader.exec_module(mod)
    return mod


KC = _load("kernel_check_helpers_for_gluon", ROOT / "scripts" / "kernel_check.py")
GD = _load("gluon_mla_under_test", KERNELS / "gluon_mla.py")
GP = _load("gluon_mla_prefill_under_test", KERNELS / "gluon_mla_prefill.py")
TM = _load("triton_mla_for_gluon_tests", KERNELS / "triton_mla.py")
SCALE = 0.1352


class Gluon:
    """The two entry points as kernel_check's checks call them (they pass config= and num_splits=;
    the Gluon kernels take no config, and the prefill no split)."""

    @staticmethod
    def sparse_mla_decode(q, cache, idx, scale, config=None, num_splits=None):
        assert config is None
        return GD.sparse_mla_decode(q, cache, idx, scale, num_splits=num_splits)

    @staticmethod
    def sparse_mla_prefill(q, kv, idx, scale, config=None, num_splits=None):
        assert config is None and num_splits is None
        return GP.sparse_mla_prefill(q, kv, idx, scale)


def in_poisoned_buffer(x, poison):
    """x as the first half of a buffer twice its length whose second half is `poison` (NaN records)."""
    big = torch.full((2 * x.shape[0], *x.shape[1:]), poison, dtype=x.dtype, device=x.device)
    big[: x.shape[0]] = x
    return big[: x.shape[0]]


def past_the_end(idx, limit: int, seed: int):
    """idx with every -1 replaced by an index past `limit`: half into the poisoned half of the
    buffer, half 2**31 - 1 (far past any allocation: reading it faults)."""
    g = torch.Generator(device=idx.device).manual_seed(seed)
    past = torch.where(torch.rand(idx.shape, device=idx.device, generator=g) < 0.5,
                       limit + torch.randint(0, limit, idx.shape, device=idx.device, generator=g, dtype=torch.int32),
                       torch.full_like(idx, 2**31 - 1))
    return torch.where(idx < 0, past, idx)


def same_bits(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.contiguous().view(torch.uint8),
                                                                      b.contiguous().view(torch.uint8))


# ---------------------------------------------------------------------------------------------
# decode
# ---------------------------------------------------------------------------------------------

DECODE_CASES = [  # tokens, heads, topk, block_size, layout, num_splits (None: the kernel's choice)
    (64, 128, 2048, 64, "plain", None),  # production: batch 64, one split
    (3, 128, 2048, 32, "transposed", None),  # small T: split-KV by default
    (17, 64, 256, 16, "rows", None),
    (8, 192, 128, 64, "transposed", None),
    (5, 64, 192, 16, "plain", 1),
    (3, 64, 2048, 32, "rows", 4),
]


@pytest.mark.parametrize("tokens,heads,topk,block_size,layout,num_splits", DECODE_CASES)
def test_decode_matches_float64_ignores_unused_slots_and_replays_bit_identically(tokens, heads, topk, block_size,
                                                                                 layout, num_splits):
    r = KC.check_decode(Gluon, tokens, heads, topk, block_size, layout=layout, num_splits=num_splits,
                        seed=tokens * 7 + heads)
    assert r["finite"] and r["rel_err"] < KC.REL_BOUND, r
    assert r["lse_inf_match"] and r["lse_err_over_cond"] < KC.LSE_BOUND, r
    assert r["masked_rows_zero"], r  # make_decode's row 1 is all -1 (tokens >= 3)
    assert r["garbage_invariant"], r  # new garbage in every unused slot moves no bit
    assert r["graph_bitwise"], r  # eager twice and CUDA-graph replays: the same bits


@pytest.mark.parametrize("tokens,heads,topk,block_size,layout", [c[:5] for c in DECODE_CASES[:3]])
def test_decode_default_is_bit_identical_to_the_triton_default(tokens, heads, topk, block_size, layout):
    q, cache, idx, _ = KC.make_decode(tokens, heads, topk, block_size, layout=layout, seed=tokens + heads)
    out_g, lse_g = GD.sparse_mla_decode(q, cache, idx, SCALE)
    out_t, lse_t = TM.sparse_mla_decode(q, cache, idx, SCALE)
    assert same_bits(out_g, out_t), float((out_g.float() - out_t.float()).abs().max())
    assert same_bits(lse_g, lse_t)


def test_decode_takes_every_default_split_choice_and_matches_triton_where_it_splits_the_same():
    """Whatever T, the default split gives whole chunks (gluon_mla.even_split): never a refusal, every
    output within the float64 bound; where that split is the Triton kernel's own (its chunk divides
    topk), the bits are the Triton kernel's."""
    q, cache, idx, _ = KC.make_decode(24, 128, 2048, 64, seed=23)
    sms = TM._sm_count(q.device)
    n_blocks = 2048 // GD.BLOCK_N
    differ = []
    for t in range(1, 25):
        out_g, lse_g = GD.sparse_mla_decode(q[:t], cache, idx[:t], SCALE)
        res = KC.compare(out_g, lse_g, *KC.ref_decode(q[:t], cache, idx[:t], SCALE))
        assert res["rel_err"] < KC.REL_BOUND, (t, res)
        asked = TM.choose_splits(t, 2, 2048, GD.BLOCK_N, sms)
        if n_blocks % -(-n_blocks // asked) == 0 and not same_bits(out_g, TM.sparse_mla_decode(q[:t], cache, idx[:t], SCALE)[0]):
            differ.append(t)
    assert not differ, f"differs from Triton at T={differ} though both split the same way"


def test_even_split_gives_whole_chunks_no_more_splits_than_asked_and_the_split_asked_where_it_divides():
    for n_blocks in (1, 2, 3, 7, 32, 33, 64):
        for asked in range(1, 70):
            per = GD.even_split(n_blocks, asked)
            assert n_blocks % per == 0 and n_blocks // per <= max(1, min(asked, n_blocks))
            if n_blocks % -(-n_blocks // min(asked, n_blocks)) == 0:
                assert per == -(-n_blocks // min(asked, n_blocks))


@pytest.mark.parametrize("num_splits", [1, 2])
def test_decode_all_masked_row_gives_zero_and_neg_inf(num_splits):
    q, cache, idx, _ = KC.make_decode(4, 64, 128, 16, seed=3)
    idx[1] = -1
    out, lse = KC.poisoned_call(GD.sparse_mla_decode, q, cache, idx, SCALE, num_splits=num_splits)
    assert bool((out[1] == 0).all()) and bool(torch.isneginf(lse[1]).all())
    rest = torch.tensor([0, 2, 3], device=q.device)
    assert bool(torch.isfinite(out[rest].float()).all()) and bool(torch.isfinite(lse[rest]).all())


@pytest.mark.parametrize("num_splits", [1, 2])
def test_decode_treats_out_of_range_slots_as_masked_and_never_reads_them(num_splits):
    q, cache, idx, _ = KC.make_decode(5, 64, 256, 16, seed=11)
    view = in_poisoned_buffer(cache, 0xFF)  # fp8 NaN codes, NaN scales and rope past the cache's end
    far = past_the_end(idx, cache.shape[0] * cache.shape[1], seed=5)
    out, lse = GD.sparse_mla_decode(q, view, idx, SCALE, num_splits=num_splits)
    out_far, lse_far = GD.sparse_mla_decode(q, view, far, SCALE, num_splits=num_splits)
    assert same_bits(out, out_far) and same_bits(lse, lse_far)


# ---------------------------------------------------------------------------------------------
# prefill
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tokens,heads,topk,rows,sample",
    [(1, 128, 64, None, None), (17, 64, 192, 40, None), (64, 128, 2048, 3000, None), (257, 64, 512, None, None),
     (2048, 128, 2048, None, 32)],  # the last: production prefill, the reference on 32 tokens
)
def test_prefill_matches_float64_and_replays_bit_identically(tokens, heads, topk, rows, sample):
    r = KC.check_prefill(Gluon, tokens, heads, topk, rows=rows, seed=tokens + heads, sample=sample)
    assert r["finite_all"] and r["rel_err"] < KC.REL_BOUND, r
    assert r["lse_inf_match"] and r["lse_err_over_cond"] < KC.LSE_BOUND, r
    assert r["masked_rows_zero"], r  # make_prefill's row 0 is all -1 (tokens >= 2)
    assert r["graph_bitwise"], r


def _tail_padded(idx):
    """The same keys per row with every -1 moved to the end (a fresh causal prefill's rows)."""
    return torch.sort(idx, dim=-1, descending=True).values.contiguous()


@pytest.mark.parametrize("heads", [64, 128])
def test_prefill_skipping_masked_blocks_is_bit_identical_to_not_skipping(heads):
    q, kv, idx = KC.make_prefill(40, heads, 512, rows=300, seed=heads)
    tail = _tail_padded(idx)
    tail[39, 0, 64:128] = -1  # an all-masked block in the middle of a long row
    for ind in (idx, tail):
        out_s, lse_s = GP.sparse_mla_prefill(q, kv, ind, SCALE, skip_masked_blocks=True)
        out_n, lse_n = GP.sparse_mla_prefill(q, kv, ind, SCALE, skip_masked_blocks=False)
        assert same_bits(out_s, out_n) and same_bits(lse_s, lse_n)


@pytest.mark.parametrize("skip", [True, False])
def test_prefill_all_masked_row_gives_zero_and_neg_inf(skip):
    q, kv, idx = KC.make_prefill(6, 64, 128, rows=100, seed=4)
    idx[3] = -1
    out, lse = KC.poisoned_call(GP.sparse_mla_prefill, q, kv, idx, SCALE, skip_masked_blocks=skip)
    for t in (0, 3):  # make_prefill masks row 0 too
        assert bool((out[t] == 0).all()) and bool(torch.isneginf(lse[t]).all())
    assert bool(torch.isfinite(out.float()).all()) and not bool(torch.isnan(lse).any())


@pytest.mark.parametrize("skip", [True, False])
def test_prefill_treats_out_of_range_rows_as_masked_and_never_reads_them(skip):
    q, kv, idx = KC.make_prefill(20, 128, 256, rows=150, seed=8)
    view = in_poisoned_buffer(kv, float("nan"))
    far = past_the_end(idx, kv.shape[0], seed=9)
    out, lse = GP.sparse_mla_prefill(q, view, idx, SCALE, skip_masked_blocks=skip)
    out_far, lse_far = GP.sparse_mla_prefill(q, view, far, SCALE, skip_masked_blocks=skip)
    assert same_bits(out, out_far) and same_bits(lse, lse_far)


# ---------------------------------------------------------------------------------------------
# refusals: a ValueError naming what is wrong (the suite's --kernel gluon reports it)
# ---------------------------------------------------------------------------------------------

DECODE_REFUSALS = {
    "heads not a multiple of 64": (lambda q, c, i: (q[:, :, :48], c, i), r"H must be a multiple of 64; got 48"),
    "topk not a multiple of 64": (lambda q, c, i: (q, c, i[..., :100]),
                                  r"topk must be a positive multiple of 64; got 100"),
    "int64 indices": (lambda q, c, i: (q, c, i.long()), r"indices must be int32; got torch.int64"),
    "float16 q": (lambda q, c, i: (q.half(), c, i), r"q must be bf16"),
    "int8 cache": (lambda q, c, i: (q, c.view(torch.int8), i), r"kv_cache must be uint8"),
    "two-head cache": (lambda q, c, i: (q, c.reshape(c.shape[0], c.shape[1] // 2, 2, c.shape[3]), i),
                       r"kv_cache must be \[num_blocks, block_size, 1, 656\]"),
}


@pytest.mark.parametrize("what", list(DECODE_REFUSALS))
def test_decode_refuses_what_it_does_not_take_by_name(what):
    mutate, message = DECODE_REFUSALS[what]
    q, cache, idx, _ = KC.make_decode(3, 64, 128, 16, seed=1)
    with pytest.raises(ValueError, match=message):
        GD.sparse_mla_decode(*mutate(q, cache, idx), SCALE)


def test_decode_refuses_blocks_that_are_not_contiguous():
    q, cache, idx, _ = KC.make_decode(3, 64, 128, 16, seed=1, layout="padded")
    with pytest.raises(ValueError, match="blocks contiguous"):
        GD.sparse_mla_decode(q, cache, idx, SCALE)


PREFILL_REFUSALS = {
    "heads not a multiple of 64": (lambda q, k, i: (q[:, :48], k, i), r"H must be a multiple of 64; got 48"),
    "topk not a multiple of 64": (lambda q, k, i: (q, k, i[..., :100]),
                                  r"topk must be a positive multiple of 64; got 100"),
    "int64 indices": (lambda q, k, i: (q, k, i.long()), r"indices must be int32; got torch.int64"),
    "float16 q": (lambda q, k, i: (q.half(), k, i), r"q must be bf16"),
    "float16 kv": (lambda q, k, i: (q, k.half(), i), r"kv must be bf16"),
    "two-head kv": (lambda q, k, i: (q, torch.cat([k, k], 1), i), r"kv must be \[S, 1, 576\]"),
}


@pytest.mark.parametrize("what", list(PREFILL_REFUSALS))
def test_prefill_refuses_what_it_does_not_take_by_name(what):
    mutate, message = PREFILL_REFUSALS[what]
    q, kv, idx = KC.make_prefill(4, 64, 128, rows=50, seed=2)
    with pytest.raises(ValueError, match=message):
        GP.sparse_mla_prefill(*mutate(q, kv, idx), SCALE)

