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
    assert "2 cases: no output, expected: n/a: no CUDA Graph on CPU" in out  # counted in one line, not listed
    assert all(cid not in out for cid in graph)
    assert "1 case: no bit-identity comparison: no other case of its config has an output:" in out
    assert f"    {alone['case_id']}" in out
    assert alone["output"]["oracle_rel_error"] <= alone["output"]["oracle_bound"]


def _record(case_id: str, config: str, status: str = "ok", oracle: str | None = "error", graph: bool = False,
            message: str = "") -> dict:
    output = {} if status != "ok" else {"digest": "d" * 64}
    if status == "ok":
        output.update({"oracle_rel_error": 1e-3, "oracle_bound": 1e-2} if oracle == "error" else {"oracle_skipped": oracle})
    return {"case_id": case_id, "config_id": config, "status": status, "message": message, "output": output,
            "params": {"graph": graph, "scale_mode": "tensor", "layout_mode": "contiguous"}}


def test_a_run_without_check_says_once_that_the_oracle_did_not_run_and_counts_no_case_as_missing_it():
    from dsabench.store.schema import NO_CHECK

    records = [_record(f"c.{v}", "c", oracle=NO_CHECK) for v in ("baseline", "patched")]
    text = format_check(check_outputs(records), records)
    assert "2 of 2 cases) compared bit for bit across variants and impls: all identical" in text
    assert f"oracle: not run ({NO_CHECK})" in text
    assert "not compared" not in text


def test_a_run_that_finished_no_case_has_nothing_to_compare():
    assert format_check(check_outputs([]), []) == "correctness: nothing to compare: no case finished"


def test_no_config_with_two_outputs_is_never_called_all_identical():
    records = [_record("c.baseline", "c"), _record("d.baseline", "d")]
    text = format_check(check_outputs(records), records)
    assert "0 configs (0 of 2 cases) compared bit for bit" in text and "all identical" not in text


def test_expected_findings_are_one_line_a_kind_and_failures_are_named_case_by_case():
    msg = "graph=on: CUDA Graph needs a CUDA device; this Paddle is a CPU build"
    records = [_record("c.baseline", "c"), _record("c.patched", "c"),
               *(_record(f"c.{v}.graph", "c", "unsupported", graph=True, message=msg) for v in ("baseline", "patched")),
               _record("e.baseline", "e", "oom", message="out of memory"), _record("e.patched", "e")]
    lines = format_check(check_outputs(records), records).splitlines()
    assert "  2 cases: no output, expected: n/a: no CUDA Graph on CPU" in lines
    assert not any(".graph" in line for line in lines)
    assert "  1 case: no output (oom: out of memory):" in lines and "    e.baseline" in lines


def test_the_records_line_counts_every_record_of_the_file_and_says_how_many_this_invocation_wrote():
    from dsabench.present.summary import records_line

    records = [_record(f"c{i}.baseline", f"c{i}") for i in range(25)]
    records += [_record(f"g{i}.graph", f"g{i}", "unsupported", graph=True) for i in range(16)]
    records += [_record("v.patched", "v", "invalid")]
    line = records_line(records, 30, "run/cases.jsonl")
    assert line == ("42 records in run/cases.jsonl (25 ok, 1 invalid, 16 unsupported); 30 written now, "
                    "12 by an earlier invocation (--resume)")
    assert records_line(records, 42, "x").endswith("(25 ok, 1 invalid, 16 unsupported)")
