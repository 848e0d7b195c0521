"""A bisection's text, markdown and chart, from walks played on synthetic gate verdicts (no runs)."""

from __future__ import annotations

from dataclasses import replace

from analysis.test_bisect_plan import culprit_at, plan_of, walk

from dsabench.analysis.bisect_plan import Commit
from dsabench.present.bisect_text import BisectReport, format_markdown, format_text, headline, step_rows
from dsabench.present.charts.bisect import draw


def report(plan, truth, **kw) -> BisectReport:
    out, attempts = walk(plan, truth)
    return BisectReport(plan, tuple(attempts), out, plan.last + 2, False, 0.03, "results/bisect/x", **kw)


def test_the_culprit_line_names_sha_subject_and_the_effort():
    rep = report(plan_of(8), culprit_at(6, {4: "noload"}), culprit_stat=" backend.py | 3 ++-")
    assert headline(rep).startswith(f"first bad commit: {rep.plan.commits[6].sha[:12]} 'commit 6'")
    assert "1 commit skipped" in headline(rep)
    text = format_text(rep)
    assert "  backend.py | 3 ++-" in text and "the 8 of 10 first-parent commits" in text
    assert "dsabench compare --impls results/bisect/x/steps/RUN" in text


def test_every_attempt_is_a_row_and_a_load_failure_has_no_step_number():
    rep = report(plan_of(8), culprit_at(6, {4: "noload"}))
    rows = step_rows(rep)
    assert len(rows) == len(rep.attempts)
    skipped = next(r for r in rows if r[8] == "skipped")
    assert skipped[0] == "-" and skipped[9] == "No module named 'x'"
    assert [r[0] for r in rows if r[0] != "-"] == [str(i + 1) for i in range(rep.outcome.steps)]


def test_a_stop_without_a_culprit_says_why_and_names_what_is_open():
    rep = report(plan_of(4), culprit_at(3, {2: "noload"}))
    assert headline(rep).startswith("no single culprit: the first bad commit is one of 2:")
    undecided = report(plan_of(8), culprit_at(6, {4: "unsure"}))
    assert "undecided after 2 run(s)" in headline(undecided)


def test_markdown_escapes_what_a_commit_subject_can_hold():
    plan = plan_of(4)
    commits = list(plan.commits)
    commits[3] = Commit(commits[3].sha, "Fix | the <b>cache</b> `copy`")
    rep = report(replace(plan, commits=tuple(commits)), culprit_at(3))
    md = format_markdown(rep)
    assert "<b>" not in md and "&lt;b&gt;" in md and "\\|" in md
    assert md.startswith(f"### dsabench bisect: first bad commit <code>{plan.commits[3].sha[:12]}</code>")


def test_improvement_speaks_of_the_faster_commit():
    rep = report(plan_of(4, improvement=True), culprit_at(2))
    assert headline(rep).startswith("first faster commit:") and "made the forward faster" in " ".join(
        format_text(rep).split())


def test_the_text_fits_120_columns_with_each_steps_reason_under_its_row_and_whole_rows_when_wide():
    rep = report(plan_of(12), culprit_at(7, {8: "crash", 9: "noload", 10: "noload"}))
    text = format_text(rep)
    assert max(len(line) for line in text.splitlines() if not line.startswith("first ")) <= 120
    reasons = [r[9] for r in step_rows(rep)]
    assert all(r.split("; ")[0][:40] in text for r in reasons)  # each reason shown, under its row
    wide = format_text(rep, width=None).splitlines()
    assert all(any(line.rstrip().endswith(r) for line in wide) for r in reasons)  # a row each, reason last


def test_the_chart_is_saved_as_png_and_svg_with_skips_and_the_culprit(tmp_path):
    rep = report(plan_of(12), culprit_at(7, {8: "crash", 9: "noload", 10: "noload"}))
    chart = draw(rep.plan, rep.attempts, rep.outcome, tmp_path, "x86_64, dsabench")
    assert chart.png.stat().st_size > 0 and chart.svg.read_text().count("<svg") == 1
    assert "Bisection for the commit that made the forward slower" in chart.svg.read_text()
