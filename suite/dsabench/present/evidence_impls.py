"""The report's section on the implementations of a run made with `--impl`: what each one was
(SHA, subject, ops and why, stand-in modules) and each FastDeploy commit judged against the
run's first impl (`compare_impls`), so the evidence names both commits."""

from __future__ import annotations

from dsabench.analysis.compare_impls import compare_impls, impls_of
from dsabench.present.compare_text import format_markdown
from dsabench.present.text import md_code, md_text
from dsabench.store.schema import INJECT_PREFIX


def _info(records, label: str) -> dict:
    return next((r.get("impl_info") or {} for r in records if (r.get("impl") or "mirror") == label), {})


def impls_section(rs, threshold: float) -> list[str]:
    """Markdown lines; none for a run of the mirror alone."""
    impls = impls_of(rs.frame)
    if impls in ([], ["mirror"]):
        return []
    lines = ["## Implementations", "",
             "Where each forward came from (`--impl`). `ops: dsabench` means the suite's plain-Paddle kernels ran "
             "in place of FastDeploy's compiled ops and FlashMLA: the timings are then those of FastDeploy's Python "
             "lines around the suite's kernels, not of FastDeploy's kernels.", ""]
    if any(i.startswith(INJECT_PREFIX) for i in impls):
        lines += ["An injected mirror (`mirror+inject=F`) is the mirror with F x its own forward added to every "
                  "forward: a known slowdown that calibrates the paired gate (`calibrate --paired`), not code that "
                  "was measured; `mirror+inject=0` is the mirror's A/A twin.", ""]
    for label in impls:
        info = _info(rs.records, label)
        what = md_code(label)
        if info.get("sha"):
            what += f": {md_code(info['sha'])} {md_text(repr(info.get('subject', '')))}"
            what += " (local changes)" if info.get("dirty") else ""
        lines.append(f"- {what}; ops: {md_text(info.get('ops', '?'))} ({md_text(info.get('ops_reason', ''))})")
        if info.get("variant"):
            lines.append(f"  - runs as variant {md_code(info['variant'])}: {md_text(info.get('variant_from', ''))}")
        stand = sorted(m for m, src in (info.get("modules") or {}).items() if str(src).startswith("stand-in"))
        if stand:
            lines.append(f"  - stand-in modules: {', '.join(md_code(m) for m in stand)}")
    lines.append("")
    for base, cand in _pairs(impls):
        lines += [format_markdown(compare_impls(rs.frame, base, cand, threshold=threshold)).rstrip(), ""]
    return lines


def _pairs(impls: list[str]) -> list[tuple[str, str]]:
    """The first commit against each later one (a pull request's base and head), then the mirror
    against each commit (does the mirror stand for the commit's code?) and against each injected
    mirror (what the paired gate made of a known slowdown)."""
    commits = [i for i in impls if i != "mirror" and not i.startswith(INJECT_PREFIX)]
    injected = [i for i in impls if i.startswith(INJECT_PREFIX)]
    out = [(commits[0], c) for c in commits[1:]]
    return out + ([("mirror", c) for c in commits + injected] if "mirror" in impls else [])
