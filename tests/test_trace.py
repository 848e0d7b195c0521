"""Chrome traces: real CPU traces from both profilers, GPU fixtures in each exporter's format."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import pytest

from dsabench.errors import InputError, Unsupported
from dsabench.bench.trace import COLUMNS, ITER_RANGE, aggregate, is_sync_call, load_events

DATA = Path(__file__).parent / "data"
GPU_FIXTURES = {"paddle": DATA / "paddle_gpu.paddle_trace.json.gz",
                "torch": DATA / "torch_gpu.pt.trace.json.gz"}


# ------------------------------------------------------------ real CPU traces


def _paddle_step():
    import paddle
    import paddle.profiler as pp

    x = paddle.randn([64, 32])

    def step():
        with pp.RecordEvent("layout"):
            y = x.transpose([1, 0]).contiguous()
        with pp.RecordEvent("decode"):
            paddle.matmul(x, y)
    return step


def _torch_step():
    import torch
    from torch.profiler import record_function

    x = torch.randn(64, 32)

    def step():
        with record_function("layout"):
            y = x.t().contiguous()
        with record_function("decode"):
            x @ y
    return step


@pytest.fixture(scope="module")
def cpu_traces(tmp_path_factory) -> dict[str, Path]:
    from dsabench.bench.backends import paddle_profile, torch_profile

    d = tmp_path_factory.mktemp("traces")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"paddle": paddle_profile.record_trace(_paddle_step(), 3, d / "p.paddle_trace.json.gz", gpu=False),
                "torch": torch_profile.record_trace(_torch_step(), 3, d / "t.pt.trace.json.gz", gpu=False)}


@pytest.mark.parametrize("source", ["paddle", "torch"])
def test_a_cpu_trace_recorded_through_record_trace_counts_three_iterations(cpu_traces, source):
    assert aggregate(load_events(cpu_traces[source]))["iterations"] == 3


@pytest.mark.parametrize("source", ["paddle", "torch"])
def test_a_cpu_trace_gives_host_time_for_each_phase_that_ran(cpu_traces, source):
    agg = aggregate(load_events(cpu_traces[source]))
    assert list(agg["phase_host_ms"]) == ["layout", "decode"]
    assert all(v > 0 for v in agg["phase_host_ms"].values())


@pytest.mark.parametrize("source", ["paddle", "torch"])
def test_a_cpu_trace_has_no_device_work_and_says_so(cpu_traces, source):
    agg = aggregate(load_events(cpu_traces[source]))
    assert agg["device_events"] is False
    assert agg["kernel_count"] == agg["kernel_ms"] == agg["sync_calls"] == 0.0
    assert agg["phase_kernel_ms"] == {"layout": 0.0, "decode": 0.0}
    assert all(m["count"] == 0.0 for m in agg["memcpy"].values())
    assert agg["layout_copy"]["kernel_names"] == []


@pytest.mark.parametrize("source", ["paddle", "torch"])
def test_the_recorded_file_is_gzipped_json_with_trace_events(cpu_traces, source):
    with gzip.open(cpu_traces[source], "rt") as f:
        doc = json.load(f)
    assert isinstance(doc["traceEvents"], list) and doc["traceEvents"]


def test_both_profilers_load_into_the_same_columns_and_dtypes(cpu_traces):
    p, t = (load_events(cpu_traces[s]) for s in ("paddle", "torch"))
    assert list(p.columns) == list(t.columns) == list(COLUMNS)
    assert p.dtypes.to_dict() == t.dtypes.to_dict()
    assert set(p["source"]) == {"paddle"} and set(t["source"]) == {"torch"}


@pytest.mark.parametrize("source", ["paddle", "torch"])
def test_a_cpu_trace_has_the_user_ranges_and_framework_ops(cpu_traces, source):
    ev = load_events(cpu_traces[source])
    ranges = ev[ev["kind"] == "range"]
    assert (ranges["name"] == ITER_RANGE).sum() == 3
    assert (ranges["name"] == "layout").sum() == 3 and (ranges["name"] == "decode").sum() == 3
    assert (ev["kind"] == "op").any()
    assert (ev["dur_us"] >= 0).all() and (ev["end_us"] >= ev["ts_us"]).all()


def test_paddle_names_lose_the_duration_suffix_and_threads_the_language_tag(cpu_traces):
    ev = load_events(cpu_traces["paddle"])
    assert not ev["name"].str.contains(r"\[[0-9.]+ (?:ms|us)\]$").any()
    assert not ev["tid"].str.contains("(", regex=False).any()
    # Python ranges and C++ ops of one thread land on one tid, so ops nest in the phases
    assert ev.loc[ev["kind"] == "op", "tid"].isin(set(ev.loc[ev["kind"] == "range", "tid"])).all()


def test_an_uncompressed_trace_loads_like_the_gzipped_one(cpu_traces, tmp_path):
    plain = tmp_path / "t.json"
    plain.write_bytes(gzip.decompress(cpu_traces["torch"].read_bytes()))
    assert load_events(plain).equals(load_events(cpu_traces["torch"]))


@pytest.mark.parametrize("backend", ["paddle_profile", "torch_profile"])
def test_asking_for_a_gpu_trace_without_a_gpu_is_unsupported(backend, tmp_path):
    import importlib

    mod = importlib.import_module(f"dsabench.bench.backends.{backend}")
    with pytest.raises(Unsupported):
        mod.record_trace(lambda: None, 1, tmp_path / "x.json.gz", gpu=True)


# ------------------------------------------------------------ GPU fixtures


@pytest.fixture(params=["paddle", "torch"])
def gpu(request):
    ev = load_events(GPU_FIXTURES[request.param])
    return request.param, ev, aggregate(ev)


def test_a_gpu_fixture_is_recognised_as_its_profilers_format(gpu):
    source, ev, _ = gpu
    assert set(ev["source"]) == {source}


def test_a_gpu_trace_counts_two_iterations_and_every_phase(gpu):
    _, _, agg = gpu
    assert agg["iterations"] == 2
    assert agg["device_events"] is True
    assert list(agg["phase_host_ms"]) == ["scale", "write_cache", "layout", "decode", "merge"]
    assert agg["phase_host_ms"] == pytest.approx(
        {"scale": 0.05, "write_cache": 0.05, "layout": 0.09, "decode": 0.1, "merge": 0.055})


def test_memcpys_carry_direction_and_bytes(gpu):
    _, ev, _ = gpu
    copies = ev[ev["kind"] == "memcpy"].sort_values("ts_us")
    assert list(copies["direction"]) == ["HtoD", "DtoD", "HtoD", "DtoD"]
    assert list(copies["bytes"]) == [4.0, 65536.0, 4.0, 65536.0]
    assert copies["on_device"].all() and (copies["correlation"] > 0).all()


def test_device_work_outside_the_iterations_is_left_out(gpu):
    _, ev, agg = gpu
    assert (ev["name"] == "warmup_kernel").sum() == 1
    assert agg["kernel_count"] == 3.0  # copy + gemm + softmax; the warm-up kernel is not counted
    assert agg["kernel_ms"] == pytest.approx((40 + 110 + 50) / 1e3)  # gemm: 100 then 120 us


def test_transfers_are_counted_per_iteration_by_direction(gpu):
    _, _, agg = gpu
    assert agg["memcpy"]["HtoD"] == pytest.approx({"count": 1.0, "bytes": 4.0, "ms": 0.0015})
    assert agg["memcpy"]["DtoD"] == pytest.approx({"count": 1.0, "bytes": 65536.0, "ms": 0.03})
    assert agg["memcpy"]["DtoH"] == {"count": 0.0, "bytes": 0.0, "ms": 0.0}
    assert agg["memset"] == pytest.approx({"count": 1.0, "bytes": 1024.0, "ms": 0.002})


def test_device_time_goes_to_the_phase_that_launched_it(gpu):
    _, _, agg = gpu
    assert agg["phase_kernel_ms"] == pytest.approx(
        {"scale": 0.0015, "write_cache": 0.002, "layout": 0.07, "decode": 0.16, "merge": 0.0})


def test_the_blocking_copy_and_the_stream_sync_are_sync_calls_but_the_final_device_sync_is_not(gpu):
    _, ev, agg = gpu
    assert agg["sync_calls"] == 2.0
    assert agg["sync_call_names"] == {"cudaMemcpy": 1.0, "cudaStreamSynchronize": 1.0}
    assert (ev["name"] == "cudaDeviceSynchronize").sum() == 1


def test_the_layout_copy_is_the_device_work_of_the_layout_phase(gpu):
    source, _, agg = gpu
    lc = agg["layout_copy"]
    assert lc["kernel_count"] == 2.0 and lc["bytes"] == 65536.0
    assert lc["kernel_ms"] == pytest.approx(0.07)
    dtod = "MEMCPY_DtoD" if source == "paddle" else "Memcpy DtoD (Device -> Device)"
    assert dtod in lc["kernel_names"] and len(lc["kernel_names"]) == 2


def test_runtime_names_drop_cuptis_version_suffix(gpu):
    _, ev, _ = gpu
    names = set(ev.loc[ev["kind"] == "runtime", "name"])
    assert names == {"cudaMemcpy", "cudaMemsetAsync", "cudaLaunchKernel", "cudaMemcpyAsync",
                     "cudaStreamSynchronize", "cudaDeviceSynchronize"}


def test_both_gpu_fixtures_aggregate_to_the_same_numbers():
    a, b = (aggregate(load_events(GPU_FIXTURES[s])) for s in ("paddle", "torch"))
    for agg in (a, b):
        agg["layout_copy"].pop("kernel_names")
    assert _approx_equal(a, b)


def _approx_equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_approx_equal(a[k], b[k]) for k in a)
    return a == pytest.approx(b)


def test_device_work_whose_launch_is_missing_counts_toward_totals_but_no_phase(gpu):
    _, ev, _ = gpu
    agg = aggregate(ev[ev["kind"] != "runtime"])
    assert agg["kernel_count"] == 3.0  # placed by its own time inside the iterations' window
    assert agg["memcpy"]["HtoD"]["count"] == 1.0
    assert set(agg["phase_kernel_ms"].values()) == {0.0}
    assert agg["sync_calls"] == 0.0


def test_launches_on_a_thread_without_iteration_ranges_are_placed_by_time_but_in_no_phase(gpu):
    _, ev, _ = gpu
    ev = ev.copy()
    ev.loc[ev["kind"] == "runtime", "tid"] = "0"  # what a failed CUPTI thread-id mapping gives
    agg = aggregate(ev)
    assert agg["kernel_count"] == 3.0 and agg["sync_calls"] == 2.0
    assert set(agg["phase_kernel_ms"].values()) == {0.0}


def test_the_gpu_fixtures_are_small_gzipped_json():
    for path in GPU_FIXTURES.values():
        assert path.stat().st_size < 8192
        with gzip.open(path, "rt") as f:
            assert isinstance(json.load(f)["traceEvents"], list)


def test_a_real_torch_gpu_trace_places_the_scalar_copy_its_sync_and_the_layout_copy():
    agg = aggregate(load_events(DATA / "torch_h100_recorded.pt.trace.json.gz"))
    assert agg["iterations"] == 3 and agg["device_events"] is True
    assert list(agg["phase_host_ms"]) == ["scale", "layout", "decode", "merge"]
    assert agg["memcpy"]["HtoD"]["count"] == 1.0 and agg["memcpy"]["HtoD"]["bytes"] == 4.0
    assert agg["memcpy"]["DtoH"]["count"] == 1.0 and agg["memcpy"]["DtoH"]["bytes"] == 2.0
    assert agg["memcpy"]["DtoD"]["count"] == 0.0
    assert agg["phase_kernel_ms"]["scale"] == pytest.approx(agg["memcpy"]["HtoD"]["ms"])
    # torch.tensor(x, device=...) is cudaMemcpyAsync + cudaStreamSynchronize; .item() syncs too
    assert agg["sync_call_names"] == {"cudaStreamSynchronize": 2.0}
    lc = agg["layout_copy"]
    assert lc["kernel_count"] == 1.0 and "direct_copy_kernel_cuda" in lc["kernel_names"][0]
    assert agg["phase_kernel_ms"]["decode"] > 0 and agg["kernel_count"] == 5.0


# ------------------------------------------------------------ sync calls


@pytest.mark.parametrize("name", ["cudaMemcpy", "cudaMemcpy_v3020", "cudaMemcpyPeer", "cuMemcpyHtoD_v2",
                                  "cudaStreamSynchronize", "cudaStreamSynchronize_ptsz",
                                  "cudaDeviceSynchronize", "cudaEventSynchronize", "cuCtxSynchronize"])
def test_blocking_copies_and_synchronizes_are_sync_calls(name):
    assert is_sync_call(name)


@pytest.mark.parametrize("name", ["cudaMemcpyAsync", "cuMemcpyHtoDAsync_v2", "cudaMemcpy2DAsync_ptsz",
                                  "cudaLaunchKernel", "cudaStreamWaitEvent", "cudaEventQuery",
                                  "cudaMemsetAsync"])
def test_async_copies_launches_and_queries_are_not_sync_calls(name):
    assert not is_sync_call(name)


# ------------------------------------------------------------ bad input


@pytest.mark.parametrize("content, problem", [
    (b"this is not json", "not JSON"),
    (gzip.compress(b"{\"traceEvents\": [ truncated", mtime=0), "not JSON"),
    (b"\x1f\x8b\x08\x00garbage", "gzip"),
    (b"{\"schemaVersion\": 1}", "traceEvents"),
    (b"[{\"ph\": \"X\", \"name\": \"a\", \"ts\": 1, \"dur\": 1}]", "traceEvents"),
    (b"{\"traceEvents\": [{\"ph\": \"X\", \"cat\": \"mystery\", \"name\": \"a\", \"ts\": 1, \"dur\": 1}]}",
     "unknown trace format"),
    (b"{\"traceEvents\": [{\"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"a\", \"dur\": 1}]}", "no numeric ts"),
])
def test_a_malformed_trace_is_an_input_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "broken.pt.trace.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as e:
        load_events(path)
    assert str(path) in str(e.value)


def test_a_missing_trace_is_an_input_error_naming_the_file(tmp_path):
    with pytest.raises(InputError, match="nowhere.json"):
        load_events(tmp_path / "nowhere.json")


def test_a_trace_without_iteration_ranges_cannot_be_aggregated(gpu):
    _, ev, _ = gpu
    with pytest.raises(InputError, match=ITER_RANGE):
        aggregate(ev[ev["name"] != ITER_RANGE])


def test_a_killed_workers_profiler_scratch_is_removed_and_other_workers_scratch_is_kept(tmp_path):
    """A worker killed mid-export never runs its temporary directory's cleanup; the runner does."""
    import signal
    import subprocess
    import sys
    import time

    from dsabench.bench.scratch import remove_scratch, scratch_dir

    traces = tmp_path / "traces"
    holder = ("import sys, time\nfrom dsabench.bench.scratch import scratch_dir\n"
              "t = scratch_dir(sys.argv[1])\nd = t.name\nopen(d + '/trace.json', 'w').write('{}')\n"
              "open(sys.argv[2], 'w').write(d)\ntime.sleep(600)\n")
    ready = tmp_path / "ready"
    worker = subprocess.Popen([sys.executable, "-c", holder, str(traces / "x.trace.json.gz"), str(ready)])
    try:
        while not ready.exists() or not ready.read_text():
            if worker.poll() is not None:
                raise AssertionError(f"scratch holder exited with {worker.returncode}")
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    with scratch_dir(traces / "y.trace.json.gz") as mine:
        remove_scratch(traces, worker.pid)
        assert not Path(ready.read_text()).exists()
        assert Path(mine).exists()
