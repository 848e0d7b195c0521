"""End-of-run tables: per case median and spread per variant, patched's speedup over baseline,
and the correctness verdict (bit-identical outputs across variants, oracle error).

Pure functions over record dicts; statistics come from `stats`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .stats import summarize
from .variants import ALL_VARIANTS

VARIANT_ORDER = [v.name for v in ALL_VARIANTS]


@dataclass(frozen=True)
class CheckResult:
    """Bit-for-bit agreement of outputs within each config (all variants, eager and graph)."""

    configs_checked: int
    mismatches: tuple[str, ...]
    oracle_worst: float | None
    oracle_bound: float | None
    oracle_failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.oracle_failures


def check_outputs(records: list[dict]) -> CheckResult:
    digests: dict[str, dict[str, str]] = defaultdict(dict)
    worst, bound, failures = None, None, []
    for r in records:
        out = r.get("output") or {}
        if r["status"] != "ok" or "digest" not in out:
            continue
        digests[r["config_id"]][r["case_id"]] = out["digest"]
        if "oracle_rel_error" in out:
            err, bound = out["oracle_rel_error"], out.get("oracle_bound")
            worst = err if worst is None else max(worst, err)
            if bound is not None and not err <= bound:
                failures.append(f"{r['case_id']}: relative error {err:.3e} > bound {bound:.1e}")
    mismatches = []
    for config, by_case in digests.items():
        if len(set(by_case.values())) > 1:
            groups = defaultdict(list)
            for cid, d in by_case.items():
                groups[d[:12]].append(cid.removeprefix(config + "."))
            mismatches.append(f"{config}: outputs differ: " + "; ".join(f"{d}: {', '.join(c)}" for d, c in groups.items()))
    checked = sum(1 for by_case in digests.values() if len(by_case) > 1)
    return CheckResult(checked, tuple(mismatches), worst, bound, tuple(failures))


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


def unchecked(records: list[dict]) -> dict[str, int]:
    """Cases whose output was never produced, by status: a check says nothing about them."""
    out: dict[str, int] = defaultdict(int)
    for r in records:
        if r["status"] in ("crashed", "oom", "capture_failed"):
            out[r["status"]] += 1
    return dict(out)


def format_check(result: CheckResult, records: list[dict] | None = None) -> str:
    lines = [f"correctness: {result.configs_checked} configs with several variants compared bit for bit: "
             + ("all identical" if not result.mismatches else f"{len(result.mismatches)} MISMATCH(ES)")]
    missing = unchecked(records or [])
    if missing:
        lines.append("  not checked (no output): " + ", ".join(f"{n} {s}" for s, n in sorted(missing.items())))
    lines += [f"  {m}" for m in result.mismatches]
    if result.oracle_worst is not None:
        lines.append(f"oracle: worst relative error {result.oracle_worst:.3e} (bound {result.oracle_bound:.1e})"
                     + ("" if not result.oracle_failures else f"; {len(result.oracle_failures)} over the bound"))
        lines += [f"  {m}" for m in result.oracle_failures]
    return "\n".join(lines)
