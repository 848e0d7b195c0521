"""scripts/gpu_reference.py: the pure parts (spread, relative difference, nvbench JSON, table).

The script runs on a GPU machine; here only what needs no torch, triton or cuda.bench is tested.
tests/data/nvbench_sample.json is one state of nvbench's --json output as cuda-bench 0.3.0 writes
it (nvbench/json_printer.cu, summaries from nvbench/detail/measure_cold.cu and measure_hot.cu at
NVIDIA/nvbench tag python-0.3.0): int64 and float64 values written as strings, durations in
seconds, percentages as ratios, no axes (axes and axis_values null).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dsabench.workload.scenarios import load_named
from dsabench.workload.variants import PATCHED

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_reference.py"
SAMPLE = ROOT / "tests" / "data" / "nvbench_sample.json"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_reference", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gr = _load()


@pytest.fixture
def sample_doc() -> dict:
    return json.loads(SAMPLE.read_text())


# --- import hygiene ------------------------------------------------------------------------


def test_import_pulls_in_no_gpu_framework():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('gr', {str(SCRIPT)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "bad = [n for n in ('torch', 'triton', 'cuda', 'cuda.bench', 'dsabench') if n in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_parse_args_defaults(tmp_path):
    a = gr.parse_args(["--out", str(tmp_path)])
    assert a.repeats == 5
    assert a.case_filter == r"decode\.b64\..*n65536.*scalar-view\.graph"
    assert a.preset == "pr"
    with pytest.raises(SystemExit):
        gr.parse_args(["--out", str(tmp_path), "--repeats", "0"])


# --- numbers -------------------------------------------------------------------------------


def test_spread_is_max_over_min_minus_one():
    assert gr.spread([1.0, 1.01, 1.005]) == pytest.approx(0.01)
    assert gr.spread([0.75]) == 0.0
    assert gr.spread([2.0, 1.0]) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [[], [0.0, 1.0], [-1.0, 1.0], [math.nan, 1.0], [math.inf]])
def test_spread_refuses_bad_values(bad):
    with pytest.raises(ValueError):
        gr.spread(bad)


def test_rel_diff_is_signed():
    assert gr.rel_diff(1.03, 1.0) == pytest.approx(0.03)
    assert gr.rel_diff(0.97, 1.0) == pytest.approx(-0.03)
    for ref in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError):
            gr.rel_diff(1.0, ref)


def test_within_and_median():
    assert gr.within(0.029, 0.03) is True
    assert gr.within(-0.031, 0.03) is False
    assert gr.within(None, 0.03) is None
    assert gr.within(math.inf, 0.03) is None
    assert gr.median([3.0, 1.0, 2.0]) == 2.0
    assert gr.median([1.0, 2.0]) == 1.5


def test_jsonable_turns_non_finite_into_strings():
    out = gr.jsonable({"a": math.inf, "b": [1.0, -math.inf, (math.nan,)], 3: {"c": 2}})
    assert out == {"a": "inf", "b": [1.0, "-inf", ["nan"]], "3": {"c": 2}}
    json.dumps(out, allow_nan=False)


# --- case selection ------------------------------------------------------------------------


def test_default_filter_picks_the_patched_b64_graph_case():
    cases = [c for c in load_named("pr").cases if c.variant == PATCHED]
    case = gr.pick_case(cases, gr.DEFAULT_CASE_REGEX)
    assert case.graph and case.variant == PATCHED
    assert case.id.startswith("decode.b64.") and ".n65536." in case.id
    assert case.id.endswith(".scalar-view.graph")


def test_pick_case_refuses_no_match_and_eager_only():
    cases = list(load_named("pr").cases)
    with pytest.raises(LookupError, match="no case id matches"):
        gr.pick_case(cases, r"^nothing-like-this$")
    with pytest.raises(LookupError, match="none is a graph case"):
        gr.pick_case(cases, r"\.eager$")


# --- nvbench -------------------------------------------------------------------------------


def test_nvbench_argv():
    argv = gr.nvbench_argv("out/nvbench.json", device=0, timeout_s=10, max_noise_pct=0.5, min_samples=10,
                           batch_target_s=0.5)
    assert not argv[0].startswith("-")  # nvbench skips a first argument that is a program name
    pairs = dict(zip(argv[1::2], argv[2::2]))
    assert pairs == {"--json": "out/nvbench.json", "--devices": "0", "--timeout": "10.0",
                     "--min-samples": "10", "--max-noise": "0.5", "--batch-target-time": "0.5"}


def test_sample_file_has_nvbench_layout(sample_doc):
    assert set(sample_doc) == {"meta", "devices", "benchmarks"}
    assert sample_doc["meta"]["version"]["json"]["string"] == "1.0.0"
    state = sample_doc["benchmarks"][0]["states"][0]
    for summ in state["summaries"]:
        assert list(summ)[0] == "tag"
        for item in summ["data"]:
            assert isinstance(item["value"], str)  # nvbench writes numbers as strings


def test_parse_nvbench_sample_in_milliseconds():
    parsed = gr.parse_nvbench_json(SAMPLE)
    assert parsed["benchmark"] == "dsabench_graph_replay"
    assert parsed["json_version"] == "1.0.0"
    assert parsed["nvbench_version"] == "0.1.0"
    assert parsed["devices"] == {0: "NVIDIA H100 80GB HBM3"}
    assert len(parsed["states"]) == 1
    st = parsed["states"][0]
    assert st["name"] == "Device=0" and st["device"] == 0 and st["is_skipped"] is False
    cold, batch = st["cold"], st["batch"]
    assert cold["samples"] == 674 and isinstance(cold["samples"], int)
    assert cold["gpu_median_ms"] == pytest.approx(0.7421119809150696)
    assert cold["gpu_mean_ms"] == pytest.approx(0.7425957952461834)
    assert cold["gpu_min_ms"] <= cold["gpu_q1_ms"] <= cold["gpu_median_ms"] <= cold["gpu_q3_ms"] <= cold["gpu_max_ms"]
    assert cold["gpu_noise_rel"] == pytest.approx(0.004056643373128327)  # a ratio, not percent, not ms
    assert cold["cpu_mean_ms"] == pytest.approx(0.7633918857566765)
    assert cold["walltime_s"] == pytest.approx(0.733214657)  # seconds stay seconds
    assert cold["sm_clock_hz"] == pytest.approx(1975103857.5667656)
    assert batch == {"samples": 1386, "walltime_s": pytest.approx(1.004431261),
                     "gpu_mean_ms": pytest.approx(0.7215482611471495)}
    assert st["summaries"]["nv/batch/time/gpu/mean"] == pytest.approx(0.0007215482611471495)


def test_parse_accepts_a_loaded_dict_and_picks_by_name(sample_doc):
    other = copy.deepcopy(sample_doc["benchmarks"][0])
    other["name"] = "other"
    other["states"][0]["summaries"] = []
    sample_doc["benchmarks"].insert(0, other)
    assert gr.parse_nvbench_json(sample_doc)["benchmark"] == "other"
    parsed = gr.parse_nvbench_json(sample_doc, "dsabench_graph_replay")
    assert parsed["states"][0]["batch"]["gpu_mean_ms"] == pytest.approx(0.7215482611471495)
    assert parsed["states"][0]["cold"]["samples"] == 674
    empty = gr.parse_nvbench_json(sample_doc, "other")["states"][0]
    assert empty["cold"] is None and empty["batch"] is None
    assert gr.nvbench_reference(empty) is None
    with pytest.raises(ValueError, match="no benchmark 'missing'"):
        gr.parse_nvbench_json(sample_doc, "missing")
    with pytest.raises(ValueError, match="no benchmarks"):
        gr.parse_nvbench_json({"meta": {}, "devices": [], "benchmarks": []})


def test_reference_prefers_batch_then_cold_median_then_cold_mean(sample_doc):
    st = gr.parse_nvbench_json(sample_doc)["states"][0]
    assert gr.nvbench_reference(st) == ("batch/gpu/mean (hot)", pytest.approx(0.7215482611471495))

    state = sample_doc["benchmarks"][0]["states"][0]
    state["summaries"] = [s for s in state["summaries"] if not s["tag"].startswith("nv/batch/")]  # --no-batch
    st = gr.parse_nvbench_json(sample_doc)["states"][0]
    assert st["batch"] is None
    assert gr.nvbench_reference(st) == ("cold/gpu/median (L2 flushed)", pytest.approx(0.7421119809150696))

    state["summaries"] = [s for s in state["summaries"] if s["tag"] != "nv/cold/time/gpu/median"]
    st = gr.parse_nvbench_json(sample_doc)["states"][0]
    assert gr.nvbench_reference(st) == ("cold/gpu/mean (L2 flushed)", pytest.approx(0.7425957952461834))


def test_skipped_state(sample_doc):
    state = sample_doc["benchmarks"][0]["states"][0]
    state.update(summaries=None, is_skipped=True, skip_reason="Warmup time did not meet skip_time limit")
    st = gr.parse_nvbench_json(sample_doc)["states"][0]
    assert st["is_skipped"] and st["skip_reason"].startswith("Warmup")
    assert st["cold"] is None and st["batch"] is None
    assert gr.nvbench_reference(st) is None


def test_summary_value_types():
    def summ(kind, value, name="value"):
        return {"tag": "t", "data": [{"name": name, "type": kind, "value": value}]}

    assert gr._summary_value(summ("int64", "9223372036854775807")) == 2**63 - 1
    assert gr._summary_value(summ("float64", "inf")) == math.inf  # nvbench's noise sentinel
    assert gr._summary_value(summ("float64", "1e-06")) == 1e-6
    assert gr._summary_value(summ("string", "x.bin")) == "x.bin"
    assert gr._summary_value(summ("float64", "1.0", name="other")) is None
    assert gr._summary_value({"tag": "t"}) is None
    with pytest.raises(ValueError, match="unknown type"):
        gr._summary_value(summ("complex", "1"))


# --- report table ----------------------------------------------------------------------------


def _report(nvbench_state: dict | None) -> dict:
    medians = [0.7200, 0.7230, 0.7210, 0.7190, 0.7205]
    ref = gr.median(medians)
    nvb: dict = {"error": "import cuda.bench failed: ImportError: x"} if nvbench_state is None else {"state": nvbench_state}
    if nvbench_state is not None:
        nvb["rel_diff_batch"] = gr.rel_diff(nvbench_state["batch"]["gpu_mean_ms"], ref)
        nvb["rel_diff_cold_median"] = gr.rel_diff(nvbench_state["cold"]["gpu_median_ms"], ref)
    return {
        "case_id": "decode.b64.c4096.p0.n65536.bs64.ch1.h128.k2048.s0.hot.scalar-view.graph",
        "device": {"name": "NVIDIA H100 80GB HBM3"},
        "suite": {"medians_ms": medians, "median_of_medians_ms": ref, "spread": gr.spread(medians)},
        "triton": {"do_bench_cudagraph": {"median_ms": 0.74, "rel_diff": gr.rel_diff(0.74, ref)},
                   "do_bench": {"median_ms": 0.80, "rel_diff_vs_suite_eager_cold": 0.01}},
        "eager": {"suite_hot_median_ms": 0.79, "suite_hot_vs_graph": gr.rel_diff(0.79, ref),
                  "suite_cold_median_ms": 0.81, "suite_cold_vs_graph": gr.rel_diff(0.81, ref)},
        "nvbench": nvb,
    }


def test_table_rows_and_verdicts():
    st = gr.parse_nvbench_json(SAMPLE)["states"][0]
    rep = _report(st)
    rows = {r[0]: r for r in gr.summary_rows(rep)}
    assert rows["suite graph replay"][2] == "0.7205"
    assert rows["suite graph replay"][4].endswith(": ok")  # spread 0.56% <= 1%
    assert rows["triton do_bench_cudagraph"][3] == "+2.71%"
    assert rows["triton do_bench_cudagraph"][4].endswith(": ok")
    assert rows["nvbench batch"][2] == "0.7215"
    assert rows["nvbench batch"][4].endswith(": ok")
    assert rows["nvbench cold"][3] == "+3.00%"
    table = gr.format_table(rep)
    lines = table.splitlines()
    assert lines[0].startswith("case decode.b64.") and lines[0].endswith("NVIDIA H100 80GB HBM3")
    assert lines[1].split()[:2] == ["reference", "measurement"]
    assert len(lines) == 3 + len(gr.summary_rows(rep))

    rep["triton"]["do_bench_cudagraph"]["rel_diff"] = 0.05
    rows = {r[0]: r for r in gr.summary_rows(rep)}
    assert rows["triton do_bench_cudagraph"][4].endswith(": MISS")


def test_table_reports_a_failed_cuda_bench():
    rows = {r[0]: r for r in gr.summary_rows(_report(None))}
    assert rows["cuda-bench (nvbench)"][1] == "error"
    assert "import cuda.bench failed" in rows["cuda-bench (nvbench)"][4]
    assert "nvbench batch" not in rows
