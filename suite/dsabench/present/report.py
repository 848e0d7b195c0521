"""PR evidence bundle: one run (its shards included) -> a directory with `evidence.md` and the
charts it links (PNG; SVG as well when asked for, `svg=True`).

`evidence.md` says what was run (evidence_setup), the speedup of patched over baseline with
intervals and how far they can be trusted (evidence_speed), copies and syncs, time per phase
case by case (evidence_phases), CUDA Graph capture with the framework's error text, correctness
and, with a baseline run, the run-vs-run table (evidence_checks). Presentation only: every number
comes from the records, `compare` or `checks`. Every string taken from a run is escaped
(text.md_text, md_code, md_fenced).

The bundle is written into a staging directory beside `out_dir` and moved into place at the
end, so a failure leaves neither an empty `out_dir` nor half a bundle. A chart SVG of an earlier
bundle there is removed when this one writes none, so no chart beside evidence.md is older than it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from dsabench.analysis.checks import CheckResult
from dsabench.analysis.compare import DEFAULT_THRESHOLD
from dsabench.errors import InputError
from dsabench.present.evidence_impls import impls_section
from dsabench.present.evidence_kernels import kernels_section
from dsabench.present.evidence_phases import phases_section
from dsabench.present.evidence_checks import (
    capture_section, charts_section, copies_section, correctness_section, run_vs_run_section,
)  # fmt: skip
from dsabench.present.evidence_roofline import roofline_section
from dsabench.present.evidence_setup import environment, what_was_run
from dsabench.store.rundir import remove_made
from dsabench.present.evidence_speed import headline, speedup_section, timed_in_turn, variant_comparisons
from dsabench.present.runset import RunSet, load_run_set
from dsabench.present.text import md_code, md_text

EVIDENCE = "evidence.md"
DEFAULT_REPORTS = Path("reports")

__all__ = ["DEFAULT_REPORTS", "EVIDENCE", "Report", "RunSet", "build_report", "load_run_set"]


@dataclass(frozen=True)
class Report:
    """What `build_report` wrote: the markdown file, the charts, the correctness check, the
    comparisons, and the config ids the charts left out (a large run)."""

    path: Path
    charts: tuple
    check: CheckResult
    comparisons: dict
    left_out: tuple[str, ...] = ()


def _staging(out_dir: Path) -> tuple[Path, list[Path]]:
    """A fresh directory beside out_dir, and the parent directories created for it (removed again
    on failure). An out_dir that is a file, or a parent that cannot be written, is an InputError."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: is a file; expected a directory (new, or an earlier evidence bundle)")
    made = []
    parent = out_dir.absolute().parent
    for p in reversed([parent, *parent.parents]):
        if not p.exists():
            try:
                p.mkdir()
            except OSError as exc:
                raise InputError(f"--out {out_dir}: cannot create {p}: {exc.strerror or exc}") from None
            made.append(p)
        elif not p.is_dir():
            raise InputError(f"--out {out_dir}: {p} is a file; expected a directory")
    try:
        return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent)), made
    except OSError as exc:
        remove_made(made)
        raise InputError(f"--out {out_dir}: cannot write in {parent}: {exc.strerror or exc}") from None


def _move_into_place(stage: Path, out_dir: Path, charts) -> None:
    """The staged files into out_dir; an earlier bundle's SVG of a chart now drawn without one goes."""
    if not out_dir.exists():
        os.replace(stage, out_dir)
        return
    for f in stage.iterdir():
        os.replace(f, out_dir / f.name)
    stage.rmdir()
    for c in charts:
        if c.svg is None:
            (out_dir / f"{c.name}.svg").unlink(missing_ok=True)


def build_report(rs: RunSet, out_dir: Path, *, baseline: RunSet | None = None,
                 threshold: float = DEFAULT_THRESHOLD, copy_bandwidth_gbs: float | None = None,
                 allow_mismatch: bool = False, max_configs: int | None = None, svg: bool = False) -> Report:
    """Write evidence.md and the charts (PNG, and SVG with svg) for one run into out_dir (created
    if missing; files of an earlier bundle there are replaced). Nothing is left behind when it fails."""
    out_dir = Path(out_dir)
    stage, made = _staging(out_dir)
    try:
        report = _write(rs, stage, baseline, threshold, copy_bandwidth_gbs, allow_mismatch, max_configs, svg)
        _move_into_place(stage, out_dir, report.charts)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        remove_made(made)
        raise
    moved = tuple(replace(c, png=out_dir / c.png.name, svg=None if c.svg is None else out_dir / c.svg.name)
                  for c in report.charts)
    return Report(out_dir / EVIDENCE, moved, report.check, report.comparisons, report.left_out)


def _write(rs: RunSet, out_dir: Path, baseline: RunSet | None, threshold: float, copy_bandwidth_gbs: float | None,
           allow_mismatch: bool, max_configs: int | None, svg: bool) -> Report:
    from dsabench.present import charts as charts_mod  # noqa: PLC0415 - matplotlib only for this verb

    df = rs.frame.df
    # Where a graph case's phase and memory figures come from, when the records say it (the worker's
    # `sources`, newer than the frame's columns); charts.common.figures_source defaults to eager forwards.
    words = {"eager": "eager forwards", "graph": "graph replays"}
    sources = {r.get("case_id"): words.get(src, src) for r in rs.records
               if isinstance(src := (r.get("sources") or {}).get("phases_ms"), str)}
    if sources and "phases_source" not in df.columns:
        df = df.assign(phases_source=df["case_id"].map(sources))
    comps = variant_comparisons(rs.frame, threshold)
    labels, label_note = charts_mod.config_labels(df)
    run_vs_run = run_vs_run_section(baseline, rs, threshold, allow_mismatch) if baseline is not None else []
    chart_set = charts_mod.all_charts(df, comps, out_dir, copy_bandwidth_gbs, max_configs or charts_mod.MAX_CONFIGS,
                                      timed_in_turn(rs), svg=svg)
    correctness, check = correctness_section(rs)
    side_by_side = kernels_section(rs, threshold)

    devices = " + ".join(sorted({str(v) for v in df["device_name"].dropna()})) or "unknown device"
    backends = " + ".join(sorted({str(v) for v in df["backend"].dropna()})) or "unknown backend"
    kernels = " + ".join(sorted({str(v) for v in df["kernel"].dropna()})) or "reference"
    statuses = ", ".join(f"{n} {k}" for k, n in df["status"].value_counts().items())
    m0 = rs.shards[0].manifest
    preset = f"preset {m0['preset']}" if m0.get("preset") else f"scenario file {m0.get('scenario_file') or 'unknown'}"
    head = [f"# dsabench evidence: run {md_code(rs.run_id)}", "",
            f"{md_text(devices)}, {md_text(backends)} backend, {md_text(kernels)} attention kernel, {md_text(preset)}: "
            f"{len(df)} cases ({md_text(statuses)}) in {len(rs.shards)} run director"
            f"{'y' if len(rs.shards) == 1 else 'ies'}.", ""]  # fmt: skip
    summary = [s for s in (headline(rs, comps),) if s]
    summary.append("outputs " + ("bit-identical across variants" if check.configs_checked and not check.mismatches
                                 else "MISMATCH" if check.mismatches else "not compared"))  # fmt: skip
    head += [f"**Summary:** {md_text('; '.join(summary))}.", "",
             f"Config labels: {md_text(label_note)}. Case ids in the tables are the full ids.", "",
             "Sections: [what was run](#what-was-run), "
             "[environment](#environment-and-gpu-state-at-the-start-of-the-run), "
             "[speedup](#speedup-patched-vs-baseline), "
             + ("[kernels side by side](#kernels-side-by-side), " if side_by_side else "")
             + "[roofline](#roofline-each-phase-against-this-devices-ceilings), "
             "[copies and syncs](#host-device-copies-and-syncs-per-variant), "
             "[time per phase](#time-per-phase-per-case), "
             "[CUDA Graph capture](#cuda-graph-capture-per-variant), [correctness](#correctness), "
             + ("[run vs run](#run-vs-run), " if run_vs_run else "") + "[charts](#charts).", ""]  # fmt: skip
    if rs.frame.warnings:
        head += [f"> Warning: {md_text(w)}" for w in rs.frame.warnings] + [""]
    left = []
    if chart_set.left_out:
        left = [f"<details><summary>{len(chart_set.left_out)} configs left out of the charts (the tables above "
                "have them all)</summary>", ""] + [f"- {md_code(c)}" for c in chart_set.left_out] + ["", "</details>",
                                                                                                   ""]  # fmt: skip
    body = (head + what_was_run(rs) + environment(rs) + speedup_section(rs, comps, labels) + side_by_side
            + roofline_section(rs, labels) + copies_section(rs, labels) + phases_section(rs, labels)
            + capture_section(rs) + correctness + impls_section(rs, threshold) + run_vs_run
            + charts_section(chart_set.charts) + left)  # fmt: skip
    path = out_dir / EVIDENCE
    path.write_text("\n".join(body).rstrip() + "\n")
    return Report(path, chart_set.charts, check, comps, chart_set.left_out)
