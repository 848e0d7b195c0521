"""Which shapes each attention kernel takes, decided before the call: a case FlashMLA (or the
suite's Triton decode) would refuse mid-forward is recorded `unsupported` with the reason, and
shown as an expected finding, never a crash. The rules are FlashMLA 9241ae3's own checks
(csrc/api/sparse_decode.h, sparse_fwd.h and the sm90 kernels' KU_ASSERTs); pure functions of the
case, so they are specified here on the CPU. The end-to-end refusal runs only where FlashMLA imports."""

from __future__ import annotations

import importlib.util

import pytest

from dsabench.bench.kernels.attention import refusal
from dsabench.bench.kernels.flashmla import refusal as flashmla_refusal
from dsabench.present.findings import finding
from dsabench.workload.scenarios import load_named
from dsabench.workload.variants import PATCHED
from dsabench.workload.cases import Case


def case(**kw) -> Case:
    base = dict(scenario="s", phase="decode", batch=2, context_len=300, prefill_len=0, num_blocks=64, block_size=64,
                cache_heads=1, heads=128, topk=2048, variant=PATCHED, graph=False, seed=0)
    return Case(**{**base, **kw})


def test_flashmla_takes_the_production_shapes_of_the_pr_preset():
    assert all(flashmla_refusal(c) == "" for c in load_named("pr").cases)


@pytest.mark.parametrize("heads", [64, 128])
def test_flashmla_takes_64_or_128_query_heads(heads):
    assert flashmla_refusal(case(heads=heads)) == ""


@pytest.mark.parametrize("heads", [1, 16, 20, 32, 96, 256])
def test_flashmla_refuses_other_head_counts_naming_the_count_and_what_it_takes(heads):
    assert flashmla_refusal(case(heads=heads)) == f"{heads} query heads (FlashMLA's sparse kernels take 64 or 128)"


def test_flashmla_decode_needs_topk_a_multiple_of_64_and_prefill_a_multiple_of_128():
    assert flashmla_refusal(case(topk=192)) == ""  # decode: 3 blocks of 64
    assert "multiple of 64" in flashmla_refusal(case(topk=200))
    prefill = dict(phase="prefill", batch=1, context_len=0, prefill_len=300)
    assert flashmla_refusal(case(topk=256, **prefill)) == ""
    assert flashmla_refusal(case(topk=192, **prefill)) == (
        "topk 192 for its prefill (FlashMLA's sparse prefill takes a multiple of 128)")
    mixed = flashmla_refusal(case(phase="mixed", prefill_len=16, topk=200))
    assert "for its decode" in mixed and "for its prefill" in mixed  # both calls named


def test_flashmla_refuses_a_multi_head_cache_and_gives_every_reason_at_once():
    why = flashmla_refusal(case(cache_heads=2, heads=20, topk=200))
    assert why.split("; ") == [
        "20 query heads (FlashMLA's sparse kernels take 64 or 128)",
        "2 cache heads (FlashMLA's sparse kernels take one: h_kv == 1, MQA)",
        "topk 200 for its decode (FlashMLA's sparse decode takes a multiple of 64)",
    ]


def test_every_smoke_case_is_refused_by_flashmla_its_16_heads_are_not_a_flashmla_shape():
    assert all("16 query heads" in flashmla_refusal(c) for c in load_named("smoke").cases)


def test_the_nightly_cases_flashmla_refuses_are_exactly_its_16_head_ones():
    refused = {c.heads for c in load_named("nightly").cases if flashmla_refusal(c)}
    assert refused == {16}


def test_the_triton_decode_refuses_a_multi_head_cache_and_its_prefill_does_not_read_the_cache():
    assert "2 cache heads" in refusal("triton", case(cache_heads=2))
    assert refusal("triton", case(cache_heads=2, phase="prefill", batch=1, context_len=0, prefill_len=8)) == ""
    assert refusal("triton", case(heads=20, topk=200)) == ""  # any heads and topk (padded, masked)


def test_the_gluon_decode_takes_the_pr_presets_production_shapes():
    assert all(refusal("gluon", c) == "" for c in load_named("pr").cases)


def test_the_gluon_decode_refuses_heads_or_topk_off_its_64_blocks_and_multi_head_caches_all_at_once():
    why = refusal("gluon", case(heads=16, topk=200, cache_heads=2))
    assert "16 query heads" in why and "topk 200" in why and "2 cache heads" in why and why.count("; ") == 2
    assert refusal("gluon", case(heads=64, topk=64)) == ""


def test_the_gluon_prefill_refuses_heads_and_topk_off_its_blocks_but_never_a_multi_head_cache_it_does_not_read():
    prefill = dict(phase="prefill", batch=1, context_len=0, prefill_len=8)
    why = refusal("gluon", case(heads=16, topk=200, cache_heads=2, **prefill))
    assert "Gluon prefill" in why and "16 query heads" in why and "topk 200" in why and "cache heads" not in why
    assert refusal("gluon", case(heads=64, topk=128, cache_heads=2, **prefill)) == ""


def test_every_smoke_decode_case_is_refused_by_the_gluon_decode_its_16_heads_are_not_a_multiple_of_64():
    assert all("16 query heads" in refusal("gluon", c) for c in load_named("smoke").cases if c.has_decode)


def test_the_gluon_refusal_uses_the_kernels_own_block_sizes():
    """The refusal is decided without importing the kernel (it imports triton); the block sizes it
    checks against are the ones the kernel file declares."""
    import re
    from pathlib import Path

    from dsabench.bench.kernels import attention

    folder = Path(attention.__file__).parent
    source = (folder / "gluon_mla.py").read_text()
    declared = {name: int(v) for name, v in re.findall(r"^(BLOCK_H|BLOCK_N)\s*=\s*(\d+)", source, re.M)}
    assert declared == {"BLOCK_H": attention.GLUON_HEAD_BLOCK, "BLOCK_N": attention.GLUON_TOPK_BLOCK}
    assert "BLOCK_H, BLOCK_N = _GM.BLOCK_H, _GM.BLOCK_N" in (folder / "gluon_mla_prefill.py").read_text()


def test_the_reference_ops_take_every_shape():
    assert refusal("reference", case(cache_heads=3, heads=7, topk=5)) == ""


def test_a_kernel_refusal_is_an_expected_finding_named_by_its_kernel():
    row = {**case(heads=20).params(), "status": "unsupported",
           "message": f"kernel flashmla: {flashmla_refusal(case(heads=20))}"}
    assert finding(row) == "n/a: flashmla does not take this shape"
    assert finding({**row, "message": "flashmla: something else"}) is None  # any other unsupported is a failure


@pytest.mark.skipif(importlib.util.find_spec("flash_mla") is None, reason="FlashMLA is not installed here")
def test_a_run_with_flashmla_records_the_shapes_it_refuses_as_unsupported_and_exits_0(tmp_path):
    from dsabench.store.rundir import read_records

    from cli_process import dsabench

    r = dsabench("run", "smoke", "--backend", "torch", "--kernel", "flashmla", "--filter", r"decode\.b1\.c256\.",
                 "--out", tmp_path, "--run-id", "fm", "--max-time-s", "0.1", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    records, _ = read_records(tmp_path / "fm")
    assert records and {x["status"] for x in records} == {"unsupported"}
    assert all(x["message"].startswith("kernel flashmla: 16 query heads") for x in records)
    assert "flashmla does not take this shape" in r.stdout

