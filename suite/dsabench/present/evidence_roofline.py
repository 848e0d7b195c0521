"""The evidence's roofline section: per config and phase, the work the phase must do (FLOPs,
bytes: analysis.roofline), the device time it took, the rates that gives, and their fraction of
the ceilings this device reached in the same run (a device-to-device copy and a bf16 matmul,
measured once per worker: bench.ceilings, in the manifest's `workers[].ceilings`).

Times are the device time per phase of the profiled pass (trace: kernels, copies and sets
launched inside each phase's range, per forward, mean over the pass's iterations; frame columns
`kernel_ms_<phase>`), from eager forwards with profiler ranges: not the timed pass, and not a
CUDA Graph replay (one launch that cannot be split by phase). A CPU run measures no ceilings and
no device time: the section says so and shows no table.
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
    for config in shown:
        lines += [f"### {md_text(labels.get(config, config))}", ""]
        for row in eager[eager["config_id"] == config].sort_values("variant").to_dict("records"):
            c = ceilings.get(str(row.get("device_uuid") or "")) or next(iter(ceilings.values()))
            rows = roofline_rows(row, c)
            if not rows:
                lines += [md_text(f"{row['variant']}: no device time per phase in its trace (profiled pass "
                                  "off, or no device events)."), ""]
                continue
            lines += [f"{md_text(row['variant'])} ({md_code(row['case_id'])}, {md_text(row.get('kernel'))} "
                      "attention):", ""]
            lines += md_table(HEADER, rows, ALIGN) + [""]
    if len(configs) > len(shown):
        lines += [md_text(f"{len(configs) - len(shown)} more configs left out of this section (at most "
                          f"{MAX_CONFIGS}); the frame's kernel_ms_<phase> columns have them all."), ""]
    if not configs:
        lines += ["No eager baseline or patched case finished in this run: nothing to put against the ceilings.", ""]
    return lines

