"""`dsabench history`'s output: the change points found, as text or markdown."""

from __future__ import annotations

from dsabench.analysis.history import History
from dsabench.present.text import md_table, md_text, text_table


def format_history(history: History, markdown: bool = False) -> str:
    """The change points, one line each: case, first run (and commit) showing it, before/after."""
    runs = history.series["run_id"].nunique()
    cases = history.series.groupby(["device_name", "backend", "case_id"]).ngroups
    head = (
        f"{len(history.change_points)} change point(s) in {cases} case series over {runs} run(s) "
        f"(E-divisive via apache-otava, p < {history.max_pvalue:g}, shift >= {history.min_change * 100:.1f}%)"
    )
    lines = [f"**{head}**" if markdown else head]
    lines.extend(f"warning: {md_text(w) if markdown else w}" for w in history.warnings)
    if not history.change_points:
        return "\n".join(lines) + "\n"
    header = ["case", "device", "backend", "first run", "commit", "before ms", "after ms", "change", "p"]
    rows = [
        [cp.case_id, cp.device_name, cp.backend, cp.run_id, (cp.commit or "-")[:12], f"{cp.before_median_ms:.4g}",
         f"{cp.after_median_ms:.4g}", f"{cp.rel_change * 100:+.1f}%", f"{cp.p_value:.1g}"]
        for cp in history.change_points
    ]  # fmt: skip
    if markdown:  # every string from a run escaped (case ids, device and backend names, run ids)
        lines += [""] + md_table(header, ([md_text(c) for c in r] for r in rows))
    else:
        lines += text_table(header, rows)
    return "\n".join(lines) + "\n"
