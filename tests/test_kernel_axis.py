"""Several attention kernels as an axis of one run (`--kernel flashmla,triton,reference`): the
spelling, refusals before anything is written, the plan (each case once per kernel, a group's
kernels in one worker item), records keyed by kernel so that no comparison or check mixes two
kernels, and `compare --kernels` pairing them.

A CPU has only the reference kernel, so the records of a kernel axis are made here from a real
CPU run, relabelled as each kernel's (their digests and samples set apart as another kernel's
would be), and read back through the real loaders, checks and compare. The run itself is
specified end to end on a GPU (skipped here)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from dsabench.bench.kernels.select import axis, parse
from dsabench.errors import InputError
from dsabench.store.frames import load_runs
from dsabench.store.rundir import finished_keys, read_records

from cli_process import dsabench
from test_kernel_option import cuda_here, one_error_line

SMALL = r"decode\.b1\.c256\..*(tensor-contiguous|scalar-view)\.eager"
KERNELS = ("flashmla", "triton", "reference")
SLOWER = {"flashmla": 1.0, "triton": 1.9, "reference": 9.0}  # each relabelled kernel's samples: x the CPU run's


# ---------------------------------------------------------------------------- spelling


@pytest.mark.parametrize("text", ["reference", "triton", "flashmla", "auto"])
def test_one_kernel_is_not_an_axis(text):
    assert parse(text) == text and axis(text) == ()


def test_two_or_more_named_kernels_are_an_axis_in_the_order_asked():
    assert parse("flashmla, triton,reference") == "flashmla,triton,reference"
    assert axis("flashmla,triton,reference") == ("flashmla", "triton", "reference")
    assert axis("triton,reference") == ("triton", "reference")


@pytest.mark.parametrize("text,words", [
    ("triton,triton", ["names a kernel twice"]),
    ("auto,triton", ["'auto' is not a kernel", "two or more of reference, triton, gluon, flashmla"]),
    ("flashmla,cutlass", ["'cutlass' is not a kernel"]),
    ("cutlass", ["expected one of reference, triton, gluon, flashmla or auto"]),
    ("triton,", ["'' is not a kernel"]),
])
def test_a_bad_kernel_list_says_what_is_wrong_and_what_is_allowed(text, words):
    with pytest.raises(ValueError) as err:
        parse(text)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_the_run_flag_refuses_a_bad_list_in_one_line_exit_2(tmp_path):
    line = one_error_line(dsabench("run", "smoke", "--kernel", "triton,triton", "--out", tmp_path / "o"))
    assert "--kernel 'triton,triton'" in line and "twice" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(cuda_here(), reason="refusal of a fused kernel is for a machine without CUDA")
def test_an_axis_holding_a_kernel_the_machine_cannot_run_is_refused_naming_that_kernel(tmp_path):
    line = one_error_line(dsabench("run", "smoke", "--backend", "torch", "--kernel", "reference,triton", "--out",
                                   tmp_path / "o"))
    assert "--kernel 'reference,triton': kernel 'triton': not usable with --backend torch" in line
    assert not (tmp_path / "o").exists()


def _toml(tmp_path, kernel: str) -> Path:
    f = tmp_path / "s.toml"
    f.write_text(f'[preset]\nkernel = {kernel}\n[[scenario]]\nname = "a"\nphase = "decode"\n')
    return f


def test_a_scenario_files_kernel_list_is_the_runs_kernel_axis_and_leaves_case_ids_alone(tmp_path):
    from dsabench.workload.scenarios import load

    loaded = load(_toml(tmp_path, '["flashmla", "triton", "reference"]'))
    assert loaded.kernel == "flashmla,triton,reference"
    assert all("triton" not in c.id for c in loaded.cases)


@pytest.mark.parametrize("value", ['["triton"]', '["auto", "triton"]', '["triton", "triton"]', '["triton", 3]'])
def test_a_scenario_kernel_list_of_fewer_than_two_distinct_named_kernels_is_refused(tmp_path, value):
    from dsabench.workload.scenarios import load

    with pytest.raises(InputError, match="key 'kernel' is .*or a list of two or more distinct kernels"):
        load(_toml(tmp_path, value))


def test_the_kernel_presets_ask_for_the_three_kernels():
    from dsabench.workload.scenarios import load_named

    for name in ("kernels", "kernel-check"):
        assert axis(load_named(name).kernel) == KERNELS


# ---------------------------------------------------------------------------- plan


def test_each_case_is_planned_once_per_kernel_and_a_groups_kernels_share_one_worker_item():
    from dsabench.bench.impls.plan import MIRROR_RUN, plan
    from dsabench.bench.schedule import _keys, work_items
    from dsabench.workload.scenarios import load_named

    cases = load_named("kernels").cases
    planned = plan(cases, (MIRROR_RUN,), KERNELS)
    assert len(planned) == 3 * len(cases)
    assert [k for _, _, k in planned[:3]] == list(KERNELS) and len({c for c, _, _ in planned[:3]}) == 1
    items = work_items(planned)
    eager = [i for i in items if not i[0][0].graph]
    assert all(sorted(k for *_, k in i) == sorted(KERNELS) for i in eager)  # timed together, interleaved
    assert all(len(i) == 1 for i in items if i[0][0].graph)  # a graph case with each kernel alone
    keys = [k for i in items for k in _keys(i)]
    assert len(keys) == len(set(keys)) == len(planned)


def test_a_run_of_one_kernel_plans_no_kernel_so_its_records_keep_their_keys():
    from dsabench.bench.impls.plan import MIRROR_RUN, plan
    from dsabench.store.schema import record_key
    from dsabench.workload.scenarios import load_named

    planned = plan(load_named("smoke").cases, (MIRROR_RUN,))
    assert {k for *_, k in planned} == {""}
    c = planned[0][0]
    assert record_key(c.id, "mirror", "") == c.id and record_key(c.id, "mirror", "triton") == f"{c.id}#triton"


# ---------------------------------------------------------------------------- the worker, on the CPU


def test_the_worker_records_the_kernel_of_each_backend_and_marks_records_of_an_axis(tmp_path):
    """run_group with (impl, kernel) backends: here one real CPU backend under the reference
    kernel, so the record must say reference, carry the axis mark and trace to its own file."""
    from dsabench.bench.backends.registry import get_backend
    from dsabench.bench.worker import WorkerOptions, run_group
    from dsabench.workload.scenarios import load_named

    cases = [c for c in load_named("smoke").cases if c.id.startswith("decode.b1.c256.") and not c.graph][:2]
    opts = WorkerOptions(run_id="x", run_dir=str(tmp_path), protocol=None, profile_iters=1).for_device(False)
    backend = get_backend("torch", "cpu")
    records = [r.to_json() for r in run_group({("mirror", "reference"): backend}, cases, opts, None,
                                              ["reference", "reference"])]
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert all(r["kernel"] == "reference" and r["kernel_axis"] for r in records)
    assert all(r["trace"]["file"].endswith(".reference.torch.trace.json.gz") for r in records)
    plain = run_group(backend, cases[:1], opts)[0].to_json()
    assert plain["kernel_axis"] is False and plain["trace"]["file"].endswith(".eager.torch.trace.json.gz")


# ---------------------------------------------------------------------------- records of an axis


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("axis_runs")
    r = dsabench("run", "smoke", "--filter", SMALL, "--out", out, "--run-id", "one", "--max-time-s", "0.05",
                 "--profile-iters", "0", "--check", "--repeats", "2")
    assert r.returncode == 0, r.stderr
    return out / "one"


def as_axis(src: Path, dst: Path, gpu: bool = False) -> Path:
    """The CPU run as if made with --kernel flashmla,triton,reference: each record three times, one
    per kernel, the fused kernels' outputs differing from the reference's (as their rounding
    does) and their samples scaled by SLOWER. `gpu`: with ceilings and device time per phase as
    a GPU worker records them (decode 0.1 ms x SLOWER, write cache 0.01 ms)."""
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    m["run_id"], m["options"]["kernel"] = dst.name, ",".join(KERNELS)
    if gpu:
        m["workers"][0]["ceilings"] = {"copy_gbs": 4000.0, "matmul_tflops": 800.0, "copy_bytes": 2**31,
                                       "matmul_n": 8192, "via": "torch"}
    (dst / "manifest.json").write_text(json.dumps(m))
    out = []
    for line in (src / "cases.jsonl").read_text().splitlines():
        for kernel in KERNELS:
            r = dict(json.loads(line), run_id=dst.name, kernel=kernel, kernel_axis=True)
            r["output"] = dict(r["output"], digest=f"{kernel[0] * 4}{r['output']['digest'][4:]}")
            r["timing"] = dict(r["timing"], samples_ms=[s * SLOWER[kernel] for s in r["timing"]["samples_ms"]])
            r["timing"]["chunks"] = []  # rebuilt from the samples (their host evidence is the CPU run's)
            if gpu:
                r["trace"] = {"iterations": 1, "phase_kernel_ms": {"decode": 0.1 * SLOWER[kernel], "write_cache": 0.01}}
            out.append(json.dumps(r) + "\n")
    (dst / "cases.jsonl").write_text("".join(out))
    return dst


def test_records_of_each_kernel_are_kept_apart_by_the_loader_and_resume(cpu_run, tmp_path):
    run = as_axis(cpu_run, tmp_path / "ax")
    frame = load_runs([run])
    assert not frame.warnings  # no "appears twice": the kernel is part of the key
    assert len(frame.df) == 2 * 3 and set(frame.df["kernel"]) == set(KERNELS)
    assert frame.df["kernel_axis"].all() and (frame.df["repeats"] == 2).all()
    assert len(finished_keys(run)) == 2 * 3 * 2  # (case, kernel) x repeat: resume skips each


def test_the_check_compares_bytes_within_a_kernel_and_the_oracle_per_kernel(cpu_run, tmp_path):
    from dsabench.analysis.checks import check_outputs
    from dsabench.present.summary import format_check

    records, _ = read_records(as_axis(cpu_run, tmp_path / "ax"))
    result = check_outputs(records)
    assert result.ok and result.configs_checked == 3 and result.cases_compared == 12
    assert [k for k, _, n in result.oracle_by_kernel] == list(KERNELS)
    assert all(n == 4 for _, _, n in result.oracle_by_kernel)
    text = format_check(result, records)
    assert "kernel triton: worst" in text and "MISMATCH" not in text
    bad = [dict(r, output=dict(r["output"], digest="f" * 64)) if r["kernel"] == "triton" and r["repeat"] == 1 else r
           for r in records]
    mismatch = check_outputs(bad).mismatches
    assert len(mismatch) == 1 and "[triton]" in mismatch[0]  # within triton's records, named


def test_compare_kernels_pairs_each_case_of_two_kernels_and_calls_the_scaled_one_slower(cpu_run, tmp_path):
    run = as_axis(cpu_run, tmp_path / "ax")
    r = dsabench("compare", "--kernels", run)
    assert r.returncode == 0, r.stderr
    assert "kernel flashmla" in r.stdout and "kernel triton" in r.stdout
    from dsabench.analysis.compare_kernels import compare_kernels

    comp = compare_kernels(load_runs([run]))
    assert comp.mode == "kernels" and len(comp.table) == 2
    assert set(comp.table["verdict"]) == {"slower"}
    assert comp.table["ratio"].tolist() == pytest.approx([1.9, 1.9], rel=1e-6)
    ref = compare_kernels(load_runs([run]), "reference", "flashmla")
    assert ref.table["ratio"].tolist() == pytest.approx([1 / 9, 1 / 9], rel=1e-6)


@pytest.mark.parametrize("threshold", [1.5, -0.1, "loose"])
def test_compare_kernels_and_impls_refuse_a_threshold_outside_0_1_before_judging_as_variants_do(
        cpu_run, tmp_path, threshold):
    from dsabench.analysis.compare import compare_variants
    from dsabench.analysis.compare_impls import compare_impls
    from dsabench.analysis.compare_kernels import compare_kernels

    frame = load_runs([as_axis(cpu_run, tmp_path / "ax")])
    for compare in (compare_kernels, compare_impls, compare_variants):  # impls: refused before the run's impls
        with pytest.raises(ValueError, match=rf"^compare: threshold is {threshold!r}; expected a fraction in \[0, 1\)"):
            compare(frame, threshold=threshold)


def test_compare_variants_and_run_vs_run_pair_within_a_kernel(cpu_run, tmp_path):
    from dsabench.analysis.compare import compare_runs, compare_variants

    frame = load_runs([as_axis(cpu_run, tmp_path / "ax")])
    variants = compare_variants(frame)
    ratios = variants.table["ratio"].tolist()
    assert len(ratios) == 3 and ratios == pytest.approx([ratios[0]] * 3, rel=1e-9)  # one pair per kernel, same ratio
    assert all(c.endswith(("#flashmla", "#triton", "#reference")) for c in variants.table["case"])
    again = load_runs([as_axis(cpu_run, tmp_path / "ax2")])
    runs = compare_runs(frame, again)
    assert len(runs.table) == 6 and runs.table["ratio"].tolist() == pytest.approx([1.0] * 6)  # never kernel vs kernel


def test_compare_kernels_refuses_a_run_of_one_kernel_and_names_unknown_kernels(cpu_run, tmp_path):
    line = one_error_line(dsabench("compare", "--kernels", cpu_run))
    assert "measured no kernel(s) side by side" in line and "--kernel A,B" in line
    run = as_axis(cpu_run, tmp_path / "ax")
    line = one_error_line(dsabench("compare", "--kernels", run, "--base-kernel", "cutlass"))
    assert "--base-kernel 'cutlass'" in line and "flashmla, triton, reference" in line
    line = one_error_line(dsabench("compare", "--variants", "--kernels", run))
    assert "give one of them" in line


def test_the_end_of_run_table_has_a_row_per_kernel(cpu_run, tmp_path):
    from dsabench.present.summary import summary_table
    from dsabench.store.repeats import merge_repeats

    records, _ = read_records(as_axis(cpu_run, tmp_path / "ax"))
    table = summary_table(merge_repeats(records), width=None)
    assert all(f"[{k}]" in table for k in KERNELS)


def test_the_report_puts_the_kernels_side_by_side_and_every_other_kernel_against_flashmla(cpu_run, tmp_path):
    from dsabench.present.report import build_report, load_run_set

    text = build_report(load_run_set([as_axis(cpu_run, tmp_path / "ax", gpu=True)]), tmp_path / "ev").path.read_text()
    side = text.split("## Kernels side by side")[1].split("\n## ")[0]
    row = next(ln for ln in side.splitlines() if "scalar-view.eager" in ln)
    assert "1.90x" in row and "9.00x" in row and row.count("slower") == 2
    first, *cells = [c.strip() for c in row.strip("|").split("|")][1:]
    for cell in cells:  # a cell's ms over the first kernel's is its ratio (both are gate.levels)
        ms, ratio = re.match(r"([0-9.]+) ms, ([0-9.]+)x", cell).groups()
        assert float(ms) / float(first) == pytest.approx(float(ratio), abs=0.006)
    roof = text.split("## Roofline")[1].split("\n## ")[0]
    tables = roof.split("attention):")
    assert len(tables) == 1 + 2 * 3  # baseline and patched, each with three kernels
    for kernel, times in (("triton", "1.90x"), ("reference", "9.00x")):
        t = next(t for head, t in zip(tables, tables[1:]) if head.rstrip().endswith(f"{kernel}"))
        assert "| FlashMLA ms | x FlashMLA |" in t
        decode = next(ln for ln in t.splitlines() if ln.startswith("| decode |"))
        assert decode.rstrip(" |").endswith(times) and "| 0.1000 |" in decode
    flashmla = next(t for head, t in zip(tables, tables[1:]) if head.rstrip().endswith("flashmla"))
    assert "FlashMLA ms" not in flashmla


# ---------------------------------------------------------------------------- GPU only


@pytest.mark.skipif(not cuda_here() or importlib.util.find_spec("triton") is None, reason="needs CUDA and Triton")
def test_triton_and_the_reference_ops_side_by_side_in_one_run(tmp_path):
    r = dsabench("run", "smoke", "--backend", "torch", "--kernel", "triton,reference", "--check", "--filter",
                 r"decode\.b1\.c256\.", "--out", tmp_path, "--run-id", "ax", "--max-time-s", "0.2", timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    records, _ = read_records(tmp_path / "ax")
    assert {(x["kernel"], x["kernel_axis"]) for x in records} == {("triton", True), ("reference", True)}
    manifest = json.loads((tmp_path / "ax" / "manifest.json").read_text())
    assert manifest["options"]["kernel"] == "triton,reference" and manifest["workers"][0]["kernel"] == "triton,reference"
    c = dsabench("compare", "--kernels", tmp_path / "ax")
    assert c.returncode == 0 and "kernel triton" in c.stdout and "kernel reference" in c.stdout, c.stderr
