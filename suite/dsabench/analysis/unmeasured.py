"""Cases a run planned and never recorded, told apart from cases it left out on purpose.

A case only in BASE passes `compare --fail-on-regression` when CAND never planned it: its filter
left it out, its shard is another, or its preset no longer has it. It does not pass when CAND
planned it and holds no record (killed, out of time, a worker lost, a shard job that never ran or
was never gathered): that is no evidence of no regression (`unjudged`, exit 4). What CAND planned
is read from its manifests (`store.run_plans`): the filter (the case id must match it), the shard
of N (`workload.shards.shard_of` of the case's group must be a loaded shard), and per directory
the count of planned keys against the keys it holds. What this cannot see: a case a later preset
dropped reads as left out on purpose. Pure functions.
"""

from __future__ import annotations

import re

from dsabench.store.run_plans import PlanDir, RunPlan
from dsabench.store.schema import is_fastdeploy
from dsabench.workload.shards import shard_of


def _shards(plan: RunPlan) -> int | None:
    counts = {d.shard[1] for d in plan.dirs if d.shard}
    return counts.pop() if len(counts) == 1 else None  # several N: runs of one id made apart, not judged here


def _short(plan: RunPlan, dirs: list[PlanDir]) -> str | None:
    """Why `dirs` (the directories of one shard, or of an unsharded run) hold less than they planned."""
    planned = max((d.planned for d in dirs if d.planned is not None), default=None)
    held = len(frozenset().union(*(d.keys for d in dirs)))  # copies of one run: their keys together
    if planned is None or held >= planned:
        return None
    where = ", ".join(str(d.path) for d in dirs)
    return (f"{where} holds records of {held} of its {planned} planned cases (stopped early; "
            f"'dsabench run --resume {dirs[0].path}' measures the rest)")


def _absent(plan: RunPlan, k: int, n: int) -> str:
    return f"shard {k}/{n} of run {plan.run_id!r} not loaded (a job that never ran, or its directory not gathered)"


def unmeasured(plan: RunPlan, case_id: str, group_id: str | None, impl: str | None = None) -> str | None:
    """Why a case only in BASE was planned by this CAND and not recorded, or None where CAND never
    planned it (its filter, its shard, its preset). A FastDeploy commit's case carries the variant
    its code runs, not the one the filter chose among the scenario's cases, so the filter is not
    asked of it: a run that stopped short may have lost it."""
    if plan.filter and not is_fastdeploy(impl):
        try:
            if not re.search(plan.filter, case_id):
                return None
        except re.error:
            pass  # a pattern this Python cannot compile: the case may have been planned
    dirs = list(plan.dirs)
    n = _shards(plan)
    if n is not None:
        k = shard_of(group_id if isinstance(group_id, str) and group_id else case_id, n) + 1  # NaN: a record without one
        dirs = [d for d in dirs if d.shard and d.shard[0] == k]
        if not dirs:
            return _absent(plan, k, n)
    return _short(plan, dirs)


def run_gaps(plan: RunPlan, absent_shards: bool = True) -> tuple[str, ...]:
    """What the run planned and does not hold, in words: each shard (or the unsharded run) holding
    fewer keys than planned, and (`absent_shards`) each absent shard of N. A comparison within one
    run leaves absent shards out: a matrix job gating its own shard compares what that shard
    planned, and a shard with no case makes no directory at all."""
    n = _shards(plan)
    if n is None:
        short = _short(plan, [d for d in plan.dirs if not d.shard] or list(plan.dirs))
        return (short,) if short else ()
    out = []
    for k in range(1, n + 1):
        mine = [d for d in plan.dirs if d.shard and d.shard[0] == k]
        why = _short(plan, mine) if mine else _absent(plan, k, n) if absent_shards else None
        if why:
            out.append(why)
    return tuple(out)
