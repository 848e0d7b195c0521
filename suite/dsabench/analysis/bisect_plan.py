"""The bisection's walk over commits: pure decisions from judged steps, no git, no runs, no I/O.

A bisection is a list of commits, `Plan.commits`: index 0 is GOOD, the last is BAD (or the last
commit that touched the files the plug-in loads, which runs BAD's code). Each measured step puts
one commit in between (the midpoint) in one run beside both ends, and the gate's verdicts on that
run are turned into a verdict on the midpoint (`classify_mid`): like GOOD, like BAD, skip (it does
not run), or undecided with a reason. `next_action` reads every step so far and says what to
measure next, or why it is done. The state is only the attempts: resuming is calling
`next_action` again on the attempts read back from disk.

Directions: without `improvement` the change sought is a slowdown (BAD slower than GOOD); with
it, a speed-up. `want` is the verdict BAD earns against GOOD, `other` the opposite one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

# Attempts at one commit before an undecided verdict becomes a stop: the first at the plan's
# repeats, one more at twice as many worker processes. More would make a noisy machine look
# like evidence; the stop names the command that measures with more.
MAX_ATTEMPTS = 2
MAX_REPEATS = 20  # the largest --repeats `dsabench run` takes

GOOD, BAD, SKIP, UNDECIDED = "good", "bad", "skip", "undecided"


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str


@dataclass(frozen=True)
class GroupJudgement:
    """One case group of one step's run: the gate's verdicts on its three pairings.

    ends: BAD against GOOD; vs_good: the midpoint against GOOD; vs_bad: the midpoint against BAD
    (cand is always the later commit named, so 'slower' means slower than the base). Empty
    vs_good/vs_bad when the step measured the ends only. mid_status is the midpoint's record
    status; the messages are the gate's own (interval and band) or the failure's text.
    """

    group: str
    ends: str
    vs_good: str = ""
    vs_bad: str = ""
    mid_status: str = "ok"
    ends_message: str = ""
    good_message: str = ""
    bad_message: str = ""
    good_ms: float = math.nan
    mid_ms: float = math.nan
    bad_ms: float = math.nan


@dataclass(frozen=True)
class Attempt:
    """One try at a commit: a run (kind 'run') or a failed load (kind 'load', no run).

    index is the commit's place in Plan.commits, None for a run of the ends alone. ends says
    whether GOOD and BAD differed in this run ('differ', 'same', 'unsure', '' without a run).
    """

    index: int | None
    sha: str
    kind: str
    verdict: str
    reason: str
    retry: bool = False
    repeats: int = 0
    run: str = ""
    ends: str = ""
    ends_reason: str = ""
    groups: tuple[GroupJudgement, ...] = ()


@dataclass(frozen=True)
class Plan:
    commits: tuple[Commit, ...]
    improvement: bool = False
    repeats: int = 1
    max_steps: int = 30

    @property
    def last(self) -> int:
        return len(self.commits) - 1

    @property
    def want(self) -> str:
        return "faster" if self.improvement else "slower"

    @property
    def other(self) -> str:
        return "slower" if self.improvement else "faster"


@dataclass(frozen=True)
class Measure:
    """Measure commit `index` (None: the ends only) beside GOOD and BAD with `repeats` processes."""

    index: int | None
    repeats: int


@dataclass(frozen=True)
class Outcome:
    """Why the walk stopped. kind: found | range | undecided | no_difference | max_steps.

    culprit: the first commit like BAD (found); candidates: the commits it may be (range: the
    skipped ones and the first like BAD; undecided and max_steps: everything still open).
    """

    kind: str
    message: str
    culprit: int | None = None
    candidates: tuple[int, ...] = ()
    lo: int = 0
    hi: int = 0
    steps: int = 0
    runs: int = 0


# ------------------------------------------------------------------------------ classification


def _counts(verdicts) -> str:
    found: dict[str, int] = {}
    for v in verdicts:
        found[v or "none"] = found.get(v or "none", 0) + 1
    return ", ".join(f"{n} {v}" for v, n in sorted(found.items()))


def judge_ends(groups: tuple[GroupJudgement, ...], plan: Plan) -> tuple[str, frozenset[str], str]:
    """('differ', the groups where BAD is `want` against GOOD, why) when there is at least one;
    ('same', ..) when every group is confidently same or the other way; else ('unsure', ..)."""
    signal = frozenset(g.group for g in groups if g.ends == plan.want)
    if signal:
        return "differ", signal, f"BAD {plan.want} than GOOD in {len(signal)} of {len(groups)} case group(s)"
    counts = _counts(g.ends for g in groups)
    if groups and all(g.ends in ("same", plan.other) for g in groups):
        hint = " (use --improvement to look for the faster commit)" if any(g.ends == "faster" for g in groups) \
            and not plan.improvement else ""
        return "same", signal, f"GOOD and BAD do not differ by more than the threshold ({counts}){hint}"
    return "unsure", signal, f"GOOD and BAD not shown to differ ({counts or 'no case group'})"


def _brief(message: str) -> str:
    """A gate message without what its interval stands on: the change, its interval and the band
    (the whole message stays in the state file)."""
    return str(message).split("; ")[0]


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "(no message)")


def _failed(groups) -> tuple[str, str, bool] | None:
    """SKIP with the failure's first line when the midpoint did not run in one of `groups`."""
    failed = [g for g in groups if g.mid_status != "ok"]
    if not failed:
        return None
    g = failed[0]
    return SKIP, f"{g.mid_status} in {len(failed)} of {len(groups)} case group(s): {_first_line(g.good_message)}", False


def classify_mid(groups: tuple[GroupJudgement, ...], signal: frozenset[str], plan: Plan) -> tuple[str, str, bool]:
    """(verdict, reason, retry) of the midpoint on the groups where GOOD and BAD differ.

    Each side rests on a confident verdict that the other end does not contradict. like GOOD:
    same as GOOD or `other` against it, and not same or `want` against BAD; or `other` against BAD
    (apart from BAD on GOOD's side), and not `want` against GOOD. like BAD mirrors it. So a
    machine too noisy to call a midpoint 'same' as one end still places it by its distance from
    the other. A midpoint that fails in any of those groups is skipped (it cannot be measured, as
    `git bisect skip`). `want` against GOOD and `other` against BAD (between the two), or groups
    that disagree, is a confident contradiction: undecided, no retry, since more processes would
    not change it. Anything else is undecided and worth more repeats.
    """
    want, other = plan.want, plan.other
    sig = [g for g in groups if g.group in signal]
    if not sig:
        return UNDECIDED, "no case group where GOOD and BAD differ", True
    skipped = _failed(sig)
    if skipped:
        return skipped
    kinds = {}
    for g in sig:
        if g.vs_good == want and g.vs_bad == other:
            kinds[g.group] = "between"
        elif (g.vs_good in ("same", other) and g.vs_bad not in ("same", want)) or \
                (g.vs_bad == other and g.vs_good != want):
            kinds[g.group] = GOOD
        elif (g.vs_bad in ("same", want) and g.vs_good not in ("same", other)) or \
                (g.vs_good == want and g.vs_bad != other):
            kinds[g.group] = BAD
        else:
            kinds[g.group] = "unsure"
    first = sig[0]
    detail = f"vs GOOD {first.vs_good} {_brief(first.good_message)}; vs BAD {first.vs_bad} {_brief(first.bad_message)}"
    more = f" (and {len(sig) - 1} more case group(s) alike)" if len(sig) > 1 else ""
    found = set(kinds.values())
    if found == {GOOD}:
        return GOOD, f"like GOOD: {detail}{more}", False
    if found == {BAD}:
        return BAD, f"like BAD: {detail}{more}", False
    if "between" in found:
        g = next(g for g in sig if kinds[g.group] == "between")
        return UNDECIDED, (f"between GOOD and BAD in {g.group}: {want} than GOOD and {other} than BAD, so the change "
                           "came in more than one commit; bisect each part with its own GOOD and BAD"), False
    if found == {GOOD, BAD}:
        ng = sum(1 for k in kinds.values() if k == GOOD)
        return UNDECIDED, (f"case groups disagree: {ng} like GOOD, {len(kinds) - ng} like BAD; more than one change, "
                           "bisect each with --filter"), False
    g = next(g for g in sig if kinds[g.group] == "unsure")
    return UNDECIDED, (f"{g.group}: vs GOOD {g.vs_good or 'none'} {_brief(g.good_message)}; vs BAD "
                       f"{g.vs_bad or 'none'} {_brief(g.bad_message)}"), True


def judge_attempt(index: int | None, sha: str, repeats: int, run: str, groups: tuple[GroupJudgement, ...],
                  plan: Plan) -> Attempt:
    """A measured run as an Attempt: the ends first, then the midpoint on the groups where they differ."""
    ends, signal, ends_reason = judge_ends(groups, plan)
    if index is None:
        verdict, reason, retry = ("ends", ends_reason, ends == "unsure")
    elif ends != "differ":
        verdict, reason, retry = _failed(groups) or (UNDECIDED, f"{ends_reason} in this run", ends == "unsure")
    else:
        verdict, reason, retry = classify_mid(groups, signal, plan)
    return Attempt(index, sha, "run", verdict, reason, retry, repeats, run, ends, ends_reason, groups)


def load_failure(index: int, sha: str, reason: str) -> Attempt:
    """A midpoint that does not load (missing file, new import, ...): skipped without a run."""
    return Attempt(index, sha, "load", SKIP, reason)


# ------------------------------------------------------------------------------ the walk


def bracket(plan: Plan, attempts) -> tuple[int, int]:
    """(last commit known like GOOD, first known like BAD): the culprit is in (lo, hi]."""
    lo = max((a.index for a in attempts if a.verdict == GOOD), default=0)
    hi = min((a.index for a in attempts if a.verdict == BAD), default=plan.last)
    return lo, hi


def _skipped(attempts) -> set[int]:
    return {a.index for a in attempts if a.verdict == SKIP}


def _middle(plan: Plan, attempts, lo: int, hi: int) -> int | None:
    """The commit of (lo, hi) nearest the middle that is neither skipped nor judged; ties: the older."""
    done = {a.index for a in attempts if a.verdict in (GOOD, BAD, SKIP)}
    open_ = [i for i in range(lo + 1, hi) if i not in done]
    if not open_:
        return None
    mid = (lo + hi) / 2
    return min(open_, key=lambda i: (abs(i - mid), i))


def _retry_repeats(plan: Plan, tries: list[Attempt]) -> int | None:
    """More repeats for an undecided commit, or None when its tries at the plan's repeats or more
    are spent (a resume with a higher --repeats opens it again)."""
    counted = [a for a in tries if a.repeats >= plan.repeats]
    if len(counted) >= MAX_ATTEMPTS:
        return None
    nxt = max(plan.repeats, 2 * tries[-1].repeats) if counted else plan.repeats
    return nxt if nxt <= MAX_REPEATS else None


def steps_of(attempts) -> int:
    """Commits measured by a run (a commit retried with more repeats is one step; the ends-only run is one)."""
    seen = []
    for a in attempts:
        if a.kind == "run" and a.index not in seen:
            seen.append(a.index)
    return len(seen)


def next_action(plan: Plan, attempts) -> Measure | Outcome:
    """What to measure next, or why the walk is over. Pure: the same attempts give the same answer."""
    attempts = list(attempts)
    runs = [a for a in attempts if a.kind == "run"]
    steps = steps_of(attempts)
    lo, hi = bracket(plan, attempts)

    def done(kind: str, message: str, culprit=None, candidates=()) -> Outcome:
        return Outcome(kind, message, culprit, tuple(candidates), lo, hi, steps, len(runs))

    open_ = tuple(i for i in range(lo + 1, hi + 1))
    if not any(a.ends == "differ" for a in runs):
        if not runs:
            if plan.last == 1:
                return Measure(None, plan.repeats)
            first = _middle(plan, attempts, 0, plan.last)
            return Measure(first, plan.repeats) if first is not None else Measure(None, plan.repeats)
        last = runs[-1]
        if last.ends == "same":
            return done("no_difference", last.ends_reason + "; nothing to bisect")
        more = _retry_repeats(plan, runs)  # every run so far failed to show the ends apart
        if more is None:
            return done("no_difference", f"{last.ends_reason} after {len(runs)} run(s) with up to "
                                         f"{max(a.repeats for a in runs)} worker process(es) per case; nothing to bisect")
        again = last.index if last.verdict != SKIP else _middle(plan, attempts, 0, plan.last)
        return Measure(again, more)
    last = attempts[-1]
    if last.kind == "run" and last.verdict in (UNDECIDED, "ends") and last.retry:
        tries = [a for a in runs if a.index == last.index]
        more = _retry_repeats(plan, tries)
        if more is not None:
            return Measure(last.index, more)
    if last.kind == "run" and last.verdict == UNDECIDED:
        c = plan.commits[last.index]
        return done("undecided", f"stopped at {c.sha[:12]} ({c.subject!r}), undecided after "
                                 f"{sum(1 for a in runs if a.index == last.index)} run(s): {last.reason}", None, open_)
    if hi - lo == 1:
        return done("found", f"first {'faster' if plan.improvement else 'bad'} commit: {plan.commits[hi].sha[:12]}",
                    hi, (hi,))
    nxt = _middle(plan, attempts, lo, hi)
    if nxt is None:
        skipped = sorted(i for i in _skipped(attempts) if lo < i < hi)
        return done("range", f"the first {'faster' if plan.improvement else 'bad'} commit is one of {len(skipped) + 1}: "
                             f"{', '.join(plan.commits[i].sha[:12] for i in skipped + [hi])} (the others could not be "
                             "measured)", None, tuple(skipped) + (hi,))
    if steps >= plan.max_steps:
        return done("max_steps", f"stopped after {steps} step(s) (--max-steps {plan.max_steps}); {len(open_)} commit(s) "
                                 "left, resume with a larger --max-steps", None, open_)
    return Measure(nxt, plan.repeats)


# ------------------------------------------------------------------------------ state as JSON


def attempt_to_dict(a: Attempt) -> dict:
    return asdict(a)


def attempt_from_dict(d: dict) -> Attempt:
    groups = tuple(GroupJudgement(**g) for g in d.get("groups") or ())
    return replace(Attempt(**{k: v for k, v in d.items() if k != "groups"}), groups=groups)


def plan_to_dict(p: Plan) -> dict:
    return {"commits": [asdict(c) for c in p.commits], "improvement": p.improvement, "repeats": p.repeats,
            "max_steps": p.max_steps}


def plan_from_dict(d: dict) -> Plan:
    return Plan(tuple(Commit(**c) for c in d["commits"]), bool(d["improvement"]), int(d["repeats"]),
                int(d["max_steps"]))


__all__ = [
    "BAD", "GOOD", "MAX_ATTEMPTS", "MAX_REPEATS", "SKIP", "UNDECIDED", "Attempt", "Commit", "GroupJudgement",
    "Measure", "Outcome", "Plan", "attempt_from_dict", "attempt_to_dict", "bracket", "classify_mid",
    "judge_attempt", "judge_ends", "load_failure", "next_action", "plan_from_dict", "plan_to_dict", "steps_of",
]  # fmt: skip
