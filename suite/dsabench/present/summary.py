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
from dsabench.analysis.gate import band_text
from dsabench.analysis.pairing import judged_sides
from dsabench.analysis.stats import summarize
from dsabench.present.findings import finding
from dsabench.present import fit
from dsabench.present.fit import WIDTH, wrap
from dsabench.present.text import fmt_ms, plural
from dsabench.workload.variants import ALL_VARIANTS

VARIANT_ORDER = [v.name for v in ALL_VARIANTS]


def _patched_vs_baseline(base: dict, cand: dict) -> str:
    """Direction, interval and verdict of patched against baseline, from the gate (eager variants
    paired by process, as compare --variants pairs them): 'patched 22.8% less time (21.9-23.6%),
    faster', a noisy qualifier and the reason where the verdict is not a change, or why there is none."""
    for name, r in (("baseline", base), ("patched", cand)):
        if r["status"] != "ok" or not (r.get("timing") or {}).get("samples_ms"):
            return f"{name} {finding(_row(r)) or r['status']}"
    sides = judged_sides(base, cand, paired=not (base.get("params") or {}).get("graph"))  # by process identity
    d = gate_decision(sides.base, sides.cand, DEFAULT_THRESHOLD, paired=sides.paired)
    if not d.ratio == d.ratio:
        return f"{d.verdict.value}: {_SHORT.get(d.reason.value, d.why)}"
    change = (1 - d.ratio) * 100  # percent of baseline's time saved (negative: more time)
    word = "less" if change >= 0 else "more"
    text = f"patched {abs(change):.1f}% {word} time"
    if d.ci_low == d.ci_low:  # the interval in the headline's direction: + is more of what it says
        sign = 1 if change >= 0 else -1
        lo, hi = sorted((sign * (1 - d.ci_low) * 100, sign * (1 - d.ci_high) * 100))
        text += f" ({lo:.1f}-{hi:.1f}%)" if lo > 0 else f" ({lo:+.1f}% to {hi:+.1f}%)"
    verdict = d.verdict.value + (" (noisy)" if d.noisy else "")
    why = [] if d.verdict.value in ("slower", "faster") else [_SHORT.get(d.reason.value, d.reason.value)]
    if d.noisy:
        why.append(f"processes spread {d.noise:.1%}")
    if sides.rests_on:
        why.append(f"on {sides.rests_on}")
    return f"{text}, {verdict}" + (f": {', '.join(why)}" if why else "")


# The gate's reasons, short enough for a table cell (compare prints them in full).
_SHORT = {
    "ci_within_threshold": "interval within the band",
    "ci_crosses_threshold": "interval crosses the band's edge",
    "within_run_precision_only": "one process: no spread between processes measured",
    "too_few_samples": "too few samples",
    "host_changed": "the host differs between the runs",
}


def _row(record: dict) -> dict:
    return {**(record.get("params") or {}), "status": record.get("status"), "message": record.get("message")}


def _cell(r: dict | None) -> str:
    """Median ms and the half-width of its 95% CI, compact; a status where there is no timing."""
    if r is None:
        return ""
    if r["status"] != "ok" or not (r.get("timing") or {}).get("samples_ms"):
        label = finding(_row(r))
        return label.split(":")[0] if label else r["status"]  # the kind is said once below the table
    s = summarize(r["timing"]["samples_ms"])
    half = s.rel_ci_halfwidth * 100
    return f"{fmt_ms(s.median)} ±{half:.2g}%" if half < 99.5 else f"{fmt_ms(s.median)} ±{half:.0f}%"  # never 2.1e+02


def _expected(g: dict[str, dict]) -> list[str]:
    """The expected-finding labels of a group's variants (one per variant that has one)."""
    return [label for r in g.values() if (label := finding(_row(r))) is not None]


def summary_table(records: list[dict], width: int | None = WIDTH) -> str:
    """One row per case group (variants side by side): median ms ±CI% per variant, then patched
    against baseline with a direction, the 95% interval and the gate's verdict. A group whose every
    variant is an expected finding (a CUDA Graph case on a CPU) is not a row: each kind of expected
    finding is one line below the table. Fitted to `width` (present.fit; None: one line a row)."""
    if not records:
        return "no case finished: nothing to summarize"
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in records:
        impl = r.get("impl") or "mirror"  # a FastDeploy commit's cases are a row of their own
        kernel = f" [{r.get('kernel')}]" if r.get("kernel_axis") else ""  # and each kernel of a kernel axis
        groups[r["group_id"] + ("" if impl == "mirror" else f" [{impl}]") + kernel][r["params"]["variant"]] = r
    expected: dict[str, int] = defaultdict(int)
    for g in groups.values():
        for label in _expected(g):
            expected[label] += 1
    shown = {gid: g for gid, g in groups.items() if len(_expected(g)) < len(g)}
    present = [v for v in VARIANT_ORDER if any(v in g for g in shown.values())]
    head = ["case"] + present + ["patched vs baseline"]
    rows = []
    for gid in sorted(shown):
        g = shown[gid]
        verdict = _patched_vs_baseline(g["baseline"], g["patched"]) if "baseline" in g and "patched" in g else ""
        rows.append([gid, *(_cell(g.get(v)) for v in present), verdict])
    kernels = sorted({str(r.get("kernel") or "reference") for r in records})
    hidden = len(groups) - len(shown)
    lines = [
        f"attention kernel: {' + '.join(kernels) or 'none recorded'}",
        *wrap("median ms per forward of all a variant's samples, ±half-width of the 95% CI of the median (within the "
              "run); patched vs baseline: share of baseline's time saved, its 95% interval and the verdict against a "
              f"{band_text(DEFAULT_THRESHOLD)} band (compare --variants: the same gate, on process levels, so the "
              "share can differ from the two medians' quotient)", width),
    ]
    if rows:
        lines += fit.table(head, rows, width=width, id_col=0)  # a verdict that moves under its row starts "patched"
    if expected:
        rows_left = f"; {plural(hidden, 'row')} of nothing else not shown" if hidden else ""
        lines.append(f"expected findings, not failures{rows_left}:")
        lines += [f"  {label}: {_cases(n)}" for label, n in sorted(expected.items())]
    lines += wrap("the verdict's interval spans the run's worker processes (--repeats); with one process it is "
                  "that process's precision only, and a CUDA Graph case is timed in its own turn (run order "
                  "can move it)", width)
    return "\n".join(lines)


def records_line(records: list[dict], new: int, path) -> str:
    """How many records the run's file holds and their statuses, all of them (a resumed run's earlier
    ones too), and how many this invocation added."""
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        counts[r["status"]] += 1
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0])))
    earlier = len(records) - new
    added = f"; {new} written now, {earlier} by an earlier invocation (--resume)" if earlier else ""
    return f"{plural(len(records), 'record')} in {path} ({by_status or 'none'}){added}"


def _cases(n: int) -> str:
    return f"{n} case" if n == 1 else f"{n} cases"


def _no_output_finding(reason: str, ids: list[str], by_case: dict[str, dict]) -> str | None:
    """The one expected-finding label shared by every case of a 'no output' reason, else None."""
    if not reason.startswith("no output"):
        return None
    labels = {finding(_row(by_case[i.split(" ", 1)[0]])) if i.split(" ", 1)[0] in by_case else None for i in ids}
    return labels.pop() if len(labels) == 1 and None not in labels else None


def format_check(result: CheckResult, records: list[dict] | None = None, width: int | None = WIDTH) -> str:
    """The correctness verdict; every count is of cases actually compared, and every case that
    missed a comparison is named with the reason (grouped by reason), except expected findings
    (a CUDA Graph case on a CPU), counted in one line per kind. A run made without --check has no
    oracle comparison at all, said once, and no case counts as having missed it."""
    if records is not None and not records:
        return "correctness: nothing to compare: no case finished"
    total = len(records) if records is not None else None
    of = f" of {total}" if total is not None else ""
    repeats = records is not None and any(r.get("repeat", 0) for r in records)
    across = "variants, impls and worker processes (a case counted once per repeat)" if repeats else "variants and impls"
    if not result.configs_checked:
        verdict = "none (no config has two cases with an output)"
    else:
        verdict = "all identical" if not result.mismatches else f"{len(result.mismatches)} MISMATCH(ES)"
    lines = [f"correctness: {result.configs_checked} configs ({result.cases_compared}{of} cases) compared bit for bit "
             f"across {across}: {verdict}"]
    lines += [f"  {m}" for m in result.mismatches]
    if result.crashed:
        lines.append(f"crashed: {_cases(len(result.crashed))} (the impl raised or its worker died: no output to vouch for)")
        lines += [f"  {m}" for m in result.crashed]
    if result.nonfinite:
        lines.append(f"non-finite output: {_cases(len(result.nonfinite))} (NaN or inf; wrong even where variants agree)")
        lines += [f"  {m}" for m in result.nonfinite]
    no_check = f"no oracle comparison: {NO_CHECK}"
    unchecked = any(why.endswith(no_check) for _, why in result.skipped)
    if result.oracle_worst is not None:
        lines.append(f"oracle: {result.oracle_checked}{of} cases compared with the float64 reference: worst relative "
                     f"error {result.oracle_worst:.3e} (bound {result.oracle_bound:.1e})"
                     + ("" if not result.oracle_failures else f"; {len(result.oracle_failures)} over the bound"))
        lines += [f"  {m}" for m in result.oracle_failures]
        lines += [f"  kernel {k}: worst {w:.3e} over {_cases(n)}" for k, w, n in result.oracle_by_kernel]
    elif unchecked:
        lines.append(f"oracle: not run ({NO_CHECK})")
    else:
        lines.append(f"oracle: 0{of} cases compared with the float64 reference (reasons below)")
    by_reason: dict[str, list[str]] = defaultdict(list)
    for cid, why in result.skipped:
        why = "; ".join(part for part in why.split("; ") if part != no_check)  # said once above
        if why:
            by_reason[why].append(cid)
    if by_reason:
        by_case = {r["case_id"]: r for r in records or ()}
        lines.append(f"not compared: {sum(map(len, by_reason.values()))}{of} cases missed a comparison")
        for why, ids in by_reason.items():
            label = _no_output_finding(why, ids, by_case)
            if label is not None:  # an expected finding: its kind says it all, naming each adds nothing
                lines.append(f"  {_cases(len(ids))}: no output, expected: {label}")
                continue
            lines += wrap(f"{_cases(len(ids))}: {why}:", width, "  ")
            lines += [f"    {cid}" for cid in ids]
    return "\n".join(lines)
