"""Correctness verdicts: a non-finite output is its own failure, and `--check` names every case it
did not compare, with the reason; counts are of what was compared."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dsabench.analysis.checks import check_outputs
from dsabench.bench.output_check import nonfinite_report
from dsabench.bench.protocol import protocol_for
from dsabench.bench.worker import ORACLE_MAX_SCORES, WorkerOptions, run_group
from dsabench.present.summary import format_check
from dsabench.store import rundir as store
from dsabench.workload.variants import BASELINE, PATCHED

from conftest import make_case

REPO = Path(__file__).resolve().parent.parent


def _bf16_bytes(values: np.ndarray) -> bytes:
    import ml_dtypes

    return np.ascontiguousarray(values.astype(ml_dtypes.bfloat16)).view(np.uint16).tobytes()


def test_a_finite_output_has_no_nonfinite_report():
    assert nonfinite_report(_bf16_bytes(np.ones((2, 3, 4), np.float32)), (2, 3, 4)) is None


def test_nonfinite_report_counts_nan_and_inf_and_gives_the_first_index_flat_and_as_a_tuple():
    out = np.ones((2, 3, 4), np.float32)
    out[1, 0, 2] = np.nan
    out[1, 2, 3] = -np.inf
    out[0, 2, 1] = np.inf
    report = nonfinite_report(_bf16_bytes(out), out.shape)
    assert (report["count"], report["nan"], report["inf"], report["total"]) == (3, 1, 2, 24)
    assert report["first_flat"] == 9 and report["first_index"] == [0, 2, 1]
    assert "3 of 24" in report["message"] and "flat index 9" in report["message"] and "(0, 2, 1)" in report["message"]


def _poisoning(backend):
    """The real backend, with one context record the decode attends given a NaN tile scale, as a
    kernel that read an unwritten slot would see it."""

    class Poisoned(type(backend)):
        def prepare(self, case, host):
            state = super().prepare(case, host)
            slot = int(host.decode_indices[0, 0, 0])
            row = slot // case.block_size * case.cache_heads * case.block_size + slot % case.block_size
            if backend.name == "torch":
                state.latent_cache.view(-1, 656).view(torch_int32())[row, 128] = -1  # scale of tile 0: NaN
            else:
                import paddle

                words = state.latent_cache.view([-1, 656]).view(paddle.int32)
                words[row, 128] = paddle.full([], -1, paddle.int32)  # scale of tile 0: ff ff ff ff, a NaN
            return state

    return Poisoned()


def torch_int32():
    import torch

    return torch.int32


def _opts(tmp_path, check=True):
    return WorkerOptions(run_id="t", run_dir=str(tmp_path), protocol=protocol_for(False, max_time_s=0.05),
                         check=check, profile_iters=0, phase_iters=1, trace=False)


def test_a_nan_in_the_output_is_recorded_nonfinite_even_when_all_variants_agree(backend, tmp_path):
    cases = [make_case(context_len=10, topk=32, num_blocks=20, variant=v) for v in (BASELINE, PATCHED)]
    records = [r.to_json() for r in run_group(_poisoning(backend), cases, _opts(tmp_path))]
    for r in records:
        assert r["status"] == "nonfinite"
        assert "not finite" in r["message"] and "first at flat index" in r["message"]
        bad = r["output"]["nonfinite"]
        assert bad["count"] > 0 and len(bad["first_index"]) == 3
        assert r["output"]["oracle_skipped"] == "the output is not finite"
        assert r["timing"] is None  # a wrong output is not timed
    assert records[0]["output"]["digest"] == records[1]["output"]["digest"]
    result = check_outputs(records)
    assert not result.mismatches and not result.ok
    assert len(result.nonfinite) == 2
    assert "non-finite output: 2 cases" in format_check(result, records)


def test_a_case_too_large_for_the_oracle_says_so_in_its_record(tmp_path):
    """One backend suffices: the worker writes the reason. Each forward is ~2M scores on the CPU,
    so the timing takes its fewest samples."""
    pytest.importorskip("torch")
    from dsabench.bench.backends.registry import get_backend

    case = make_case(batch=16, context_len=40, heads=128, topk=1024, num_blocks=64, variant=PATCHED)
    assert case.num_tokens * case.heads * case.topk > ORACLE_MAX_SCORES
    protocol = protocol_for(False, warmup_min_iters=1, warmup_min_ms=0.0, min_samples=3, chunk=3, max_time_s=0.01)
    opts = replace(_opts(tmp_path), protocol=protocol, phase_iters=0)
    (record,) = [r.to_json() for r in run_group(get_backend("torch"), [case], opts)]
    assert record["status"] == "ok"
    assert "oracle_rel_error" not in record["output"]
    assert record["output"]["oracle_skipped"].startswith("too large for the float64 oracle")
    (skipped,) = check_outputs([record]).skipped
    assert skipped[0] == case.id
    assert "no bit-identity comparison" in skipped[1] and "no oracle comparison: too large" in skipped[1]


SKIPS = """
[defaults]
phase = "decode"
batch = 2
context_len = 20
block_size = 16
heads = 3
topk = 40

[[scenario]]
name = "compared"
variant = ["baseline", "patched"]
graph = ["off", "on"]

[[scenario]]
name = "alone"
context_len = 7
variant = "patched"
"""


def test_check_names_each_case_it_did_not_compare_with_the_reason_and_counts_only_what_it_compared(tmp_path):
    pytest.importorskip("paddle")
    scenario = tmp_path / "skips.toml"
    scenario.write_text(SKIPS)
    r = subprocess.run([sys.executable, "-m", "dsabench", "run", str(scenario), "--out", str(tmp_path), "--run-id",
                        "s", "--max-time-s", "0.05", "--profile-iters", "0", "--check"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    records, _ = store.read_records(tmp_path / "s")
    assert len(records) == 5
    alone = next(rec for rec in records if rec["params"]["context_len"] == 7)
    graph = [rec["case_id"] for rec in records if rec["params"]["graph"]]
    out = r.stdout
    assert "1 configs (2 of 5 cases) compared bit for bit" in out
    assert "oracle: 3 of 5 cases compared with the float64 reference" in out
    assert "not compared: 3 of 5 cases missed a comparison" in out
    assert "2 cases: no output (unsupported: graph=on: CUDA Graph needs a CUDA device" in out
    assert "1 case: no bit-identity comparison: no other case of its config has an output:" in out
    for cid in graph + [alone["case_id"]]:
        assert f"    {cid}" in out
    assert alone["output"]["oracle_rel_error"] <= alone["output"]["oracle_bound"]
