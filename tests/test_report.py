"""The PR evidence bundle (`dsabench report`) and its charts: built from the committed H100 run,
from a real CPU Paddle run made here, and from small runs written with the store; no GPU, no
timing thresholds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from dsabench.workload.cases import Case
from dsabench.cli.main import build_parser
from dsabench.store.frames import load_runs
from dsabench.store.schema import Record, Timing
from dsabench.present.report import build_report, load_run_set, md_cell
from dsabench.store.rundir import append_record, create_run_dir
import run_files
from dsabench.workload.variants import BASELINE, PATCHED

ROOT = Path(__file__).resolve().parent.parent
GPU_DAY = ROOT / "results" / "h100-2026-11-25"
GPU_SHARDS = [GPU_DAY / "pr-torch-h100-shard1of2", GPU_DAY / "pr-torch-h100-shard2of2"]
GPU_SMOKE = GPU_DAY / "smoke-torch-h100"
CHARTS = ("latency", "speedup", "copies", "phases", "memory")
CAPTURE_ERROR = "Cannot copy between CPU and CUDA tensors during CUDA graph capture unless the CPU tensor is pinned"


def cli(*argv) -> int:
    args = build_parser().parse_args([str(a) for a in argv])
    return args.func(args)


def assert_real_image(path: Path) -> None:
    """A PNG that decodes, is chart-sized, and is not blank: a good share of non-white pixels."""
    from matplotlib.image import imread

    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400, f"{path}: shape {img.shape}"
    rgb = img[..., :3].astype(float)
    rgb = rgb / 255.0 if rgb.max() > 1.0 else rgb
    inked = np.mean(rgb.min(axis=2) < 0.9)
    assert inked > 0.01, f"{path}: only {inked:.2%} of the pixels are not white"
    assert rgb.std() > 0.02, f"{path}: no contrast"


def assert_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg"), f"{path}: root element {root.tag!r}"


@pytest.fixture(scope="module")
def gpu_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "evidence"
    assert cli("report", *GPU_SHARDS, "--out", out) == 0
    return out


# ------------------------------------------------------------------ the committed H100 run


def test_report_of_the_committed_gpu_run_writes_evidence_and_every_chart_as_png_and_svg(gpu_report):
    assert (gpu_report / "evidence.md").is_file()
    for name in CHARTS:
        assert_real_image(gpu_report / f"{name}.png")
        assert_svg(gpu_report / f"{name}.svg")


def test_evidence_links_only_files_that_exist(gpu_report):
    text = (gpu_report / "evidence.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert {f"{n}.png" for n in CHARTS} | {f"{n}.svg" for n in CHARTS} <= set(links)
    for link in links:
        assert (gpu_report / link).is_file(), link


def test_evidence_carries_the_capture_error_text_per_variant(gpu_report):
    text = (gpu_report / "evidence.md").read_text()
    section = text.split("## CUDA Graph capture per variant")[1].split("\n## ")[0]
    assert CAPTURE_ERROR in section
    assert re.search(r"\| baseline \| 4 \| 0 \| 4 capture_failed \|", section)
    assert re.search(r"\| patched \| 4 \| 4 \| - \| - \|", section)


def test_evidence_has_the_speedup_table_with_intervals_and_every_variant_against_baseline(gpu_report):
    text = (gpu_report / "evidence.md").read_text()
    assert "### dsabench compare (variants): `patched in pr-torch-h100` vs `baseline in pr-torch-h100`" in text
    assert "| verdict | change | 95% CI | p | base ms | cand ms | case | note |" in text
    assert re.search(r"\| faster \| -\d+\.\d% \| -\d+\.\d% \.\. -\d+\.\d% \|", text)
    assert "### Every variant vs baseline" in text
    assert re.search(r"\| decode b64 c4096 n65536 \| eager \| [^|]+ \| \d\.\d\dx \(\d\.\d\d-\d\.\d\d\) faster \|", text)
    assert "| decode b64 c4096 n65536 | CUDA Graph | baseline capture_failed |" in text


def test_evidence_gives_the_correctness_verdict_and_why_there_is_no_oracle_error(gpu_report):
    text = (gpu_report / "evidence.md").read_text()
    section = text.split("## Correctness")[1].split("\n## ")[0]
    assert "**bit-identical**" in section and "each of the 6 configs" in section
    assert "made with `--check`, so every case is larger than the float64 oracle's limit" in section


def test_evidence_says_what_was_run_for_both_shards_and_the_gpu_state(gpu_report):
    text = (gpu_report / "evidence.md").read_text()
    assert "--shard 1/2" in text and "--shard 2/2" in text
    assert "0f7680a0db94bfb2071dd95e95acf4d87981571ebc3cdec4524438422e61e48b" in text
    assert "torch 2.11.0+cu130" in text and "NVIDIA H100 80GB HBM3" in text
    assert "SM 345 / 1980 MHz, memory 2619 / 2619 MHz | gpu_idle |" in text
    assert "max_samples 500" in text and "precision 0.01" in text


def test_evidence_tabulates_host_to_device_copies_and_syncs_per_variant(gpu_report):
    text = (gpu_report / "evidence.md").read_text()
    assert re.search(r"\| baseline \| eager \| 6 \| 1 \| 4 B \| 0 \| 0 B \| [^|]+ \| [^|]+ \| 1 \|", text)
    assert re.search(r"\| patched \| eager \| 6 \| 0 \| 0 B \| 0 \| 0 B \| [^|]+ \| [^|]+ \| 0 \|", text)


def test_speedup_chart_says_no_copy_was_measured_when_the_trace_has_no_layout_copy(gpu_report):
    text = (gpu_report / "evidence.md").read_text()
    assert "no copy measured: the trace shows no device work launched from the layout phase" in text


# --------------------------------------------------------------- copy bandwidth and labels


def test_copy_bandwidth_is_measured_from_the_run_else_given_else_absent():
    from dsabench.present.plots import copy_bandwidth

    smoke = load_runs([GPU_SMOKE]).df
    measured = copy_bandwidth(smoke, given_gbs=1.0)
    row = smoke[smoke["layout_copy_ms"] > 0].iloc[0]
    assert measured.gbs == pytest.approx(2 * row["layout_alloc_bytes"] / (row["layout_copy_ms"] / 1e3) / 1e9)
    assert "measured in this run" in measured.source and row["case_id"] in measured.source
    pr = load_runs(GPU_SHARDS).df
    assert copy_bandwidth(pr) is None
    given = copy_bandwidth(pr, given_gbs=1234.0)
    assert given.gbs == 1234.0 and "--copy-bandwidth-gbs" in given.source


def test_config_labels_keep_what_varies_and_move_the_rest_to_the_footnote():
    from dsabench.present.plots import config_labels

    labels, note = config_labels(load_runs(GPU_SHARDS).df)
    assert labels["decode.b64.c4096.p0.n65536.bs64.ch1.h128.k2048.s0.hot"] == "decode b64 c4096 n65536"
    assert labels["prefill.b1.c0.p2048.n65536.bs64.ch1.h128.k2048.s0.hot"] == "prefill b1 p2048 n65536"
    assert note.endswith("every case: bs64 ch1 h128 k2048 s0 hot")


# ------------------------------------------------------------------------ a CPU Paddle run


def test_a_cpu_paddle_run_made_here_gets_a_report_with_host_phase_times_and_no_device_copies(tmp_path):
    pytest.importorskip("paddle")
    run = subprocess.run(
        [sys.executable, "-m", "dsabench", "run", "smoke", "--filter", "decode.b1.c256", "--max-time-s", "0.05",
         "--profile-iters", "1", "--out", str(tmp_path), "--run-id", "x"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    rep = subprocess.run([sys.executable, "-m", "dsabench", "report", str(tmp_path / "x")],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)  # fmt: skip
    assert rep.returncode == 0, rep.stderr[-2000:]
    out = tmp_path / "x" / "evidence"  # the default: RUN/evidence
    for name in CHARTS:
        assert_real_image(out / f"{name}.png")
        assert_svg(out / f"{name}.svg")
    text = (out / "evidence.md").read_text()
    assert "paddle" in text and "**bit-identical**" in text
    # Paddle on the CPU copies the cache in the contiguous layout (by data pointer), but its trace has
    # no device events: no bandwidth is measured and the copy table says the zeros are not evidence.
    assert "The traces of this run hold no device events" in text
    assert re.search(r"\| baseline \| eager \| 1 \|( [^|]+ \|){7} \d[\d.]* (KiB|MiB) \|", text)
    assert re.search(r"\| patched \| eager \| 1 \|( [^|]+ \|){7} 0 B \|", text)
    assert "no copy measured: the layout phase copies up to" in text and "the traces hold no device events" in text
    assert "host time per phase" in text
    assert "CUDA Graph: no case ran (6 unsupported)" in text


# ------------------------------------------------------------------- runs written by store


def _case(variant, graph=False, num_blocks=64) -> Case:
    return Case("t", "decode", 2, 128, 0, num_blocks, 64, 1, 16, 64, variant, graph, 0)


def _samples(seed: int, median_ms: float) -> tuple[float, ...]:
    return tuple(float(v) for v in median_ms * np.exp(np.random.default_rng(seed).normal(0, 0.01, 20)))


def _write_run(root: Path, name: str, message: str = "plain") -> Path:
    manifest = run_files.manifest(name, created_at="2026-01-01T00:00:00+00:00", preset=None, scenario_file="t.toml",
                                  suite_sha="c" * 40, gpu_run=False)  # fmt: skip
    path = create_run_dir(root / name, manifest)
    device = {"name": "x86_64", "kind": "cpu"}
    records = []
    for seed, (variant, ms) in enumerate(((BASELINE, 2.0), (PATCHED, 1.0))):
        for n in (16, 64):
            case = _case(variant, num_blocks=n)
            timing = Timing(_samples(seed * 10 + n, ms * n / 64 + 0.5), 1, 5, 10.0, "host", "min_samples")
            records.append(Record(name, case.id, case.config_id, case.group_id, case.params(), "ok", "", "paddle",
                                  device, timing, output={"digest": f"d{n}"}))  # fmt: skip
    bad = _case(BASELINE, graph=True)
    records.append(Record(name, bad.id, bad.config_id, bad.group_id, bad.params(), "capture_failed", message, "paddle",
                          device))  # fmt: skip
    for r in records:
        append_record(path, r.to_json())
    return path


def test_strings_from_a_run_are_escaped_for_markdown_tables(tmp_path):
    run = _write_run(tmp_path, "esc", message="RuntimeError: a | b\nsecond line <tag> `tick`")
    report = build_report(load_run_set([run]), tmp_path / "out")
    text = report.path.read_text()
    assert "RuntimeError: a \\| b<br>second line &lt;tag&gt; \\`tick\\`" in text
    for line in text.splitlines():
        if line.startswith("| "):
            assert line.rstrip().endswith("|"), line
    assert "second line" not in text.replace("<br>second line", "")


def test_md_cell_escapes_pipes_newlines_and_html():
    assert md_cell("a|b") == "a\\|b"
    assert md_cell("a\r\nb\nc") == "a<br>b<br>c"
    assert md_cell("<x> & y") == "&lt;x&gt; &amp; y"
    assert md_cell(None) == ""


def test_a_run_without_traces_or_memory_still_gets_every_chart(tmp_path):
    report = build_report(load_run_set([_write_run(tmp_path, "bare")]), tmp_path / "out")
    assert {c.name for c in report.charts} == set(CHARTS)
    for c in report.charts:
        assert_real_image(c.png)
    text = report.path.read_text()
    assert "No case has a trace" in text and "outputs bit-identical across variants" in text


def test_report_with_a_baseline_adds_the_run_vs_run_table(tmp_path):
    base, cand = _write_run(tmp_path, "base"), _write_run(tmp_path, "cand")
    assert cli("report", cand, "--baseline", base, "--out", tmp_path / "out") == 0
    text = (tmp_path / "out" / "evidence.md").read_text()
    assert "## Run vs run" in text
    assert re.search(r"### dsabench compare \(runs\): `cand( \(c{12}\))?` vs `base( \(c{12}\))?`", text)


# ----------------------------------------------------------------------------- bad input


def test_report_exits_2_for_a_path_that_is_not_there(tmp_path, capsys):
    assert cli("report", tmp_path / "nope") == 2
    assert "dsabench report: error:" in capsys.readouterr().err


def test_report_exits_2_for_a_directory_without_runs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli("report", tmp_path / "empty") == 2
    assert "holds no run" in capsys.readouterr().err


def test_report_exits_2_for_a_corrupt_manifest(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text("{not json")
    assert cli("report", tmp_path / "run") == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_report_exits_2_for_a_run_without_cases(tmp_path, capsys):
    create_run_dir(tmp_path / "r", run_files.manifest("r"))
    assert cli("report", tmp_path / "r") == 2
    assert "has no cases recorded" in capsys.readouterr().err


def test_report_exits_2_naming_the_runs_when_a_directory_holds_several(capsys):
    assert cli("report", GPU_DAY, "--out", "/nonexistent/never-written") == 2
    err = capsys.readouterr().err
    assert "pr-torch-h100" in err and "smoke-torch-h100" in err and "--run-id" in err


def test_run_id_picks_both_shards_of_one_run_out_of_a_results_directory():
    rs = load_run_set([GPU_DAY], run_id="pr-torch-h100")
    assert rs.run_id == "pr-torch-h100" and len(rs.shards) == 2 and len(rs.frame.df) == 52
    assert json.loads((GPU_SHARDS[0] / "manifest.json").read_text())["shard"] == [1, 2]
