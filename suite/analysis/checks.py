"""Correctness verdicts over records: outputs bit-identical within each config (all variants,
eager and graph), and the float64 oracle's relative error against its bound."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


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


def unchecked(records: list[dict]) -> dict[str, int]:
    """Cases whose output was never produced, by status: a check says nothing about them."""
    out: dict[str, int] = defaultdict(int)
    for r in records:
        if r["status"] in ("crashed", "oom", "capture_failed"):
            out[r["status"]] += 1
    return dict(out)
