"""The evidence's roofline section: per config and phase, the work the phase must do (FLOPs,
bytes: analysis.roofline), the device time it took, the rates that gives, and their fraction of
the ceilings this device reached in the same run (a device-to-device copy and a bf16 matmul,
measured once per worker: bench.ceilings, in the manifest's `workers[].ceilings`).

Times are the device time per phase of the profiled pass (trace: kernels, copies and sets
launched inside each phase's range, per forward, mean over the pass's iterations; frame columns
`kernel_ms_<phase>`), from eager forwards with profiler ranges: not the timed pass, and not a
CUDA Graph replay (one launch that cannot be split by phase). A CPU run measures no ceilings and
no device time: the section says so and shows no table.

A run of a kernel axis has a table per kernel and variant; where it holds FlashMLA's records (the
kernel FastDeploy runs in production), every other kernel's table gets two more columns: the same
phase's device time with FlashMLA in the same case, and this kernel's time over it.
"""

from __future__ import annotations

import math
from typing import Mapping

from dsabench.analysis.roofline import roofline
from dsabench.present.runset import RunSet
from dsabench.present.text import md_code, md_table, md_text
from dsabench.workload.variants import BASELINE, PATCHED

MAX_CONFIGS = 12  # tables per report: a nightly has hundreds of configs

SOURCE = ("Times: device time per phase of the profiled pass (trace; kernels, copies and sets launched inside "
          "each phase's range, per forward, mean over the pass's iterations; frame columns `kernel_ms_<phase>`), "
          "eager forwards with profiler ranges, not the timed pass. FLOPs: the attention's matrix work over the "
          "indices each token really uses; bytes: the fewest a phase must move (each input read once, each output "
          "written once). Floor = max(FLOPs / matmul ceiling, bytes / copy ceiling): a phase cannot run faster "
          "on this device; `x floor` is how far above it the phase ran.")


def worker_ceilings(rs: RunSet) -> dict[str, dict]:
    """Device uuid (or '' for a worker without one) -> the ceilings its worker measured; workers
    whose measurement failed or that ran on a CPU are left out."""
    out: dict[str, dict] = {}
    for shard in rs.shards:
        for w in shard.manifest.get("workers") or []:
            c = w.get("ceilings")
            if isinstance(c, dict) and c.get("copy_gbs") and c.get("matmul_tflops"):
                out.setdefault(str((w.get("device") or {}).get("uuid") or ""), c)
    return out


def ceiling_failures(rs: RunSet) -> list[str]:
    return [str(w["ceilings"]["error"]) for s in rs.shards for w in s.manifest.get("workers") or []
            if isinstance(w.get("ceilings"), dict) and w["ceilings"].get("error")]


def phase_times(row: Mapping) -> dict[str, float]:
    """Device ms per phase of one frame row (kernel_ms_<phase>); missing or zero ones left out."""
    out = {}
    for key, value in row.items():
        if isinstance(key, str) and key.startswith("kernel_ms_") and isinstance(value, (int, float)):
            if math.isfinite(value) and value > 0:
                out[key[len("kernel_ms_"):]] = float(value)
    return out


def _g(v: float, scale: float, digits: int = 3) -> str:
    return f"{v / scale:.{digits}g}" if v else "0"


def percent(fraction: float) -> str:
    return f"{fraction * 100:.3g}%" if fraction == fraction else "-"


def roofline_rows(row: Mapping, ceilings: Mapping) -> list[list[str]]:
    """Table rows (phase, ms, GFLOP, MB, TFLOP/s, GB/s, of matmul, of copy, floor µs, x floor)
    for one frame row measured on a device with `ceilings` (copy_gbs, matmul_tflops)."""
    copied = row.get("layout_copied_bytes")
    copied = float(copied) if isinstance(copied, (int, float)) and math.isfinite(copied) else 0.0
    out = []
    for r in roofline(row, phase_times(row), copy_gbs=float(ceilings["copy_gbs"]),
                      matmul_tflops=float(ceilings["matmul_tflops"]), layout_copy_bytes=copied):
        times = r.ms / r.floor_ms if r.floor_ms > 0 else math.nan
        times_floor = "-" if times != times else f"{times:.0f}x" if times >= 100 else f"{times:.3g}x"
        out.append([md_text(r.phase), f"{r.ms:.4f}", _g(r.flops, 1e9), _g(r.bytes, 1e6), _g(r.tflops, 1),
                    _g(r.gbs, 1), percent(r.of_matmul), percent(r.of_copy), _g(r.floor_ms, 1e-3), times_floor])
    return out


HEADER = ["phase", "device ms", "GFLOP", "MB", "TFLOP/s", "GB/s", "of matmul", "of copy", "floor µs", "x floor"]
ALIGN = ["---"] + ["---:"] * (len(HEADER) - 1)
PRODUCTION = "flashmla"  # the kernel FastDeploy's forward_mixed calls: the column every other kernel is put against
PRODUCTION_HEADER = ["FlashMLA ms", "x FlashMLA"]


def with_production(rows: list[list[str]], row: Mapping, production: Mapping | None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of one table: the roofline columns, and where `production` (FlashMLA's frame
    row of the same case) is given, its device ms of each phase and this row's ms over it."""
    if production is None:
        return HEADER, rows
    theirs, mine = phase_times(production), phase_times(row)
    out = []
    for r in rows:
        phase = r[0]
        t = next((v for k, v in theirs.items() if md_text(k) == phase), None)
        m = next((v for k, v in mine.items() if md_text(k) == phase), None)
        out.append(r + ([f"{t:.4f}", f"{m / t:.2f}x" if m else "-"] if t else ["-", "-"]))
    return HEADER + PRODUCTION_HEADER, out


def _production_rows(df) -> dict:
    """(case id, impl) -> FlashMLA's frame row, on a kernel axis that holds FlashMLA; else empty."""
    axis = df[df["kernel_axis"].fillna(False).astype(bool) & (df["kernel"] == PRODUCTION)]
    return {(r["case_id"], r.get("impl")): r for r in axis.to_dict("records")}


def roofline_section(rs: RunSet, labels: Mapping[str, str]) -> list[str]:
    lines = ["## Roofline: each phase against this device's ceilings", ""]
    ceilings = worker_ceilings(rs)
    if not ceilings:
        failed = ceiling_failures(rs)
        why = (f"the ceiling measurement failed ({'; '.join(failed)})" if failed else
               "this run measured no device ceilings (they are measured on a GPU only; a CPU run has none, and "
               "runs made before the roofline existed did not measure them)")
        return lines + [md_text(f"No roofline table: {why}. Without a copy and a matmul rate measured on the same "
                                "device in the same run, a fraction of ceiling would be invented."), ""]
    for uuid, c in ceilings.items():
        lines.append(md_text(f"Ceilings measured by the worker on {uuid or 'the device'}: device-to-device copy "
                             f"{c['copy_gbs']:.0f} GB/s (read + write, {c.get('copy_bytes', 0) / 2**30:.0f} GiB), "
                             f"bf16 matmul {c['matmul_tflops']:.0f} TFLOP/s (n = {c.get('matmul_n')}), via "
                             f"{c.get('via')}."))
    lines += ["", SOURCE, ""]  # our own text: its `code` spans stay markdown
    df = rs.frame.df
    eager = df[(df["graph"] != True) & (df["status"] == "ok")]  # noqa: E712 - a column of Python bools
    eager = eager[eager["variant"].isin([BASELINE.name, PATCHED.name])]
    configs = [c for c in labels if c in set(eager["config_id"])]
    shown = configs[:MAX_CONFIGS]
    production = _production_rows(eager)
    for config in shown:
        lines += [f"### {md_text(labels.get(config, config))}", ""]
        for row in eager[eager["config_id"] == config].sort_values(["variant", "kernel"]).to_dict("records"):
            c = ceilings.get(str(row.get("device_uuid") or "")) or next(iter(ceilings.values()))
            rows = roofline_rows(row, c)
            if not rows:
                lines += [md_text(f"{row['variant']}: no device time per phase in its trace (profiled pass "
                                  "off, or no device events)."), ""]
                continue
            lines += [f"{md_text(row['variant'])} ({md_code(row['case_id'])}, {md_text(row.get('kernel'))} "
                      "attention):", ""]
            theirs = production.get((row["case_id"], row.get("impl"))) if row.get("kernel") != PRODUCTION else None
            header, rows = with_production(rows, row, theirs)
            lines += md_table(header, rows, ALIGN + ["---:"] * (len(header) - len(HEADER))) + [""]
    if len(configs) > len(shown):
        lines += [md_text(f"{len(configs) - len(shown)} more configs left out of this section (at most "
                          f"{MAX_CONFIGS}); the frame's kernel_ms_<phase> columns have them all."), ""]
    if not configs:
        lines += ["No eager baseline or patched case finished in this run: nothing to put against the ceilings.", ""]
    return lines

