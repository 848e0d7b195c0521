"""The evidence's kernels section: a run of a kernel axis (`--kernel flashmla,triton,reference`)
puts each case's kernels side by side, every kernel against the first one asked for, judged by
the gate (`compare_kernels`). A run of one kernel has no such section.

What a ratio here is: the time of the whole forward with one kernel over the time with the first,
so it carries every phase the kernels share (scale, write cache, layout, merge) as well as the
attention; the roofline section has each phase's device time per kernel. What it is not: a
kernel benchmark of the attention call alone (scripts/flashmla_check.py times those).
"""

from __future__ import annotations

from dsabench.analysis.compare import DEFAULT_THRESHOLD
from dsabench.analysis.compare_kernels import compare_kernels, kernels_of
from dsabench.analysis.gate import band_text
from dsabench.present.evidence_speed import timed_in_turn
from dsabench.present.runset import RunSet
from dsabench.present.text import md_code, md_table, md_text
from dsabench.store.schema import record_key


def _cell(r: dict | None, in_turn: bool) -> str:
    if r is None:
        return "-"
    b, c = r["base_status"], r["cand_status"]
    if b != "ok" or c != "ok":  # this kernel's status, and the first kernel's where it differs
        return md_text("; ".join(([c] if c != "ok" else []) + ([f"first kernel {b}"] if b not in ("ok", c) else [])))
    ratio, lo, hi = r["ratio"], r["ci_low"], r["ci_high"]
    if not ratio == ratio:
        return md_text(r["verdict"])
    text = f"{r['cand_level_ms']:.4f} ms, {ratio:.2f}x"
    if lo == lo and hi == hi:
        text += f" ({lo:.2f}-{hi:.2f})"
    noisy = " (noisy)" if r.get("noisy") is True else ""
    turn = " (in turn)" if in_turn and r["verdict"] in ("faster", "slower") else ""
    return md_text(f"{text} {r['verdict']}{noisy}{turn}")


def _base_level(rows: list[dict | None]) -> float | None:
    """The first kernel's level as its comparisons give it (gate.levels: the geometric mean of its
    process medians), so that a cell's ms over it is the cell's ratio; the same in every comparison
    whose pairing kept the same processes."""
    found = [r["base_level_ms"] for r in rows if r is not None and r["base_level_ms"] == r["base_level_ms"]]
    return found[0] if found else None


def kernels_section(rs: RunSet, threshold: float = DEFAULT_THRESHOLD) -> list[str]:
    kernels = kernels_of(rs.frame)
    if len(kernels) < 2:
        return []
    first = kernels[0]
    comps = {k: compare_kernels(rs.frame, first, k, threshold=threshold) for k in kernels[1:]}
    by = {k: {r["case"]: r for r in c.table.to_dict("records")} for k, c in comps.items()}
    df = rs.frame.df
    base = df[df["kernel_axis"].fillna(False).astype(bool) & (df["kernel"] == first)]
    in_turn = timed_in_turn(rs)
    rows = []
    for r in base.sort_values(["graph", "case_id"]).to_dict("records"):
        key = record_key(r["case_id"], r.get("impl"))  # as compare_kernels keys its pairs
        mine = _base_level([by[k].get(key) for k in comps]) if r["status"] == "ok" else None
        cells = [_cell(by[k].get(key), r["group_id"] in in_turn) for k in comps]
        rows.append([md_code(key), f"{mine:.4f}" if mine is not None else md_text(r["status"]), *cells])
    return [
        "## Kernels side by side", "",
        md_text(f"The run measured each case with the kernels {', '.join(kernels)} (a kernel axis), the eager cases "
                "interleaved in one worker on the same inputs. Each cell: that kernel's ms per forward, its "
                f"ratio to {first} (above 1: more time) with the 95% interval over worker processes, and the gate's "
                f"verdict against a {band_text(threshold)} band (dsabench compare --kernels RUN --base-kernel {first} "
                "--cand-kernel K). A ratio is of the whole forward (every phase, the attention among them), not of "
                "the attention call alone; the roofline section has the device time of each phase per kernel. The ms "
                "are each kernel's level, the geometric mean of its process medians (eager cases, paired by round: "
                f"{first}'s level x the ratio), so a cell's ms over the {first} ms column is its ratio; not medians of "
                "all samples."), "",
        *md_table(["case", f"{first} ms", *kernels[1:]], rows, ["---", "---:"] + ["---:"] * len(comps)), "",
    ]
