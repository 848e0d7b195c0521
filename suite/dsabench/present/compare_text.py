"""A `Comparison` as text: a terminal table (`format_table`) and markdown for a pull-request
comment (`format_markdown`). Decisions live in analysis/compare; this module only words them.

A pair whose failing side is an expected finding of its case (findings.finding: no CUDA Graph on
a CPU, a view refused on a multi-head cache, the tensor scale's failed capture) reads as that
finding, not as "failed", and is not bolded. A failure message shared by both sides is said once.
"""

from __future__ import annotations

import math
from typing import Collection

import pandas as pd

from dsabench.analysis.compare import EVIDENCE_COLUMNS, SEVERITY, Comparison, Reason, Verdict
from dsabench.analysis.defaults import AUTO, AUTO_FALSE_ALARM, AUTO_FLOOR
from dsabench.analysis.gate import band_text
from dsabench.present import fit
from dsabench.present.findings import finding
from dsabench.present.fit import WIDTH, wrap
from dsabench.present.text import fmt_bytes, fmt_change, fmt_ms, fmt_num, fmt_p, md_code, md_table, md_text

HEADER = ["verdict", "change", "95% CI", "p", "base ms", "cand ms", "case", "note"]
_RIGHT = {1, 3, 4, 5}
_ALIGN = ["---", "---:", "---", "---:", "---:", "---:", "---", "---"]
_EVIDENCE_LABELS = {
    "htod_count": "HtoD copies", "sync_calls": "syncs", "layout_copy_bytes": "layout copy", "peak_bytes": "peak",
}  # fmt: skip


def _side(row, side: str) -> dict:
    """One side of a table row in the shape findings.finding reads."""
    return {"status": row.get(f"{side}_status"), "message": row.get("message"), "graph": row.get(f"{side}_graph"),
            "scale_mode": row.get(f"{side}_scale_mode"), "layout_mode": row.get(f"{side}_layout_mode")}  # fmt: skip


def pair_finding(row) -> str | None:
    """The finding label of a failed pair whose every failing side is an expected finding."""
    if row.get("verdict") != Verdict.FAILED.value:
        return None
    labels = [finding(_side(row, s)) for s in ("base", "cand") if row.get(f"{s}_status") not in (None, "ok")]
    if not labels or any(label is None for label in labels):
        return None
    return labels[0] if len(set(labels)) == 1 else "; ".join(labels)


def verdict_text(row) -> str:
    """'finding' or 'n/a' for an expected result, else the verdict, with '(noisy)' beside it
    where the case's own spread exceeds the threshold."""
    label = pair_finding(row)
    if label is not None:
        return label.split(":")[0]
    return f"{row['verdict']} (noisy)" if _noisy(row) else str(row["verdict"])


def _noisy(row) -> bool:
    v = row.get("noisy")
    return bool(v) and v == v


def threshold_text(comp: Comparison) -> str:
    """'3.0% (band -2.9% to +3.0%, symmetric on the log scale)', or what --threshold auto means."""
    if comp.threshold == AUTO:
        return (f"auto (each case's band from its own noise: {AUTO_FALSE_ALARM:.0%} false alarms, at least "
                f"{band_text(AUTO_FLOOR)})")
    return f"{comp.threshold * 100:.1f}% (band {band_text(comp.threshold)}, symmetric on the log scale)"


def _ci(row) -> str:
    lo, hi = row["ci_low"], row["ci_high"]
    return "-" if lo != lo else f"{fmt_change(lo)} .. {fmt_change(hi)}"


def _fmt_evidence(v, name: str) -> str:
    return fmt_bytes(v, "?") if name.endswith("bytes") else fmt_num(v, "?")


def _evidence(row) -> str:
    """Trace figures that differ between the sides, e.g. 'HtoD copies 1 -> 0'."""
    parts = []
    for name in EVIDENCE_COLUMNS:
        b, c = row.get(f"base_{name}", math.nan), row.get(f"cand_{name}", math.nan)
        if (b == b or c == c) and not (b == c):
            parts.append(f"{_EVIDENCE_LABELS[name]} {_fmt_evidence(b, name)} -> {_fmt_evidence(c, name)}")
    return ", ".join(parts)


# Verdicts whose figures say it all: a change beyond the band. Every other row says why in words.
_SELF_EVIDENT = (Verdict.SLOWER.value, Verdict.FASTER.value)


def _note(row) -> str:
    # A confident change's figures say it all, unless the case is noisy; every other row carries its
    # reason in words. Trace figures that differ between the sides follow: the evidence of what changed.
    label = pair_finding(row)
    why = row.get("why") if isinstance(row.get("why"), str) and row.get("why") else row["message"]
    parts = [] if row["verdict"] in _SELF_EVIDENT and not _noisy(row) else [str(why)]
    if label is not None:
        parts = [f"{label} ({row['message']})"]
    if row["base_status"] == "ok" and row["cand_status"] == "ok":
        parts.append(rests_on_note(row))
        parts.append(_evidence(row))
        parts.append(host_note(row))
    return "; ".join(p for p in parts if p)


def rests_on_note(row) -> str:
    """What the verdict was judged on, when not plainly all samples: an eager case across runs on
    its host-steady chunks (gate.decide), or on all samples with the reason."""
    on = row.get("rests_on")
    return f"judged on {on}" if isinstance(on, str) and on and on != "all samples" else ""


def host_note(row) -> str:
    """What the host did, when it disturbed any chunk (analysis/host_steady.py): the disturbed
    share of each side's chunks and, for sides measured together, cand/base over the rounds where
    both were steady with the rounds it rests on. Empty on a steady host."""
    b, c = row.get("base_disturbed"), row.get("cand_disturbed")
    if not (isinstance(b, float) and isinstance(c, float)) or b != b or c != c or not (b or c):
        return ""
    text = f"host-disturbed chunks {b:.0%} base, {c:.0%} cand"
    hb, hc = row.get("base_host_bound"), row.get("cand_host_bound")
    if isinstance(hb, float) and isinstance(hc, float) and hb == hb and hc == hc:
        text += f" (host-bound {hb:.0%}, {hc:.0%} of the forward)"
    used, total, ratio = row.get("steady_rounds"), row.get("rounds"), row.get("steady_ratio")
    if isinstance(total, (int, float)) and total == total and total:
        text += (f"; steady rounds {fmt_change(ratio)} ({int(used)} of {int(total)} rounds)" if ratio == ratio
                 else f"; no round had both sides steady (of {int(total)})")
    return text


def _rows(df: pd.DataFrame) -> list[list[str]]:
    return [
        [verdict_text(r), fmt_change(r["ratio"]), _ci(r), fmt_p(r["p_value"]), fmt_ms(r["base_level_ms"]),
         fmt_ms(r["cand_level_ms"]), str(r["case"]), _note(r)]
        for r in df.to_dict("records")
    ]  # fmt: skip


def _table_of(result: Comparison | pd.DataFrame) -> tuple[pd.DataFrame, Comparison | None]:
    """The pairs, compare's severity order kept, expected findings moved after the rest: they
    need no look."""
    df, comp = (result.table, result) if isinstance(result, Comparison) else (result, None)
    if len(df):
        expected = pd.Series([pair_finding(r) is not None for r in df.to_dict("records")], index=df.index)
        df = pd.concat([df[~expected], df[expected]])
    return df, comp


def counts_line(df: pd.DataFrame) -> str:
    """'1 slower, 2 failed, 4 same, 2 of them noisy, 3 findings': verdicts in severity order, the
    noisy qualifier counted across them, the undecided withheld because the host changed
    (`host_changed`) named, expected findings apart."""
    rows = df.to_dict("records") if len(df) else []
    findings = sum(1 for r in rows if pair_finding(r) is not None)
    found: dict[str, int] = {}
    for r in rows:
        if pair_finding(r) is None:
            found[r["verdict"]] = found.get(r["verdict"], 0) + 1
    parts = [f"{found[v.value]} {v.value}" for v in SEVERITY if found.get(v.value)]
    noisy = sum(1 for r in rows if pair_finding(r) is None and _noisy(r))
    if noisy:
        parts.append(f"{noisy} of them noisy")
    withheld = sum(1 for r in rows if r.get("reason") == Reason.HOST_CHANGED.value)
    if withheld:
        parts.append(f"{withheld} withheld: the host changed between the runs")
    if findings:
        parts.append(f"{findings} expected finding{'s' if findings != 1 else ''} (n/a or finding)")
    return ", ".join(parts) or "no cases"


# Within a run, eager sides timed in the same worker processes are paired round by round (compare.pair_rows).
_PAIRED = " (eager cases: of each process's median ratio over the rounds both sides shared)"


def levels_text(comp: Comparison) -> str:
    """What the ms columns hold: the levels the change is the ratio of (gate.levels), so that
    cand ms / base ms is the change, to the printed digits; not the median of all samples."""
    where = ("; eager cases, paired by round: cand ms = base ms x the change" if comp.mode != "runs"
             else " (over the host-steady chunks where a row's verdict rests on them)")
    return (f"base ms, cand ms: each side's level, the geometric mean of its process medians{where}; cand ms / base ms "
            "is the change (not a ratio of medians of all samples)")


def p_text(comp: Comparison) -> str:
    """What the p column is: the gate's own test (`Interval.p_value`), so it agrees with the CI."""
    return (f"p: two-sided, of the gate's t test over process levels (per-process ratios where paired; earlier runs "
            f"with --history), the same test as the interval, so p < {1 - comp.confidence:.2g} exactly when the "
            f"{comp.confidence * 100:g}% CI excludes no change; not a test over all samples; '-' where no interval "
            "spans processes or runs")


def _header(comp: Comparison | None) -> list[str]:
    return HEADER if comp is None else [h if h != "95% CI" else f"{comp.confidence * 100:g}% CI" for h in HEADER]


def format_table(result: Comparison | pd.DataFrame, width: int | None = WIDTH) -> str:
    """Plain-text table for a terminal: a header line naming both sides, then one row a pair,
    fitted to `width` (present.fit: ids shortened, then the note under its row; None: as is)."""
    df, comp = _table_of(result)
    lines = []
    if comp is not None:
        lines.append(f"BASE {comp.base_label}  vs  CAND {comp.cand_label}")
        lines += wrap(
            f"device {comp.device or 'unknown'}, backend {comp.backend or 'unknown'}, "
            f"attention kernel {comp.kernel or 'unknown'}, threshold {threshold_text(comp)}, "
            f"ratio = cand / base of the geometric mean of process medians{_PAIRED if comp.mode != 'runs' else ''}; "
            f"{levels_text(comp)}; {p_text(comp)}",
            width,
        )
        for m in comp.mismatches:
            lines += wrap(f"warning: {m} (compared anyway: --allow-mismatch)", width)
        for w in comp.warnings:
            lines += wrap(f"warning: {w}", width)
    lines.append(counts_line(df))
    labels = [pair_finding(r) for r in df.to_dict("records")] if len(df) else []
    shown = df if width is None else df[[label is None for label in labels]]
    if len(shown):
        lines.extend(fit.table(_header(comp), _rows(shown), _RIGHT, width=width, id_col=HEADER.index("case")))
    if len(shown) < len(df):  # expected findings need no look: one line a kind (--wide: a row each)
        kinds: dict[str, int] = {}
        for label in labels:
            if label is not None:
                kinds[label] = kinds.get(label, 0) + 1
        lines.append("expected findings, not failures (--wide: a row each):")
        lines += [f"  {label}: {n} pair{'s' if n != 1 else ''}" for label, n in kinds.items()]
    return "\n".join(lines) + "\n"


IN_TURN_NOTE = "within-run precision only: the two sides were timed in turn, in separate turns of one run"


def _md_rows(rows: list[list[str]], in_turn: Collection[str] = ()) -> list[list[str]]:
    out = []
    for r in rows:
        word = r[0].split(" ")[0]  # the verdict without its "(noisy)" qualifier
        caveat = r[6] in in_turn and word in (Verdict.SLOWER.value, Verdict.FASTER.value)
        if caveat:  # not a regression verdict: never bold, and say why
            verdict, note = f"{r[0]} (in turn)", "; ".join(p for p in (IN_TURN_NOTE, r[7]) if p)
        else:
            verdict = f"**{r[0]}**" if word in (Verdict.SLOWER.value, Verdict.FAILED.value) else md_text(r[0])
            note = r[7]
        out.append([verdict] + [md_text(c) for c in r[1:6]] + [md_code(r[6]), md_text(note)])
    return out


def format_markdown(result: Comparison | pd.DataFrame, in_turn: Collection[str] = ()) -> str:
    """Markdown for a pull-request comment: summary line, the pairs that need a look, and the
    pairs judged "same" folded into a <details> block. Every string from a run is escaped.

    `in_turn` names pairs (table `case` keys) whose two sides were timed in separate turns of one
    run: their interval excludes run-to-run and run-order variance, so a faster or slower verdict
    is marked "(in turn)" and never bolded as a regression."""
    df, comp = _table_of(result)
    lines = []
    if comp is not None:
        what = comp.mode  # runs, variants, impls or kernels
        lines += [f"### dsabench compare ({what}): base {md_code(comp.base_label)} vs candidate "
                  f"{md_code(comp.cand_label)}", "",
                  f"Device {md_text(comp.device or 'unknown')}, backend {md_text(comp.backend or 'unknown')}, "
                  f"attention kernel {md_text(comp.kernel or 'unknown')}. "
                  "Change = ratio cand / base of the geometric mean of process medians"
                  f"{_PAIRED if what != 'runs' else ''}; "
                  f"{comp.confidence * 100:g}% CI over worker processes (and earlier runs, with --history); a change "
                  f"counts when the whole interval lies outside the band, threshold {md_text(threshold_text(comp))}, however "
                  f"noisy the case; *(noisy)*: the case's own spread exceeds the threshold. {md_text(levels_text(comp))}. "
                  f"{md_text(p_text(comp))}."]  # fmt: skip
        lines += [f"\n> **Warning:** {md_text(m)} (compared anyway with --allow-mismatch)" for m in comp.mismatches]
        lines += [f"\n> Warning: {md_text(w)}" for w in comp.warnings]
        lines.append("")
    lines += [f"**{md_text(counts_line(df))}**", ""]
    header = _header(comp)
    same = df["verdict"] == Verdict.SAME.value if len(df) else pd.Series([], dtype=bool)
    shown, folded = df[~same], df[same]
    if len(shown):
        lines += md_table(header, _md_rows(_rows(shown), in_turn), _ALIGN) + [""]
    if len(folded):
        lines += [f"<details><summary>{len(folded)} same</summary>", ""]
        lines += md_table(header, _md_rows(_rows(folded), in_turn), _ALIGN) + ["", "</details>", ""]
    return "\n".join(lines)
