"""End-of-run tables: per case median and spread per variant, patched's speedup over baseline,
and the correctness verdict (bit-identical outputs across variants, oracle error).

Pure functions over record dicts; statistics come from `stats`.
"""

from __future__ import annotations

from collections import defaultdict

from dsabench.analysis.checks import NO_CHECK, CheckResult
from dsabench.analysis.stats import summarize
from dsabench.workload.variants import ALL_VARIANTS

VARIANT_ORDER = [v.name for v in ALL_VARIANTS]


def summary_table(records: list[dict]) -> str:
    """One row per case group (variants side by side): median ms [±CI%] and patched speedup."""
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in records:
        groups[r["group_id"]][r["params"]["variant"]] = r
    present = [v for v in VARIANT_ORDER if any(v in g for g in groups.values())]
    head = ["case"] + present + ["patched vs baseline"]
    rows = [head]
    for gid in sorted(groups):
        g = groups[gid]
        row = [gid]
        med = {}
        for v in present:
            r = g.get(v)
            if r is None:
                row.append("")
            elif r["status"] != "ok" or not (r.get("timing") or {}).get("samples_ms"):
                row.append(r["status"])
            else:
                s = summarize(r["timing"]["samples_ms"])
                med[v] = s.median
                row.append(f"{s.median:.4f} ±{s.rel_ci_halfwidth:.1%}")
        if "baseline" in med and "patched" in med:
            row.append(f"{med['baseline'] / med['patched']:.2f}x")
        else:
            row.append("")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "median ms per forward, ±half-width of the 95% CI of the median\n" + "\n".join(lines)


def _cases(n: int) -> str:
    return f"{n} case" if n == 1 else f"{n} cases"


def format_check(result: CheckResult, records: list[dict] | None = None) -> str:
    """The correctness verdict; every count is of cases actually compared, and every case that
    missed a comparison is named with the reason (grouped by reason)."""
    total = len(records) if records is not None else None
    of = f" of {total}" if total is not None else ""
    lines = [f"correctness: {result.configs_checked} configs ({result.cases_compared}{of} cases) compared bit for bit "
             "across variants: " + ("all identical" if not result.mismatches else f"{len(result.mismatches)} MISMATCH(ES)")]
    lines += [f"  {m}" for m in result.mismatches]
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
