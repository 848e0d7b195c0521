"""End-of-run tables: per case median and spread per variant, patched against baseline (which
way, by how much, the interval and the gate's verdict, the very one `compare --variants` gives),
and the correctness verdict (bit-identical outputs across variants and processes, oracle error).

Pure functions over record dicts; statistics come from `stats`, verdicts from the gate
(`compare.gate_decision`, over each record's samples per worker process).
"""

from __future__ import annotations

from collections import defaultdict

from dsabench.analysis.checks import NO_CHECK, CheckResult
from dsabench.analysis.compare import DEFAULT_THRESHOLD, gate_decision
from dsabench.analysis.stats import summarize
from dsabench.present.findings import finding
from dsabench.present.text import text_table
from dsabench.workload.variants import ALL_VARIANTS

VARIANT_ORDER = [v.name for v in ALL_VARIANTS]


def _groups(record: dict) -> list[list[float]]:
    """The record's samples per worker process (`store.merge_repeats`), or all of them as one."""
    g = record.get("process_samples")
    if isinstance(g, list) and g and all(isinstance(x, list) for x in g):
        return [x for x in g if x]
    return [list(record["timing"]["samples_ms"])]


def _patched_vs_baseline(base: dict, cand: dict) -> str:
    """Direction, interval and verdict of patched against baseline, from the gate (eager variants
    paired by process, as compare --variants pairs them): 'patched 22.8% less time (21.9-23.6%),
    faster', a noisy qualifier and the reason where the verdict is not a change, or why there is none."""
    for name, r in (("baseline", base), ("patched", cand)):
        if r["status"] != "ok" or not (r.get("timing") or {}).get("samples_ms"):
            return f"{name} {finding(_row(r)) or r['status']}"
    paired = not (base.get("params") or {}).get("graph")
    d = gate_decision(_groups(base), _groups(cand), DEFAULT_THRESHOLD, paired=paired)
    if not d.ratio == d.ratio:
        return f"{d.verdict.value}: {_SHORT.get(d.reason.value, d.why)}"
    change = (1 - d.ratio) * 100  # percent of baseline's time saved (negative: more time)
    word = "less" if change >= 0 else "more"
    text = f"patched {abs(change):.1f}% {word} time"
    if d.ci_low == d.ci_low:
        lo, hi = sorted((abs(1 - d.ci_low) * 100, abs(1 - d.ci_high) * 100))
        text += f" ({lo:.1f}-{hi:.1f}%)" if (1 - d.ci_low) * (1 - d.ci_high) > 0 else \
            f" ({(1 - d.ci_high) * 100:+.1f}% to {(1 - d.ci_low) * 100:+.1f}%)"
    verdict = d.verdict.value + (" (noisy)" if d.noisy else "")
    why = [] if d.verdict.value in ("slower", "faster") else [_SHORT.get(d.reason.value, d.reason.value)]
    if d.noisy:
        why.append(f"processes spread {d.noise:.1%}")
    return f"{text}, {verdict}" + (f": {', '.join(why)}" if why else "")


# The gate's reasons, short enough for a table cell (compare prints them in full).
_SHORT = {
    "ci_within_threshold": "interval within the band",
    "ci_crosses_threshold": "interval crosses the band's edge",
    "within_run_precision_only": "one process: no spread between processes measured",
    "too_few_samples": "too few samples",
}


def _row(record: dict) -> dict:
    return {**(record.get("params") or {}), "status": record.get("status"), "message": record.get("message")}


def summary_table(records: list[dict]) -> str:
    """One row per case group (variants side by side): median ms [±CI%] per variant, then patched
    against baseline with a direction, the 95% interval and the gate's verdict."""
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in records:
        impl = r.get("impl") or "mirror"  # a FastDeploy commit's cases are a row of their own
        groups[r["group_id"] + ("" if impl == "mirror" else f" [{impl}]")][r["params"]["variant"]] = r
    present = [v for v in VARIANT_ORDER if any(v in g for g in groups.values())]
    head = ["case"] + present + ["patched vs baseline"]
    rows = []
    for gid in sorted(groups):
        g = groups[gid]
        row = [gid]
        for v in present:
            r = g.get(v)
            if r is None:
                row.append("")
            elif r["status"] != "ok" or not (r.get("timing") or {}).get("samples_ms"):
                row.append(finding(_row(r)) or r["status"])
            else:
                s = summarize(r["timing"]["samples_ms"])
                row.append(f"{s.median:.4f} ±{s.rel_ci_halfwidth:.1%}")
        row.append(_patched_vs_baseline(g["baseline"], g["patched"]) if "baseline" in g and "patched" in g else "")
        rows.append(row)
    kernels = sorted({str(r.get("kernel") or "reference") for r in records})
    return "\n".join([
        f"attention kernel: {' + '.join(kernels) or 'none recorded'}",
        "median ms per forward, ±half-width of the 95% CI of the median (within the run); patched vs baseline: "
        f"share of baseline's time saved, its 95% interval and the verdict against a +-{DEFAULT_THRESHOLD:.0%} band "
        "(compare --variants: the same gate)",
        *text_table(head, rows),
        "the verdict's interval spans the run's worker processes (--repeats); with one process it is that "
        "process's precision only, and a CUDA Graph case is timed in its own turn (run order can move it)",
    ])


def _cases(n: int) -> str:
    return f"{n} case" if n == 1 else f"{n} cases"


def format_check(result: CheckResult, records: list[dict] | None = None) -> str:
    """The correctness verdict; every count is of cases actually compared, and every case that
    missed a comparison is named with the reason (grouped by reason)."""
    total = len(records) if records is not None else None
    of = f" of {total}" if total is not None else ""
    repeats = records is not None and any(r.get("repeat", 0) for r in records)
    across = "variants, impls and worker processes (a case counted once per repeat)" if repeats else "variants and impls"
    lines = [f"correctness: {result.configs_checked} configs ({result.cases_compared}{of} cases) compared bit for bit "
             f"across {across}: " + ("all identical" if not result.mismatches else f"{len(result.mismatches)} MISMATCH(ES)")]
    lines += [f"  {m}" for m in result.mismatches]
    if result.crashed:
        lines.append(f"crashed: {_cases(len(result.crashed))} (the impl raised or its worker died: no output to vouch for)")
        lines += [f"  {m}" for m in result.crashed]
    if result.nonfinite:
        lines.append(f"non-finite output: {_cases(len(result.nonfinite))} (NaN or inf; wrong even where variants agree)")
        lines += [f"  {m}" for m in result.nonfinite]
    no_check = [cid for cid, why in result.skipped if why.endswith(f"no oracle comparison: {NO_CHECK}")]
    if result.oracle_worst is not None:
        lines.append(f"oracle: {result.oracle_checked}{of} cases compared with the float64 reference: worst relative "
                     f"error {result.oracle_worst:.3e} (bound {result.oracle_bound:.1e})"
                     + ("" if not result.oracle_failures else f"; {len(result.oracle_failures)} over the bound"))
        lines += [f"  {m}" for m in result.oracle_failures]
    elif no_check:
        lines.append(f"oracle: not run ({NO_CHECK})")
    else:
        lines.append(f"oracle: 0{of} cases compared with the float64 reference (reasons below)")
    if result.skipped:
        by_reason: dict[str, list[str]] = defaultdict(list)
        for cid, why in result.skipped:
            by_reason[why].append(cid)
        lines.append(f"not compared: {len(result.skipped)}{of} cases missed a comparison")
        for why, ids in by_reason.items():
            if why == f"no oracle comparison: {NO_CHECK}":
                lines.append(f"  {_cases(len(ids))}: {why}")  # the whole run's reason: naming each adds nothing
                continue
            lines.append(f"  {_cases(len(ids))}: {why}:")
            lines += [f"    {cid}" for cid in ids]
    return "\n".join(lines)
