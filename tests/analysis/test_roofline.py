"""The floor work per phase follows the case's shape; masked top-k entries do no work."""

from __future__ import annotations

import pytest

from dsabench.analysis.roofline import phase_work, roofline, saving_per_token_us

DECODE = {"phase": "decode", "batch": 64, "context_len": 4096, "prefill_len": 0, "heads": 128, "topk": 2048}


def test_decode_work_matches_the_hand_count_for_the_pr_case():
    w = phase_work(DECODE)["decode"]
    assert w.flops == pytest.approx(2 * 64 * 128 * 2048 * (576 + 512))  # about 36.5 GFLOP
    assert w.bytes == pytest.approx(64 * 2048 * 656 + 64 * 128 * (576 + 512) * 2)


def test_a_context_shorter_than_topk_does_only_the_work_of_its_tokens():
    short = dict(DECODE, context_len=99)
    assert phase_work(short)["decode"].flops == pytest.approx(2 * 64 * 128 * 100 * (576 + 512))


def test_prefill_tokens_attend_causally_to_at_most_topk_rows():
    p = {"phase": "prefill", "batch": 1, "context_len": 0, "prefill_len": 4, "heads": 2, "topk": 2}
    assert phase_work(p)["prefill"].flops == pytest.approx(2 * 2 * (576 + 512) * (1 + 2 + 2 + 2))
    assert "decode" not in phase_work(p) and "merge" not in phase_work(p)


def test_roofline_rows_give_rates_fractions_and_a_floor():
    (row,) = [r for r in roofline(DECODE, {"decode": 1.0}, copy_gbs=4000, matmul_tflops=800) if r.phase == "decode"]
    assert row.tflops == pytest.approx(36.51, rel=1e-3)
    assert row.of_matmul == pytest.approx(row.tflops / 800)
    assert row.floor_ms == pytest.approx(max(row.flops / 800e12, row.bytes / 4000e9) * 1e3)


def test_the_absolute_saving_is_per_layer_and_per_token_over_61_layers():
    assert saving_per_token_us(2.85, 2.30) == pytest.approx((550.0, 550.0 * 61))
