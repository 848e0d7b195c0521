"""The evidence's result sections: copies and syncs per variant, CUDA Graph capture per variant
(expected findings named as findings), correctness, run vs run, and the chart list. Every string
from a run is escaped (text.md_text, md_code)."""

from __future__ import annotations

import math

import pandas as pd

from dsabench.analysis.checks import CheckResult, check_outputs
from dsabench.analysis.compare import compare_runs
from dsabench.present.charts.copies import dtod_explanation
from dsabench.present.compare_text import format_markdown
from dsabench.present.evidence_setup import dig
from dsabench.present.findings import status_label
from dsabench.present.runset import RunSet
from dsabench.present.text import fmt_bytes, fmt_num, md_code, md_table, md_text
from dsabench.workload.variants import ALL_VARIANTS


def _distinct(values: pd.Series, fmt) -> str:
    vals = sorted({float(v) for v in values.dropna()})
    return " / ".join(fmt(v) for v in vals) if vals else "-"


def copies_section(rs: RunSet, labels: dict[str, str]) -> list[str]:
    df = rs.frame.df
    ok = df[(df["status"] == "ok") & (df["trace_iterations"] > 0)]
    lines = ["## Host-device copies and syncs per variant", "",
             "Per forward, from the profiler trace of the profiled pass. Where the cases of a variant disagree, each "
             "distinct value is listed (a / b); the per-case table below has them case by case. *layout copied* is the "
             "size of the buffer the layout phase produced when it is not the cache itself (measured by data pointer, "
             "any device); *layout kernels* is the device work the trace attributes to the layout phase.",
             ""]  # fmt: skip
    if ok.empty:
        return lines + ["No case has a trace (profiled pass off, or no case ran).", ""]
    if not (ok[["kernel_count", "htod_count", "dtoh_count", "dtod_count"]].fillna(0) > 0).any().any():
        devices = ", ".join(sorted({str(v) for v in df["device_name"].dropna()}))
        lines += [f"The traces of this run hold no device events ({md_text(devices)}): the copy and sync counts "
                  "below are zero by construction, not evidence.", ""]  # fmt: skip
    rows = []
    order = [v.name for v in ALL_VARIANTS]
    for variant in [v for v in order if v in set(ok["variant"])]:
        for graph in (False, True):
            sub = ok[(ok["variant"] == variant) & (ok["graph"] == graph)]
            if sub.empty:
                continue
            rows.append([
                md_text(variant), "CUDA Graph" if graph else "eager", str(len(sub)),
                _distinct(sub["htod_count"], fmt_num), _distinct(sub["htod_bytes"], fmt_bytes),
                _distinct(sub["dtoh_count"], fmt_num), _distinct(sub["dtoh_bytes"], fmt_bytes),
                _distinct(sub["dtod_count"], fmt_num), _distinct(sub["dtod_bytes"], fmt_bytes),
                _distinct(sub["sync_calls"], fmt_num),
                _distinct(sub["layout_copied_bytes"], fmt_bytes) if "layout_copied_bytes" in sub else "-",
                _distinct(sub["layout_copy_ms"], lambda v: f"{v:.3g} ms"),
            ])  # fmt: skip
    dtod = dtod_explanation(df)
    header = ["variant", "mode", "cases", "HtoD", "HtoD bytes", "DtoH", "DtoH bytes", "DtoD", "DtoD bytes",
              "sync calls", "layout copied", "layout kernels"]  # fmt: skip
    lines += md_table(header, rows, ["---", "---", "---:"] + ["---:"] * 9)
    if dtod:
        lines += ["", f"The DtoD column: {md_text(dtod)}."]
    detail = []
    rank = {cid: i for i, cid in enumerate(labels)}
    vrank = {name: i for i, name in enumerate(order)}
    ok = ok.assign(_c=ok["config_id"].map(rank), _v=ok["variant"].map(vrank)).sort_values(["_c", "graph", "_v"])
    for r in ok.to_dict("records"):
        copies = [f"{fmt_num(r[f'{d}_count'])} ({fmt_bytes(r[f'{d}_bytes'])})" for d in ("htod", "dtoh", "dtod")]
        detail.append([md_text(labels.get(r["config_id"], r["config_id"])), md_text(r["variant"]),
                       "graph" if r["graph"] else "eager", *copies, fmt_num(r["sync_calls"]),
                       fmt_bytes(r.get("layout_copied_bytes", math.nan))])  # fmt: skip
    lines += ["", f"<details><summary>per case ({len(detail)} traced cases)</summary>", ""]
    lines += md_table(["config", "variant", "mode", "HtoD", "DtoH", "DtoD", "syncs", "layout copied"], detail)
    return lines + ["", "</details>", ""]


def capture_section(rs: RunSet) -> list[str]:
    df = rs.frame.df
    g = df[df["graph"] == True]  # noqa: E712 - a column of Python bools
    lines = ["## CUDA Graph capture per variant", ""]
    if g.empty:
        return lines + ["No CUDA Graph cases in this run.", ""]
    rows = []
    for variant in [v.name for v in ALL_VARIANTS if v.name in set(g["variant"])]:
        sub = g[g["variant"] == variant]
        failed = sub[sub["status"] != "ok"]
        found = pd.Series([status_label(r) for r in failed.to_dict("records")], dtype=object).value_counts()
        statuses = ", ".join(f"{n} {k}" for k, n in found.items()) or "-"
        messages = sorted({str(m) for m in failed["message"] if m})
        rows.append([md_text(variant), str(len(sub)), str(int((sub["status"] == "ok").sum())), md_text(statuses),
                     "<br>".join(md_code(m) for m in messages) or "-"])  # fmt: skip
    header = ["variant", "graph cases", "captured and timed", "not captured (expected findings in plain words)",
              "error text (the framework's own)"]
    lines += md_table(header, rows, ["---", "---:", "---:", "---", "---"])
    other = df[(df["status"] != "ok") & (df["graph"] != True)]  # noqa: E712
    if not other.empty:
        lines += ["", "Eager cases that did not run:", ""]
        lines += md_table(["case", "status", "message"],
                          ([md_code(r["case_id"]), md_text(status_label(r)), md_text(r["message"])]
                           for r in other.to_dict("records")))  # fmt: skip
    return lines + [""]


def correctness_section(rs: RunSet) -> tuple[list[str], CheckResult]:
    check = check_outputs(rs.records)
    lines = ["## Correctness", ""]
    if check.configs_checked == 0:
        verdict = "**not checked**: no config has outputs of more than one ok case to compare"
    elif not check.mismatches:
        n = check.configs_checked
        verdict = (f"**bit-identical**: in {'the one config' if n == 1 else f'each of the {n} configs'} with several "
                   "variants (eager and CUDA Graph), every ok case produced the same output bytes (SHA-256 of the bf16 "
                   "output)")  # fmt: skip
    else:
        verdict = f"**MISMATCH**: {len(check.mismatches)} of {check.configs_checked} configs have outputs that differ"
    lines += [f"Outputs across variants: {verdict}.", ""]
    if check.mismatches:
        lines += md_table(["mismatch"], ([md_text(m)] for m in check.mismatches)) + [""]
    total = len(rs.records)
    if check.nonfinite:
        lines += [f"**Non-finite outputs**: {len(check.nonfinite)} of {total} cases produced NaN or inf (wrong even "
                  "where the variants agree):", ""]
        lines += md_table(["case"], ([md_text(m)] for m in check.nonfinite)) + [""]
    if check.oracle_worst is None:
        checked = {bool(dig(s.manifest, "options", "check")) for s in rs.shards}
        why = ("no case with an output was within the oracle's size limit; see below"
               if checked == {True} else "the run was made without `--check`")  # fmt: skip
        lines += [f"Oracle: 0 of {total} cases compared with the float64 reference ({why}); the bit-identity above "
                  "is the correctness evidence of this run.", ""]  # fmt: skip
    else:
        state = "all within the bound" if not check.oracle_failures else f"{len(check.oracle_failures)} over the bound"
        lines += [f"Oracle: {check.oracle_checked} of {total} cases compared with the float64 reference; worst relative "
                  f"error {check.oracle_worst:.3e} (bound {check.oracle_bound:.1e}): {state}.", ""]  # fmt: skip
        if check.oracle_failures:
            lines += md_table(["over the bound"], ([md_text(m)] for m in check.oracle_failures)) + [""]
    if check.skipped:
        lines += [f"Not compared: {len(check.skipped)} of {total} cases missed a comparison, each with its reason:", ""]
        lines += md_table(["case", "reason"], ([md_code(cid), md_text(why)] for cid, why in check.skipped)) + [""]
    return lines, check


def run_vs_run_section(base: RunSet, rs: RunSet, threshold: float, allow_mismatch: bool) -> list[str]:
    comp = compare_runs(base.frame, rs.frame, threshold=threshold, allow_mismatch=allow_mismatch)
    return ["## Run vs run", "", f"BASE is `--baseline` ({md_code(base.run_id)}), CAND this run.", "",
            format_markdown(comp).rstrip(), ""]  # fmt: skip


def charts_section(charts) -> list[str]:
    lines = ["## Charts", ""]
    for c in charts:
        svg = f" ([SVG]({c.svg.name}))" if c.svg is not None else ""  # an SVG only where one was written
        lines += [f"### {md_text(c.title)}", "", f"![{md_text(c.title)}]({c.png.name})", "",
                  f"{c.description}{svg}", ""]  # fmt: skip
        lines += [f"- Note: {md_text(n)}" for n in c.notes if n]
        lines += [""] if c.notes else []
    return lines
