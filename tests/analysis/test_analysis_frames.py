import json
import math
import sys

import pytest

from dsabench.errors import InputError
from dsabench.store.frames import COLUMNS, expand_run_paths, export_parquet, load_frame, load_runs
from dsabench.store.schema import SCHEMA_VERSION
from dsabench.workload.variants import PATCHED


def test_load_frame_joins_shards_of_one_run_into_one_run_id(builder):
    a, b = builder.case(batch=1), builder.case(batch=2)
    s1 = builder.run("r1-shard1", [builder.record(a, "r1", builder.samples(1))], run_id="r1", shard="1/2")
    s2 = builder.run("r1-shard2", [builder.record(b, "r1", builder.samples(2))], run_id="r1", shard="2/2")
    frame = load_frame([s1, s2])
    assert list(frame.manifests) == ["r1"]
    assert frame.run_dirs["r1"] == (s1, s2)
    assert sorted(frame.df["case_id"]) == sorted([a.id, b.id])
    assert set(frame.df["run_id"]) == {"r1"}
    assert sorted(frame.df["shard"]) == ["1/2", "2/2"]


def test_load_frame_keeps_the_first_record_of_a_case_that_two_shards_both_ran_and_says_so(builder):
    a = builder.case()
    s1 = builder.run("s1", [builder.record(a, "r1", builder.samples(1, median_ms=1.0))], run_id="r1", shard="1/2")
    s2 = builder.run("s2", [builder.record(a, "r1", builder.samples(2, median_ms=5.0))], run_id="r1", shard="2/2")
    frame = load_frame([s1, s2])
    assert len(frame.df) == 1 and frame.df.iloc[0]["shard"] == "1/2" and frame.df.iloc[0]["median_ms"] < 2
    assert any(f"case '{a.id}' appears twice: in {s1} (record 1) and in {s2} (record 1); kept the one in {s1}" in w
               for w in frame.warnings)  # fmt: skip


def test_load_frame_loads_the_same_directory_given_twice_once(builder):
    s = builder.run("r", [builder.record(builder.case(), "r", builder.samples(1))])
    assert len(load_frame([s, s]).df) == 1


def test_load_frame_flattens_params_timing_trace_and_memory_into_columns(builder):
    case = builder.case(batch=4, variant=PATCHED, graph=False)
    trace = {
        "iterations": 10, "kernel_ms": 0.5, "kernel_count": 12,
        "phase_kernel_ms": {"decode": 0.3, "layout": 0.0}, "phase_host_ms": {"scale": 0.01},
        "memcpy": {"HtoD": {"count": 0, "bytes": 0, "ms": 0.0}, "DtoD": {"count": 1, "bytes": 4096, "ms": 0.01}},
        "memset": {"count": 2, "bytes": 64, "ms": 0.001}, "sync_calls": 0,
        "layout_copy": {"kernel_count": 0, "kernel_ms": 0.0, "bytes": 0},
    }  # fmt: skip
    memory = {"peak_bytes_above_inputs": 1024, "layout_alloc_bytes": 0, "inputs_bytes": 10**9}
    samples = [1.0, 2.0, 3.0, 4.0, 100.0]
    path = builder.run("r", [builder.record(case, "r", samples, trace=trace, memory=memory)], commit="c" * 40)
    row = load_frame([path]).df.iloc[0]
    assert (row["batch"], row["variant"], row["scale_mode"], row["layout_mode"], row["graph"]) == (4, "patched", "scalar", "view", False)
    assert (row["case_id"], row["group_id"], row["config_id"]) == (case.id, case.group_id, case.config_id)
    assert list(row["samples_ms"]) == samples and row["median_ms"] == 3.0 and row["n_samples"] == 5
    assert row["device_name"] == builder.H100 and row["backend"] == "paddle" and row["commit"] == "c" * 40
    assert row["htod_count"] == 0 and row["dtod_bytes"] == 4096 and row["memset_count"] == 2
    assert row["layout_copy_bytes"] == 0 and row["peak_bytes"] == 1024 and row["sync_calls"] == 0
    assert row["kernel_ms_decode"] == 0.3 and row["host_ms_scale"] == 0.01
    assert math.isnan(row["dtoh_count"])  # no DtoH entry in the trace: NaN, not 0


def test_load_frame_takes_the_suite_sha_when_no_checkout_was_measured(builder):
    path = builder.run("r", [builder.record(builder.case(), "r", builder.samples(1))], commit=None)
    assert load_frame([path]).df.iloc[0]["commit"] == "b" * 40


def test_load_frame_keeps_failed_cases_with_their_status_and_no_samples(builder):
    path = builder.run("r", [builder.record(builder.case(), "r", None, status="oom", message="out of memory")])
    row = load_frame([path]).df.iloc[0]
    assert row["status"] == "oom" and row["message"] == "out of memory"
    assert list(row["samples_ms"]) == [] and row["n_samples"] == 0 and math.isnan(row["median_ms"])
    assert math.isnan(row["htod_count"])


def test_load_frame_skips_a_truncated_last_line_with_a_warning(builder):
    a, b = builder.case(batch=1), builder.case(batch=2)
    path = builder.run("r", [builder.record(a, "r", builder.samples(1)), builder.record(b, "r", builder.samples(2))])
    whole = json.dumps(builder.record(builder.case(batch=3), "r", builder.samples(3)))
    with open(path / "cases.jsonl", "a") as f:
        f.write(whole[: len(whole) // 2])  # the run was killed mid-write
    frame = load_frame([path])
    assert sorted(frame.df["case_id"]) == sorted([a.id, b.id])
    assert len(frame.warnings) == 1 and "cases.jsonl:3: last line is truncated" in frame.warnings[0]


def test_load_frame_refuses_a_corrupt_line_that_is_not_the_last(builder):
    path = builder.run("r", [])
    with open(path / "cases.jsonl", "w") as f:
        f.write("{not json\n" + json.dumps(builder.record(builder.case(), "r", builder.samples(1))) + "\n")
    with pytest.raises(InputError, match=r"cases.jsonl:1: not valid JSON"):
        load_frame([path])


def test_load_frame_refuses_a_newer_manifest_schema_saying_to_upgrade(builder):
    path = builder.run("r", [builder.record(builder.case(), "r", builder.samples(1))])
    written = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**written, "schema": 99}))  # as a later dsabench would
    with pytest.raises(InputError, match=rf"manifest.json: key 'schema' is 99; this dsabench reads versions up to {SCHEMA_VERSION} \(upgrade dsabench\)"):
        load_frame([path])


def test_load_frame_refuses_a_newer_record_schema_naming_file_and_line(builder):
    record = builder.record(builder.case(), "r", builder.samples(1))
    path = builder.run("r", [record])
    (path / "cases.jsonl").write_text(json.dumps({**record, "schema": SCHEMA_VERSION + 1}) + "\n")
    with pytest.raises(InputError, match=rf"cases.jsonl:1: key 'schema' is {SCHEMA_VERSION + 1}; this dsabench reads versions up to {SCHEMA_VERSION}"):
        load_frame([path])


def test_load_frame_refuses_a_record_of_another_run_id(builder):
    path = builder.run("r", [builder.record(builder.case(), "other", builder.samples(1))])
    with pytest.raises(InputError, match=r"has run_id 'other', but manifest.json says 'r'"):
        load_frame([path])


def test_load_frame_of_an_empty_run_still_has_every_column(builder):
    frame = load_frame([builder.run("r", [])])
    assert list(frame.df.columns) == list(COLUMNS) and len(frame.df) == 0
    assert "no cases recorded yet" in frame.warnings[0]


def test_load_frame_orders_runs_by_created_at(builder):
    late = builder.run("late", [builder.record(builder.case(), "late", builder.samples(1))], created_at="2025-03-01T00:00:00Z")
    early = builder.run("early", [builder.record(builder.case(), "early", builder.samples(1))], created_at="2025-02-01T00:00:00Z")
    assert list(load_frame([late, early]).df["run_id"]) == ["early", "late"]


def test_expand_run_paths_finds_runs_and_shards_below_a_results_directory(builder, tmp_path):
    a = builder.run("runs/x", [])
    b = builder.run("runs/y/shard1", [])
    assert expand_run_paths([tmp_path / "runs"]) == [a, b]
    assert expand_run_paths([a]) == [a]
    with pytest.raises(InputError, match=r"holds no run \(manifest.json neither in it nor below it\)"):
        expand_run_paths([tmp_path / "runs" / "y" / "shard1" / "traces"])
    with pytest.raises(InputError, match=r"nowhere: no such directory"):
        expand_run_paths([tmp_path / "nowhere"])


def test_export_without_pyarrow_says_to_pip_install_pyarrow(builder, tmp_path, monkeypatch):
    frame = load_runs([builder.run("r", [builder.record(builder.case(), "r", builder.samples(1))])])
    # then the export's import fails as if pyarrow were not installed (hidden before loading, pandas'
    # own string columns, which use pyarrow where it is installed, would fail first when run alone)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(InputError, match=r"out.parquet: writing Parquet needs pyarrow, which is not installed; run `pip install pyarrow`"):
        export_parquet(frame, tmp_path / "out.parquet")


def test_export_writes_parquet_that_reads_back_with_samples(builder, tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    a, b = builder.case(batch=1), builder.case(batch=2)
    path = builder.run("r", [builder.record(a, "r", builder.samples(1, n=7)), builder.record(b, "r", None, status="crashed")])
    frame = load_runs([path])
    export_parquet(frame, tmp_path / "out.parquet")
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert list(back["case_id"]) == list(frame.df["case_id"])
    assert [len(s) for s in back["samples_ms"]] == [7, 0]
