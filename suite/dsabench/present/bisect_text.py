"""A bisection as text: the culprit with its subject and diff stat, the per-step table, the
stop's reason, and a markdown block for an issue or pull-request comment.

Pure formatting of what `analysis.bisect_plan` decided; the medians shown are those each step's
run measured, for one case group, and the verdicts are the gate's (`compare --impls`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dsabench.analysis.bisect_plan import BAD, GOOD, SKIP, UNDECIDED, Attempt, Outcome, Plan
from dsabench.analysis.gate import band_text
from dsabench.present import fit
from dsabench.present.text import fmt_ms, md_code, md_fenced, md_table, md_text, plural

VERDICT_TEXT = {GOOD: "like GOOD", BAD: "like BAD", SKIP: "skipped", UNDECIDED: "undecided", "ends": "ends only"}
SUBJECT_CHARS = 48


@dataclass(frozen=True)
class BisectReport:
    """Everything the text needs: the walk, its outcome, and what names the ends and the run."""

    plan: Plan
    attempts: tuple[Attempt, ...]
    outcome: Outcome
    first_parent_count: int  # first-parent commits after GOOD up to BAD
    all_commits: bool
    threshold: float | str  # the gate's: a fraction, or a rule the gate names
    out_dir: str
    culprit_stat: str = ""  # git diff --stat of the culprit
    env: dict | None = None  # device, backend, kernel, ops of the runs
    chart: str = ""  # the chart's PNG, relative path

    @property
    def what(self) -> str:
        return "faster" if self.plan.improvement else "bad"


def _commit(plan: Plan, i: int) -> str:
    c = plan.commits[i]
    return f"{c.sha[:12]} {c.subject!r}"


def _short(text: str, n: int = SUBJECT_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def shown_group(a: Attempt, plan: Plan):
    """The group whose medians a row shows: the first where BAD differed from GOOD as sought."""
    return next((g for g in a.groups if g.ends == plan.want), a.groups[0] if a.groups else None)


def step_rows(rep: BisectReport) -> list[list[str]]:
    """One row per attempt: step, commit, place, subject, processes, three medians, verdict, reason."""
    rows, seen = [], []
    plan = rep.plan
    for a in rep.attempts:
        if a.kind == "run" and a.index not in seen:
            seen.append(a.index)
        step = str(len(seen)) if a.kind == "run" else "-"
        g = shown_group(a, plan)
        commit = plan.commits[a.index] if a.index is not None else None
        rows.append([
            step, commit.sha[:12] if commit else "(ends only)",
            f"{a.index}/{plan.last}" if a.index is not None else "-",
            _short(commit.subject) if commit else "",
            str(a.repeats) if a.kind == "run" else "-",
            fmt_ms(g.good_ms) if g else "-", fmt_ms(g.mid_ms) if g else "-", fmt_ms(g.bad_ms) if g else "-",
            VERDICT_TEXT.get(a.verdict, a.verdict), a.reason,
        ])  # fmt: skip
    return rows


HEADER = ("step", "commit", "#", "subject", "procs", "GOOD ms", "commit ms", "BAD ms", "verdict", "reason")


def _walk_line(rep: BisectReport) -> str:
    n = rep.plan.last
    how = ("every first-parent commit" if rep.all_commits else
           f"the {n} of {rep.first_parent_count} first-parent commits that touch the files the plug-in loads")
    env = rep.env or {}
    where = ", ".join(f"{k} {env[k]}" for k in ("device", "backend", "kernel", "ops") if env.get(k))
    return (f"GOOD {_commit(rep.plan, 0)} .. BAD {_commit(rep.plan, n)}: walked {how}; looking for the commit that "
            f"made the forward {'faster' if rep.plan.improvement else 'slower'} by more than the gate's band "
            f"({band(rep.threshold)})" + (f"; {where}" if where else ""))


def band(threshold) -> str:
    """The gate's band as changes ('-2.9% to +3.0%' for 0.03), or a named rule such as 'auto'."""
    return band_text(threshold) if isinstance(threshold, (int, float)) else str(threshold)


def _effort(rep: BisectReport) -> str:
    o = rep.outcome
    skipped = sum(1 for a in rep.attempts if a.verdict == SKIP)
    return f"{plural(o.steps, 'step')}, {plural(o.runs, 'run')}, {plural(skipped, 'commit')} skipped"


def headline(rep: BisectReport) -> str:
    """The one line that says what was found (or why nothing was)."""
    o = rep.outcome
    if o.kind == "found":
        return f"first {rep.what} commit: {_commit(rep.plan, o.culprit)} ({_effort(rep)})"
    return f"no single culprit: {o.message} ({_effort(rep)})"


def _medians_note(rep: BisectReport) -> str:
    groups = {g.group for a in rep.attempts for g in a.groups if g.ends == rep.plan.want}
    shown = sorted(groups)[:1]
    return ("ms: median per forward in that step's run (GOOD, the commit and BAD measured interleaved in one worker) "
            f"of case group {shown[0] if shown else '-'}" + (f" (+{len(groups) - 1} more in {rep.out_dir}/state.json)"
                                                             if len(groups) > 1 else "")
            + "; the verdicts are the gate's on each pair, not a reading of these medians")


def format_text(rep: BisectReport, width: int | None = fit.WIDTH) -> str:
    """The bisection for a terminal or a CI log, fitted to `width` (present.fit: a step's reason
    under its row where the row would be wider; None: one line a row)."""
    lines = [*fit.wrap(_walk_line(rep), width), "", headline(rep)]
    if rep.outcome.kind == "found" and rep.culprit_stat:
        lines += ["  " + ln for ln in rep.culprit_stat.splitlines()]
    lines += ["", *fit.table(HEADER, step_rows(rep), right=(0, 4, 5, 6, 7), width=width),
              *fit.wrap(_medians_note(rep), width), ""]
    lines += [f"every step's run is in {rep.out_dir}/steps/; re-judge one with:",  # the command whole, to paste
              f"  dsabench compare --impls {rep.out_dir}/steps/RUN --base-impl {rep.plan.commits[0].sha[:12]} "
              "--cand-impl SHA"]
    if rep.chart:
        lines.append(f"chart of the medians along the commits walked: {rep.chart}")
    return "\n".join(lines) + "\n"


def format_markdown(rep: BisectReport) -> str:
    """A block to paste into an issue or pull-request comment."""
    o, plan = rep.outcome, rep.plan
    if o.kind == "found":
        c = plan.commits[o.culprit]
        title = f"### dsabench bisect: first {rep.what} commit {md_code(c.sha[:12])} {md_text(c.subject)}"
    else:
        title = f"### dsabench bisect: no single culprit ({md_text(o.kind)})"
    lines = [title, "", md_text(_walk_line(rep)), "", md_text(headline(rep)), ""]
    if o.kind == "found" and rep.culprit_stat:
        lines += [*md_fenced(rep.culprit_stat), ""]
    rows = [[md_text(x) for x in r] for r in step_rows(rep)]
    lines += md_table(HEADER, rows, ["---:", "---", "---:", "---", "---:", "---:", "---:", "---:", "---", "---"])
    lines += ["", md_text(_medians_note(rep)), ""]
    if rep.chart:
        lines += [f"![medians along the commits walked]({rep.chart})", ""]
    lines.append(f"Every step is an ordinary run in {md_code(rep.out_dir + '/steps/')}; re-judge one with "
                 f"{md_code('dsabench compare --impls RUN --base-impl GOOD --cand-impl SHA')}.")
    return "\n".join(lines) + "\n"
