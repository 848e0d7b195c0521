"""The attention kernel as a run option: flag and scenario key, refusal before anything is
written, the kernel in every record, the manifest and the frame, compare refusing runs made with
different kernels, and the roofline section of the evidence. Real Paddle and torch on the CPU;
the Triton path end to end only where CUDA and Triton are (skipped here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dsabench.errors import InputError
from dsabench.store.frames import load_runs
from dsabench.store.rundir import read_records

from cli_process import REPO, dsabench

SMALL = r"decode\.b1\.c256\..*(tensor-contiguous|scalar-view)\.eager"
H100_SMOKE = REPO / "results" / "h100-2026-11-25" / "smoke-torch-h100"


def one_error_line(r) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    return lines[0]


def cuda_here() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


# ---------------------------------------------------------------------------- refusals


def test_an_unknown_kernel_name_is_one_line_exit_2(tmp_path):
    line = one_error_line(dsabench("run", "smoke", "--kernel", "cutlass", "--out", tmp_path / "o"))
    assert "--kernel" in line and "cutlass" in line and "triton" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(cuda_here(), reason="refusal of a fused kernel is for a machine without CUDA")
@pytest.mark.parametrize("backend,kernel", [("torch", "triton"), ("torch", "gluon"), ("paddle", "triton"),
                                            ("paddle", "gluon"), ("paddle", "flashmla")])
def test_a_fused_kernel_on_a_machine_without_cuda_is_refused_before_anything_is_written(tmp_path, backend, kernel):
    line = one_error_line(dsabench("run", "smoke", "--backend", backend, "--kernel", kernel, "--out", tmp_path / "o"))
    assert line.startswith("dsabench: error: --kernel") and repr(kernel) in line and "expected one of auto, reference" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(cuda_here(), reason="refusal of a fused kernel is for a machine without CUDA")
def test_a_scenario_files_fused_kernel_is_refused_naming_the_file_and_key(tmp_path):
    f = tmp_path / "k.toml"
    f.write_text('[preset]\nkernel = "triton"\n[[scenario]]\nname = "a"\nphase = "decode"\n')
    line = one_error_line(dsabench("run", f, "--backend", "torch", "--out", tmp_path / "o"))
    assert "k.toml: key 'kernel' 'triton': not usable with --backend torch" in line
    assert "CUDA" in line or "triton is not installed" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(cuda_here(), reason="a worker on a CPU cannot run the fused kernel")
def test_a_worker_that_cannot_run_the_kernel_does_not_start(tmp_path):
    """The workers resolve the kernel again on their own device: asked past the CLI's check, a
    fused kernel on a CPU worker stops the run with nothing measured."""
    from dsabench.bench import runner
    from dsabench.bench.worker import WorkerOptions
    from dsabench.workload.scenarios import load_named

    case = next(c for c in load_named("smoke").cases if not c.graph)
    opts = WorkerOptions(run_id="x", run_dir=str(tmp_path), protocol=None, kernel="triton")
    with pytest.raises(runner.WorkersFailed, match="kernel 'triton' is not usable here: the Triton kernels need a CUDA"):
        runner.run_cases((case,), tmp_path, "torch", (None,), opts, lambda *a: None)
    assert not (tmp_path / "cases.jsonl").exists()


@pytest.mark.skipif(cuda_here(), reason="a CPU backend cannot take a fused kernel")
def test_a_backend_on_a_cpu_refuses_a_fused_kernel_and_keeps_the_reference_attention():
    pytest.importorskip("torch")
    from dsabench.bench.backends.registry import get_backend
    from dsabench.errors import Unsupported

    backend = get_backend("torch", "cpu")
    with pytest.raises(Unsupported, match="kernel 'triton' needs a CUDA device"):
        backend.use_kernel("triton")
    backend.use_kernel("reference")
    assert backend.kernel == "reference"


# ---------------------------------------------------------------------------- scenario key


def _toml(tmp_path, head: str) -> Path:
    f = tmp_path / "s.toml"
    f.write_text(head + '\n[[scenario]]\nname = "a"\nphase = "decode"\nvariant = ["baseline", "patched"]\n')
    return f


@pytest.mark.parametrize("head,kernel", [("", None), ('[preset]\nkernel = "reference"', "reference"),
                                         ('[defaults]\nkernel = "triton"\nbatch = 2', "triton"),
                                         ('[preset]\nkernel = "auto"', "auto")])
def test_the_scenario_kernel_key_is_read_from_preset_or_defaults_and_leaves_case_ids_alone(tmp_path, head, kernel):
    from dsabench.workload.scenarios import load

    loaded = load(_toml(tmp_path, head))
    assert loaded.kernel == kernel
    (tmp_path / "plain").mkdir()
    plain = load(_toml(tmp_path / "plain", "[defaults]\nbatch = 2" if "batch" in head else ""))
    assert [c.id for c in loaded.cases] == [c.id for c in plain.cases]
    assert all("triton" not in c.id and "reference" not in c.id for c in loaded.cases)


@pytest.mark.parametrize("head,words", [
    ('[preset]\nkernel = "cuda"', ["[preset]", "key 'kernel'", "'cuda'", "auto, reference, triton, gluon, flashmla"]),
    ('[defaults]\nkernel = 3', ["[defaults]", "key 'kernel'", "3"]),
    ('[preset]\nkernel = "triton"\n[defaults]\nkernel = "reference"', ["both [preset]", "[defaults]"]),
])
def test_a_bad_scenario_kernel_key_is_one_input_error_naming_file_table_and_value(tmp_path, head, words):
    from dsabench.workload.scenarios import load

    with pytest.raises(InputError) as err:
        load(_toml(tmp_path, head))
    assert "s.toml" in str(err.value) and all(w in str(err.value) for w in words)


def test_the_flag_overrides_the_file_which_overrides_auto():
    from dsabench.cli.kernel_choice import asked_kernel

    assert asked_kernel("reference", "triton", "f.toml") == ("reference", "--kernel")
    assert asked_kernel(None, "triton", "f.toml") == ("triton", "f.toml: key 'kernel'")
    assert asked_kernel(None, None, "f.toml") == ("auto", "default")


def test_auto_takes_the_reference_path_on_a_cpu_and_for_paddle_without_flashmla():
    from dsabench.bench.kernels.select import available, resolve

    assert resolve("auto", "torch", False) == resolve(None, "paddle", False) == "reference"
    assert available("paddle", True)["triton"].startswith("the Triton kernels take torch tensors")
    with pytest.raises(ValueError, match="not usable here"):
        resolve("flashmla", "torch", False)


# ---------------------------------------------------------------------------- a real CPU run


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("kernel_runs")
    r = dsabench("run", "smoke", "--filter", SMALL, "--out", out, "--run-id", "ref", "--max-time-s", "0.05",
                 "--profile-iters", "2", "--check")
    assert r.returncode == 0, r.stderr
    return out / "ref", r.stdout


def test_every_record_the_manifest_and_the_frame_say_which_kernel_ran(cpu_run):
    run, stdout = cpu_run
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["options"]["kernel"] == "auto"  # asked
    assert [w["kernel"] for w in manifest["workers"]] == ["reference"]  # what the CPU worker resolved
    assert manifest["workers"][0]["ceilings"] is None  # a CPU worker measures no ceilings
    records, _ = read_records(run)
    assert len(records) == 2 and {r["kernel"] for r in records} == {"reference"}
    assert set(load_runs([run]).df["kernel"]) == {"reference"}
    assert "attention kernel: reference" in stdout


def test_records_from_before_the_option_load_as_the_reference_kernel(cpu_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(cpu_run[0], old)
    lines = [json.loads(ln) for ln in (old / "cases.jsonl").read_text().splitlines()]
    (old / "cases.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "kernel"}) + "\n"
                                             for r in lines))
    assert set(load_runs([old]).df["kernel"]) == {"reference"}


def _as_other_kernel(src: Path, dst: Path, kernel: str) -> Path:
    """The same run, as if made with another kernel (a fused one cannot run on this CPU)."""
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    m["run_id"] = dst.name
    (dst / "manifest.json").write_text(json.dumps(m))
    recs = [dict(json.loads(ln), run_id=dst.name, kernel=kernel) for ln in (dst / "cases.jsonl").read_text().splitlines()]
    (dst / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return dst


def test_compare_refuses_runs_made_with_different_kernels_in_one_line(cpu_run, tmp_path):
    other = _as_other_kernel(cpu_run[0], tmp_path / "tri", "triton")
    line = one_error_line(dsabench("compare", cpu_run[0], other))
    assert "attention kernel differs" in line and "'reference'" in line and "'triton'" in line
    assert "--allow-mismatch" in line


def test_compare_with_allow_mismatch_names_both_kernels_in_its_header(cpu_run, tmp_path):
    other = _as_other_kernel(cpu_run[0], tmp_path / "tri", "triton")
    r = dsabench("compare", cpu_run[0], other, "--allow-mismatch")
    assert r.returncode in (0, 1), r.stderr
    assert "attention kernel reference + triton" in r.stdout
    assert "warning: attention kernel differs" in r.stdout


def test_compare_of_runs_with_the_same_kernel_shows_it(cpu_run, tmp_path):
    same = _as_other_kernel(cpu_run[0], tmp_path / "again", "reference")
    r = dsabench("compare", cpu_run[0], same)
    assert r.returncode in (0, 1), r.stderr
    assert "attention kernel reference," in r.stdout and "differs" not in r.stdout


def test_the_report_of_a_cpu_run_names_the_kernel_and_says_it_has_no_roofline(cpu_run, tmp_path):
    r = dsabench("report", cpu_run[0], "--out", tmp_path / "ev")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "ev" / "evidence.md").read_text()
    assert "reference attention kernel" in text
    assert "| **attention kernel** | reference (asked: auto) |" in text
    assert "| **device ceilings** | not measured (CPU worker) |" in text
    assert "## Roofline: each phase against this device's ceilings" in text
    assert "No roofline table: this run measured no device ceilings" in text
    assert "saved µs per layer per step" in text and "saved µs over 61 layers" in text


def test_the_roofline_table_is_built_from_the_ceilings_the_worker_recorded(cpu_run, tmp_path):
    """Ceilings as a GPU worker records them, and device phase times as a GPU trace gives them
    (the committed H100 run's): the section shows the rates and fractions they imply."""
    run = tmp_path / "gpuish"
    shutil.copytree(cpu_run[0], run)
    m = json.loads((run / "manifest.json").read_text())
    m["workers"][0]["ceilings"] = {"copy_gbs": 4000.0, "matmul_tflops": 800.0, "copy_bytes": 2**31, "matmul_n": 8192,
                                   "via": "torch"}
    (run / "manifest.json").write_text(json.dumps(m))
    gpu = [json.loads(ln) for ln in (H100_SMOKE / "cases.jsonl").read_text().splitlines()]
    decode_ms = next(r["trace"]["phase_kernel_ms"]["decode"] for r in gpu if r["case_id"].startswith(
        "decode.b1.c256.p0.n64.bs64.ch1.h16.k64.s0.hot.tensor-contiguous.eager"))
    recs = [json.loads(ln) for ln in (run / "cases.jsonl").read_text().splitlines()]
    for r in recs:
        r["trace"]["phase_kernel_ms"] = {"decode": decode_ms, "write_cache": 0.04}
    (run / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    from dsabench.present.report import build_report, load_run_set

    text = build_report(load_run_set([run]), tmp_path / "ev").path.read_text()
    assert "device-to-device copy 4000 GB/s" in text and "bf16 matmul 800 TFLOP/s" in text
    assert "`kernel_ms_<phase>`" in text  # the section names its source
    flops = 2 * 1 * 16 * 64 * (576 + 512)  # b1, h16, topk 64 (the context of 256 covers it)
    section = text.split("## Roofline")[1].split("\n## ")[0]
    assert section.count("| phase | device ms |") == 2  # baseline and patched of the one config
    row = next(ln for ln in section.splitlines() if ln.startswith("| decode |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[1]) == pytest.approx(decode_ms, abs=1e-4)
    assert float(cells[4]) == pytest.approx(flops / (decode_ms * 1e-3) / 1e12, rel=0.05, abs=0.06)
    assert float(cells[6].rstrip("%")) == pytest.approx(float(cells[4]) / 800 * 100, rel=0.01)


def test_roofline_rows_put_a_record_against_given_ceilings():
    from dsabench.present.evidence_roofline import roofline_rows

    row = {"phase": "decode", "batch": 64, "context_len": 4096, "prefill_len": 0, "heads": 128, "topk": 2048,
           "kernel_ms_decode": 0.25, "kernel_ms_layout": 0.0, "kernel_ms_scale": float("nan"), "layout_copied_bytes": 0}
    (decode,) = [r for r in roofline_rows(row, {"copy_gbs": 4300.0, "matmul_tflops": 790.0}) if r[0] == "decode"]
    flops = 2 * 64 * 128 * 2048 * (576 + 512)
    assert float(decode[4]) == pytest.approx(flops / 0.25e-3 / 1e12, rel=5e-3)  # 146 TFLOP/s
    assert decode[6] == f"{flops / 0.25e-3 / 790e12 * 100:.3g}%"
    floor_us = max(flops / 790e12, (64 * 2048 * 656 + 64 * 128 * 1088 * 2) / 4300e9) * 1e6
    assert float(decode[8]) == pytest.approx(floor_us, rel=5e-3)
    assert decode[9] == f"{250 / floor_us:.3g}x"  # about 5x the floor
    assert len(roofline_rows(row, {"copy_gbs": 4300.0, "matmul_tflops": 790.0})) == 1  # no time: no row


# ---------------------------------------------------------------------------- GPU only


@pytest.mark.skipif(not cuda_here(), reason="the Triton kernels need a CUDA device")
def test_the_triton_kernel_runs_end_to_end_bit_identical_across_variants_and_eager_vs_graph(tmp_path):
    pytest.importorskip("triton")
    r = dsabench("run", "smoke", "--backend", "torch", "--kernel", "triton", "--check", "--filter",
                 r"decode\.b1\.c256\.|decode\.b3\.c37\.", "--out", tmp_path, "--run-id", "tri", "--max-time-s", "0.2",
                 timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "all identical" in r.stdout and "over the bound" not in r.stdout
    records, _ = read_records(tmp_path / "tri")
    assert {x["kernel"] for x in records} == {"triton"}
    graph = [x for x in records if x["params"]["graph"] and x["status"] == "ok"]
    assert graph and all(x["output"]["digest"] == x["output"]["eager_digest"] for x in graph)
    manifest = json.loads((tmp_path / "tri" / "manifest.json").read_text())
    assert manifest["workers"][0]["kernel"] == "triton" and manifest["workers"][0]["ceilings"]["copy_gbs"] > 0
    rep = dsabench("report", tmp_path / "tri", "--out", tmp_path / "ev")
    assert rep.returncode == 0, rep.stderr
    assert "| decode |" in (tmp_path / "ev" / "evidence.md").read_text()


def test_every_kernel_the_runner_knows_is_a_choice_of_the_scenario_file_and_of_the_verbs():
    from dsabench.bench.kernels.select import KERNELS
    from dsabench.workload.scenario_file import KERNEL_CHOICES

    assert KERNEL_CHOICES == ("auto", *KERNELS)
    for verb in ("calibrate", "bisect"):
        help_text = dsabench(verb, "--help").stdout
        assert all(k in help_text for k in KERNELS), verb
