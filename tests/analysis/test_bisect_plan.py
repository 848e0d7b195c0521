"""The bisection's walk as a specification, on synthetic gate verdicts (no git, no runs).

`walk` plays a history: each commit's truth ('good', 'bad', 'crash', 'noload', 'unsure',
'between') becomes the verdicts the gate would give on a step's run, and `next_action` decides.
"""

from __future__ import annotations

import json
import math

import pytest

from dsabench.analysis.bisect_plan import (
    BAD, GOOD, MAX_ATTEMPTS, SKIP, UNDECIDED, Commit, GroupJudgement, Measure, Outcome, Plan, attempt_from_dict,
    attempt_to_dict, classify_mid, judge_attempt, judge_ends, load_failure, next_action, plan_from_dict,
    plan_to_dict,
)  # fmt: skip

GROUP = "decode.b1.hot.eager"


def plan_of(n: int, **kw) -> Plan:
    return Plan(tuple(Commit(f"{i:02x}" * 20, f"commit {i}") for i in range(n + 1)), **kw)


def groups_for(truth: str, plan: Plan, ends: str | None = None, repeats: int = 1) -> tuple[GroupJudgement, ...]:
    """The gate's verdicts on one run of GOOD, a midpoint whose truth is `truth`, and BAD."""
    want, other = plan.want, plan.other
    ends = want if ends is None else ends
    vs = {
        GOOD: ("same", other), BAD: (want, "same"), "between": (want, other),
        "unsure": ("undecided", "undecided"), "crash": ("failed", "failed"), None: ("", ""),
    }[truth]
    status = "crashed" if truth == "crash" else "ok"
    return (GroupJudgement(GROUP, ends, vs[0], vs[1], status, "ends msg", "cand crashed: boom" if status != "ok"
                           else f"{vs[0]} msg; basis", f"{vs[1]} msg; basis", 1.0, 1.0, 3.0),)


def walk(plan: Plan, truth, attempts=(), ends=None, limit: int = 100) -> tuple[Outcome, list]:
    """Run the walk to its end; truth(i, repeats) -> the midpoint's truth ('noload' never runs)."""
    attempts = list(attempts)
    for _ in range(limit):
        act = next_action(plan, attempts)
        if isinstance(act, Outcome):
            return act, attempts
        i = act.index
        t = truth(i, act.repeats) if i is not None else None
        if t == "noload":
            attempts.append(load_failure(i, plan.commits[i].sha, "No module named 'x'"))
            continue
        e = ends(act.repeats) if ends else None
        attempts.append(judge_attempt(i, plan.commits[i].sha if i is not None else "", act.repeats, f"run{len(attempts)}",
                                      groups_for(t, plan, e), plan))
    raise AssertionError("the walk did not end")


def culprit_at(c: int, special=None):
    special = special or {}
    return lambda i, r: special.get(i, BAD if i >= c else GOOD)


# ---- finding the culprit ---------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 17))
def test_every_culprit_position_is_found_within_ceil_log2_n_plus_one_steps(n):
    for c in range(1, n + 1):
        out, attempts = walk(plan_of(n), culprit_at(c))
        assert (out.kind, out.culprit) == ("found", c)
        assert out.steps <= math.ceil(math.log2(n)) + 1 and out.runs == out.steps


def test_one_commit_between_good_and_bad_is_judged_by_one_run_of_the_ends():
    out, attempts = walk(plan_of(1), culprit_at(1))
    assert [a.index for a in attempts] == [None] and (out.kind, out.culprit, out.runs) == ("found", 1, 1)


def test_broken_commits_are_skipped_and_the_culprit_still_found_in_few_steps():
    # the test fixture's history: culprit 7, a crash at 8, two commits that do not load at 9 and 10
    special = {8: "crash", 9: "noload", 10: "noload"}
    out, attempts = walk(plan_of(12), culprit_at(7, special))
    assert (out.kind, out.culprit) == ("found", 7)
    assert {a.index for a in attempts if a.verdict == SKIP} == {8, 9, 10}
    assert [a.kind for a in attempts if a.index in (9, 10)] == ["load", "load"]
    assert out.runs <= math.ceil(math.log2(12)) + 1


def test_a_crashing_midpoint_is_skipped_with_the_failures_text():
    plan = plan_of(4)
    a = judge_attempt(2, "s", 1, "r", groups_for("crash", plan), plan)
    assert a.verdict == SKIP and "crashed" in a.reason and "boom" in a.reason and not a.retry


def test_when_the_only_commits_left_were_skipped_the_range_is_named_not_guessed():
    out, _ = walk(plan_of(4), culprit_at(3, {2: "noload"}))
    assert out.kind == "range" and out.culprit is None and out.candidates == (2, 3)


def test_improvement_looks_for_the_commit_that_made_it_faster():
    plan = plan_of(8, improvement=True)
    out, attempts = walk(plan, culprit_at(5))
    assert (out.kind, out.culprit) == ("found", 5)
    assert all(g.ends == "faster" for a in attempts for g in a.groups)


# ---- undecided: more repeats, then a stated stop -----------------------------------------------


def test_an_undecided_midpoint_is_measured_again_with_twice_the_processes_then_the_walk_stops():
    plan = plan_of(8, repeats=2)
    out, attempts = walk(plan, culprit_at(6, {4: "unsure"}))
    at4 = [a for a in attempts if a.index == 4]
    assert [a.repeats for a in at4] == [2, 4] and len(at4) == MAX_ATTEMPTS
    assert all(a.verdict == UNDECIDED and a.retry for a in at4)
    assert out.kind == "undecided" and out.culprit is None
    assert out.candidates == tuple(range(1, 9)) and "undecided after 2 run(s)" in out.message


def test_an_undecided_midpoint_settled_by_more_processes_lets_the_walk_go_on():
    out, attempts = walk(plan_of(8), lambda i, r: "unsure" if (i == 4 and r == 1) else culprit_at(6)(i, r))
    assert (out.kind, out.culprit) == ("found", 6)
    assert [a.repeats for a in attempts if a.index == 4] == [1, 2]
    assert out.steps < out.runs  # the retry is one step, two runs


def test_resuming_with_more_repeats_reopens_an_undecided_stop():
    plan = plan_of(8)
    out, attempts = walk(plan, culprit_at(6, {4: "unsure"}))
    assert out.kind == "undecided"
    act = next_action(Plan(plan.commits, repeats=5), attempts)
    assert act == Measure(4, 5)


def test_a_midpoint_between_good_and_bad_stops_at_once_with_the_reason():
    out, attempts = walk(plan_of(8), culprit_at(6, {4: "between"}))
    assert out.kind == "undecided" and len([a for a in attempts if a.index == 4]) == 1
    assert "more than one commit" in out.message


@pytest.mark.parametrize("vs_good, vs_bad, verdict", [
    ("slower", "same", BAD), ("slower", "undecided", BAD), ("slower", "slower", BAD), ("undecided", "same", BAD),
    ("undecided", "slower", BAD),
    ("same", "faster", GOOD), ("faster", "undecided", GOOD), ("same", "undecided", GOOD), ("undecided", "faster", GOOD),
    ("faster", "faster", GOOD),
    ("undecided", "undecided", UNDECIDED), ("same", "same", UNDECIDED), ("same", "slower", UNDECIDED),
    ("faster", "same", UNDECIDED), ("slower", "faster", UNDECIDED),
])  # fmt: skip
def test_a_midpoint_is_placed_by_a_confident_verdict_against_one_end_that_the_other_does_not_contradict(
        vs_good, vs_bad, verdict):
    plan = plan_of(4)
    g = (GroupJudgement(GROUP, "slower", vs_good, vs_bad),)
    assert classify_mid(g, frozenset({GROUP}), plan)[0] == verdict


def test_case_groups_that_disagree_are_undecided_without_a_retry():
    plan = plan_of(4)
    g = groups_for(GOOD, plan) + tuple(GroupJudgement("other", "slower", "slower", "same") for _ in range(1))
    verdict, reason, retry = classify_mid(g, frozenset({GROUP, "other"}), plan)
    assert (verdict, retry) == (UNDECIDED, False) and "disagree" in reason


def test_only_the_groups_where_good_and_bad_differ_decide():
    plan = plan_of(4)
    quiet = GroupJudgement("quiet", "same", "undecided", "undecided")
    a = judge_attempt(2, "s", 1, "r", groups_for(BAD, plan) + (quiet,), plan)
    assert a.verdict == BAD and a.ends == "differ"


# ---- the ends must differ first ------------------------------------------------------------


def test_good_and_bad_the_same_stops_after_the_first_run_in_one_line():
    out, attempts = walk(plan_of(8), culprit_at(4), ends=lambda r: "same")
    assert out.kind == "no_difference" and out.runs == 1 and "\n" not in out.message
    assert "do not differ" in out.message


def test_good_and_bad_not_shown_apart_is_measured_again_then_stops():
    out, attempts = walk(plan_of(8), culprit_at(4), ends=lambda r: "undecided")
    assert out.kind == "no_difference" and [a.repeats for a in attempts] == [1, 2]
    assert "not shown to differ" in out.message


def test_good_and_bad_told_apart_by_more_processes_go_on_to_the_culprit():
    out, attempts = walk(plan_of(8), culprit_at(4), ends=lambda r: "undecided" if r == 1 else "slower")
    assert (out.kind, out.culprit) == ("found", 4)


def test_a_bad_that_is_faster_points_to_improvement():
    plan = plan_of(4)
    state, _, why = judge_ends(groups_for(GOOD, plan, ends="faster"), plan)
    assert state == "same" and "--improvement" in why


# ---- limits, resume and the state file ---------------------------------------------------------


def test_max_steps_stops_with_the_open_range_and_a_larger_limit_goes_on():
    plan = plan_of(16, max_steps=2)
    out, attempts = walk(plan, culprit_at(11))
    assert out.kind == "max_steps" and out.steps == 2 and 11 in out.candidates
    out2, _ = walk(Plan(plan.commits, max_steps=30), culprit_at(11), attempts)
    assert (out2.kind, out2.culprit) == ("found", 11)


def test_the_state_survives_json_and_gives_the_same_next_step():
    plan = plan_of(12)
    _, attempts = walk(plan_of(12, max_steps=2), culprit_at(7, {8: "crash", 9: "noload"}))
    text = json.dumps({"plan": plan_to_dict(plan), "attempts": [attempt_to_dict(a) for a in attempts]})
    back = json.loads(text)
    plan2, attempts2 = plan_from_dict(back["plan"]), [attempt_from_dict(a) for a in back["attempts"]]
    assert plan2 == plan and attempts2 == attempts
    assert next_action(plan2, attempts2) == next_action(plan, attempts)
