"""`dsabench bisect`: find the FastDeploy commit that made the DSA forward slower (or, with
--improvement, faster), measuring every midpoint interleaved with GOOD and BAD in one run and
judging it through the cross-run gate.

The walk is `analysis.bisect_plan` (pure), a step's run and the state file `cli.bisect_steps`,
the text `present.bisect_text`, the chart `present.charts.bisect`. Exit codes: 0 the culprit
named; 2 bad input (one line, nothing written); 3 stopped without a single culprit (GOOD and BAD
do not differ, undecided, only skipped commits left, --max-steps, a step's run failed: the line
says which; `--resume DIR` goes on where that can help); 130 interrupted (`--resume DIR`).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from dsabench.analysis.defaults import DEFAULT_THRESHOLD
from dsabench.cli import flags
from dsabench.cli.exit_codes import EXIT_INCOMPLETE, EXIT_OK
from dsabench.cli.output import threshold as _threshold
from dsabench.errors import InputError

# Worker processes per case in a step: the gate calls a change only on an interval from the
# spread between processes (one process a side is 'undecided'), and with 3 its Student t has
# 2 degrees of freedom (t = 4.3; with 2 processes, 1 and 12.7: a several-fold change can cross a
# 25% band). An undecided step is measured once more with twice as many.
DEFAULT_REPEATS = 3
DEFAULT_MAX_STEPS = 30
# Flags that name what is bisected: a resumed bisection takes them from its state file.
FIXED_ON_RESUME = ("path", "good", "bad", "scenarios", "filter", "kernel", "improvement", "all_commits", "out",
                   "threshold", "max_time_s")


def register(sub) -> None:
    p = sub.add_parser(
        "bisect", help="find the FastDeploy commit that made the DSA forward slower (or faster)",
        description="Walk the first-parent commits from GOOD to BAD of the FastDeploy repository at PATH that touch "
                    "the files the plug-in loads; at each step measure the midpoint interleaved with GOOD and BAD in "
                    "one run and judge it through the cross-run gate (docs/ci.md, 'Find the culprit').")
    p.add_argument("path", nargs="?", metavar="PATH", help="the FastDeploy repository (the tree holding 'fastdeploy')")
    p.add_argument("good", nargs="?", metavar="GOOD", help="an older commit with the fast forward (a SHA, tag, branch)")
    p.add_argument("bad", nargs="?", metavar="BAD", help="a later commit with the slow forward")
    p.add_argument("scenarios", nargs="?", metavar="PRESET_OR_FILE", help="the cases measured (default smoke)")
    p.add_argument("--filter", type=flags.regex, help="only cases whose id matches this regular expression")
    p.add_argument("--kernel", choices=("auto", "reference", "triton", "gluon", "flashmla"), help="as for dsabench run")
    p.add_argument("--repeats", type=flags.int_in("--repeats", 1, 20),
                   help=f"worker processes per case in each step's run (default {DEFAULT_REPEATS}: the gate's interval "
                        "stands on the spread between processes; an undecided step is measured once more with twice "
                        "as many)")
    p.add_argument("--max-steps", type=flags.int_in("--max-steps", 1, 200),
                   help=f"commits measured at most before stopping (default {DEFAULT_MAX_STEPS})")
    p.add_argument("--improvement", action="store_true",
                   help="look for the commit that made the forward faster (GOOD: the older, slower commit)")
    p.add_argument("--all-commits", action="store_true",
                   help="walk every first-parent commit, not only those touching the files the plug-in loads")
    p.add_argument("--threshold", type=_threshold,
                   help="the gate's band: a ratio above 1 + threshold or below 1 / (1 + threshold) is a change "
                        f"(default {DEFAULT_THRESHOLD})")
    p.add_argument("--max-time-s", type=flags.positive_float("--max-time-s"), help="time cap of one case's timing loop")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="the bisection's directory (default results/bisect/<time>-<good>-<bad>)")
    p.add_argument("--resume", type=Path, metavar="DIR",
                   help="go on with the bisection in DIR (after an interrupt, or with more --repeats/--max-steps)")
    p.set_defaults(func=cmd_bisect)


def cmd_bisect(args) -> int:
    from dsabench.cli import bisect_steps as steps  # noqa: PLC0415

    if args.resume is not None:
        given = [f"--{n.replace('_', '-')}" if n not in ("path", "good", "bad", "scenarios") else n.upper()
                 for n in FIXED_ON_RESUME if getattr(args, n) not in (None, False)]
        if given:
            raise InputError(f"bisect --resume {args.resume}: {', '.join(given)} given; a resumed bisection keeps the "
                             "settings in its state.json (only --repeats and --max-steps may change)")
        state, out = steps.load(args.resume), Path(args.resume)
        state.plan = replace(state.plan, repeats=args.repeats or state.plan.repeats,
                             max_steps=args.max_steps or state.plan.max_steps)
        steps.save(out, state)
    else:
        state, out = _start(args)
    try:
        outcome = _walk(state, out)
    except steps.StepFailed as exc:
        print(f"dsabench bisect: stopped: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    return _finish(state, out, outcome)


def _start(args):
    """Everything checked before DIR is made: the repository, both commits, the walk, GOOD and BAD load."""
    from dsabench.analysis.bisect_plan import Commit, Plan  # noqa: PLC0415
    from dsabench.bench.impls.fastdeploy import history  # noqa: PLC0415
    from dsabench.cli import bisect_steps as steps  # noqa: PLC0415
    from dsabench.cli import kernel_choice  # noqa: PLC0415
    from dsabench.workload import scenarios  # noqa: PLC0415

    if not (args.path and args.good and args.bad):
        raise InputError("bisect: PATH, GOOD and BAD are required (or --resume DIR); e.g. dsabench bisect "
                         "../FastDeploy v2.3.0 HEAD smoke --filter decode")
    label = "bisect"
    repo, prefix = history.repository(args.path, label)
    path = str(Path(args.path).expanduser().resolve())
    sset = scenarios.load_named(args.scenarios or "smoke")  # a bad preset or file: its own one line
    scenario = args.scenarios or "smoke"
    if Path(scenario).suffix == ".toml":
        scenario = str(Path(sset.path).resolve())
    if args.filter is not None and not any(args.filter.search(c.id) for c in sset.cases):
        raise InputError(f"--filter {args.filter.pattern!r}: no case of {scenario} matches; nothing to measure")
    # a kernel a step's run would refuse (every step runs `dsabench run` on the paddle backend), refused now
    kernel_choice.refuse_unusable(*kernel_choice.asked_kernel(args.kernel, sset.kernel, str(sset.path)), "paddle", None)
    firsts = history.first_parent(repo, args.good, args.bad, label)
    good_sha = history.resolve_commit(repo, args.good, label)
    bad_sha = firsts[-1][0]
    walked = history.walked(firsts, prefix, args.all_commits)
    if not walked:
        raise InputError(f"bisect: none of the {len(firsts)} first-parent commits after GOOD {args.good!r} up to BAD "
                         f"{args.bad!r} touches the files the plug-in loads ({', '.join(history.loaded_files()[:1])} "
                         "and its imports), so both run the same code; pass --all-commits to walk them all")
    if walked[-1][0] != bad_sha:
        walked.append((bad_sha, firsts[-1][1]))
    settings = steps.Settings(path, args.good, args.bad, good_sha, bad_sha, scenario,
                              args.filter.pattern if args.filter else None, args.kernel,
                              DEFAULT_THRESHOLD if args.threshold is None else args.threshold, args.max_time_s,
                              args.all_commits,
                              len(firsts))
    for name, given, sha in (("GOOD", args.good, good_sha), ("BAD", args.bad, bad_sha)):
        why = steps.probe(settings, sha)
        if why is not None:
            raise InputError(f"bisect: {name} {given!r} ({sha[:12]}) does not load: {why}")
    plan = Plan((Commit(good_sha, history.subject(repo, good_sha)), *(Commit(s, subj) for s, subj in walked)),
                args.improvement, args.repeats or DEFAULT_REPEATS, args.max_steps or DEFAULT_MAX_STEPS)
    out = args.out if args.out is not None else steps.default_out(good_sha, bad_sha)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out}: exists and is not an empty directory; go on with it with --resume {out}, or "
                         "choose another")
    out.mkdir(parents=True, exist_ok=True)
    state = steps.State(settings, plan, [])
    steps.save(out, state)
    n = plan.last
    print(f"bisect: {n} commit(s) to walk from GOOD {good_sha[:12]} to BAD {bad_sha[:12]} "
          f"({'all' if args.all_commits else 'those touching the files the plug-in loads'}, of {len(firsts)}); "
          f"state in {out / steps.STATE}", file=sys.stderr)
    return state, out


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _walk(state, out: Path):
    """Measure until `next_action` says it is over; the state file is replaced after every step."""
    from dsabench.analysis.bisect_plan import Outcome, judge_attempt, load_failure, next_action, steps_of  # noqa: PLC0415
    from dsabench.cli import bisect_steps as steps  # noqa: PLC0415

    s, plan = state.settings, state.plan
    while True:
        act = next_action(plan, state.attempts)
        if isinstance(act, Outcome):
            return act
        sha = plan.commits[act.index].sha if act.index is not None else None
        tried = any(a.index == act.index and a.kind == "run" for a in state.attempts)
        pend = state.pending if state.pending and (state.pending["index"], state.pending["repeats"]) == \
            (act.index, act.repeats) else None
        where = f"commit {act.index}/{plan.last} {sha[:12]} {plan.commits[act.index].subject!r}" if sha else "ends only"
        if sha and not tried and pend is None:
            why = steps.probe(s, sha)
            if why is not None:
                state.attempts.append(load_failure(act.index, sha, why))
                steps.save(out, state)
                _say(f"  skip {where}: does not load: {why}")
                continue
        n = steps_of(state.attempts) + (0 if tried else 1)
        run = pend["run"] if pend else _run_id(out, n, sha, act.repeats)
        state.pending = {"index": act.index, "sha": sha, "repeats": act.repeats, "run": run}
        steps.save(out, state)
        _say(f"step {n}: {where} beside GOOD and BAD, {act.repeats} worker process(es) per case -> "
             f"{steps.run_dir(out, run)}")
        shas = [s.good_sha] + ([sha] if sha else []) + [s.bad_sha]
        done_dir = steps.run_step(s, out, run, shas, act.repeats)
        groups, env = steps.judge_run(s, done_dir, s.good_sha, s.bad_sha, sha)
        attempt = judge_attempt(act.index, sha or "", act.repeats, run, groups, plan)
        state.attempts.append(attempt)
        state.pending = None
        if not s.env:
            state.settings = s = replace(s, env=env)
        steps.save(out, state)
        _say(f"  {attempt.verdict}: {attempt.reason}")


def _run_id(out: Path, n: int, sha: str | None, repeats: int) -> str:
    from dsabench.cli import bisect_steps as steps  # noqa: PLC0415

    base = f"step{n:02d}-{sha[:12] if sha else 'ends'}-r{repeats}"
    run, k = base, 1
    while steps.run_dir(out, run).exists():
        k += 1
        run = f"{base}-{k}"
    return run


def _finish(state, out: Path, outcome) -> int:
    """Write the text, markdown and chart; print the result; the exit code."""
    from dsabench.bench.impls.fastdeploy import history  # noqa: PLC0415
    from dsabench.cli import bisect_steps as steps  # noqa: PLC0415
    from dsabench.present.bisect_text import BisectReport, format_markdown, format_text  # noqa: PLC0415
    from dsabench.store.files import write_atomic  # noqa: PLC0415

    s, plan = state.settings, state.plan
    if outcome.kind == "no_difference":
        _say(f"dsabench bisect: {outcome.message} (state in {out / steps.STATE})")
        return EXIT_INCOMPLETE
    stat = ""
    if outcome.kind == "found":
        repo, _ = history.repository(s.path, "bisect")
        stat = history.diff_stat(repo, plan.commits[outcome.culprit].sha)
    chart = ""
    if any(a.groups for a in state.attempts):
        from dsabench.present.charts.bisect import draw  # noqa: PLC0415

        env = ", ".join(v for k, v in s.env.items() if k in ("device", "ops") and v)
        chart = draw(plan, state.attempts, outcome, out, env).png.name
    rep = BisectReport(plan, tuple(state.attempts), outcome, s.first_parent_count, s.all_commits, s.threshold,
                       steps.cwd_relative(out), stat, dict(s.env), chart and str(Path(steps.cwd_relative(out)) / chart))
    text = format_text(rep)
    write_atomic(out / "bisect.txt", text.encode())
    write_atomic(out / "bisect.md", format_markdown(replace(rep, chart=chart)).encode())
    sys.stdout.write(text)
    return EXIT_OK if outcome.kind == "found" else EXIT_INCOMPLETE
