"""`dsabench run`: validate everything, write the manifest, hand the cases to the runner, print the summary.

Every input is validated before anything is written, so bad input never leaves a
half-written run directory.
"""

from __future__ import annotations

import re
import shutil
import sys
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from dsabench import __version__
from dsabench.cli import flags
from dsabench.cli.exit_codes import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_REGRESSION
from dsabench.errors import InputError
from dsabench.store import rundir as store

DEFAULT_OUT = Path("results") / "runs"


def register(sub) -> None:
    from dsabench.bench.protocol import CPU_PROTOCOL, GPU_PROTOCOL, MIN_SAMPLES  # noqa: PLC0415

    r = sub.add_parser("run", help="measure the cases of a preset or scenario file")
    r.add_argument("scenarios", nargs="?", default="smoke", help="preset name (smoke, pr, nightly) or a .toml file")
    r.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory that receives the run directory")
    r.add_argument("--backend", choices=["paddle", "torch"], default="paddle",
                   help="framework that runs the forward: paddle (FastDeploy's) or torch, its mirror (default paddle)")
    r.add_argument("--check", action="store_true",
                   help="compare outputs bit for bit across variants and with the float64 oracle; exit 1 on a mismatch")
    r.add_argument("--devices", type=flags.devices, help="one worker per GPU, e.g. 0,1 (default: one worker, default device)")
    r.add_argument("--shard", type=flags.shard,
                   help="run shard K of N, e.g. 1/4; cases are split by case group (the variants of one case stay "
                        "together in one shard)")
    r.add_argument("--resume", type=Path, metavar="RUN_DIR", help="finish an interrupted run without redoing finished cases")
    r.add_argument("--retry-failed", action="store_true",
                   help="with --resume: measure the cases recorded 'crashed' again (their records move to "
                        "cases.retried.jsonl)")
    r.add_argument("--filter", type=flags.regex, help="only cases whose id matches this regular expression")
    r.add_argument("--run-id", type=flags.run_id,
                   help="name of the run directory: letters, digits, '.', '_', '-' (default: time, preset and backend)")
    r.add_argument("--max-time-s", type=flags.positive_float("--max-time-s"), help="time cap of one case's timing loop")
    r.add_argument("--precision", type=flags.float_in("--precision", 0, 1, True, True, " (a fraction: 0.01 = 1%)"),
                   help="target CI half-width of the median, a fraction in (0, 1) (0.01 = 1%%)")
    r.add_argument("--min-samples", type=flags.min_samples, metavar="N",
                   help=f"samples every case takes before the precision rule may stop it: {MIN_SAMPLES} to "
                        f"{GPU_PROTOCOL.max_samples} (default {GPU_PROTOCOL.min_samples} on a GPU, "
                        f"{CPU_PROTOCOL.min_samples} on a CPU; below 6 the 95%% interval of the median is [min, max] "
                        "and covers less)")
    r.add_argument("--profile-iters", type=flags.int_in("--profile-iters", 0, 1000), default=5,
                   help="forwards in the profiled pass, 0 to 1000 (0: no trace; default 5)")
    r.add_argument("--no-interleave", action="store_true",
                   help="time each case on its own instead of interleaving the eager variants of a case")
    r.add_argument("--nvtx", action="store_true", help="keep NVTX ranges in the timed passes too (for an Nsight capture)")
    r.add_argument("--impl", action="append", metavar="IMPL",
                   help="where the forward comes from: 'mirror' (default) or 'fastdeploy:PATH[@COMMIT]' (FastDeploy's "
                        "own forward_mixed from the tree at PATH, at COMMIT through a git worktree); repeat it to "
                        "measure several interleaved per case on the same inputs; overrides [preset] impl")
    r.add_argument("--measured-checkout", type=flags.git_checkout, metavar="DIR",
                   help="FastDeploy git checkout whose commit SHA goes into the manifest")
    r.add_argument("--case-timeout-s", type=flags.positive_float("--case-timeout-s"), default=1800.0, metavar="S",
                   help="wall-clock seconds one case may take in its worker (per variant for an interleaved group) "
                        "before the worker is killed and the case recorded crashed (default 1800)")
    r.set_defaults(func=cmd_run)



def _run_id(preset: str, backend: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{re.sub(r'[^A-Za-z0-9_.-]', '_', preset)}-{backend}"


def _run_dir_name(run_id: str, shard) -> str:
    """Shards of one run share the run id (records and manifests say it) and get a directory each."""
    return run_id if shard is None else f"{run_id}-shard{shard[0]}of{shard[1]}"


def cmd_run(args) -> int:
    """The FastDeploy worktrees of --impl live until the run ends, also when it fails."""
    with ExitStack() as stack:
        return _cmd_run(args, stack)


def _cmd_run(args, stack: ExitStack) -> int:
    from dsabench.bench import env, runner  # noqa: PLC0415
    from dsabench.bench.impls.plan import plan  # noqa: PLC0415
    from dsabench.cli import impl_setup  # noqa: PLC0415
    from dsabench.store.schema import record_key  # noqa: PLC0415
    from dsabench.workload import scenarios  # noqa: PLC0415
    from dsabench.analysis.checks import check_outputs
    from dsabench.present.summary import format_check, summary_table  # noqa: PLC0415
    from dsabench.bench.worker import WorkerOptions  # noqa: PLC0415
    from dsabench.cli.device_fit import refuse_oversized  # noqa: PLC0415

    if args.profile_iters < 0:
        raise InputError(f"--profile-iters {args.profile_iters}: expected an integer >= 0")
    if args.retry_failed and args.resume is None:
        raise InputError("--retry-failed: only with --resume RUN_DIR (it measures a run's crashed cases again)")
    if args.resume is not None:
        manifest = store.read_manifest(args.resume)
        sset = scenarios.load(manifest["scenario_file"])
        if sset.sha256 != manifest["scenario_sha256"]:
            raise InputError(
                f"--resume {args.resume}: scenario file {manifest['scenario_file']} changed since the run began "
                f"(sha256 {sset.sha256[:12]} != {manifest['scenario_sha256'][:12]}); start a new run")
        run_dir, run_id = Path(args.resume), manifest["run_id"]
        backend, shard = manifest["backend"], tuple(manifest["shard"]) if manifest.get("shard") else None
        opts_saved = manifest["options"]
        check, filt = opts_saved["check"], re.compile(opts_saved["filter"]) if opts_saved.get("filter") else None
        interleave_off = not opts_saved.get("interleave", True)
        # A resumed run measures the rest as the run began: same protocol, passes and devices.
        devices = tuple(opts_saved["devices"]) if opts_saved.get("devices") else None
        profile_iters, nvtx = opts_saved.get("profile_iters", 5), opts_saved.get("nvtx_in_timed", False)
        from dsabench.bench.protocol import Protocol  # noqa: PLC0415

        # the protocol the first worker settled for its device; none yet: settle it the same way
        protocol = Protocol(**manifest["protocol"]) if manifest.get("protocol") else None
        protocol_overrides = manifest.get("protocol_overrides") or {}
        impls = impl_setup.resume(manifest.get("impls") or [], backend, stack, run_dir)
    else:
        sset = scenarios.load_named(args.scenarios)
        backend, shard, check, filt = args.backend, args.shard, args.check, args.filter
        interleave_off = args.no_interleave
        devices, profile_iters, nvtx = args.devices, args.profile_iters, args.nvtx
        if args.out.exists() and not args.out.is_dir():
            raise InputError(f"--out {args.out}: is a file; expected a directory to hold run directories")
        if shard is not None and args.run_id is None:
            print("warning: --shard without --run-id: give every shard the same --run-id so that they load as one run",
                  file=sys.stderr)
        run_id = args.run_id or _run_id(sset.name, backend)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", run_id):
            raise InputError(f"--run-id {run_id!r}: expected letters, digits, '.', '_' or '-' only")
        run_dir = args.out / _run_dir_name(run_id, shard)
        manifest = None
        # the protocol (GPU or CPU) is settled by each worker from the device it really runs on
        protocol = None
        protocol_overrides = {k: v for k, v in (("max_time_s", args.max_time_s), ("precision", args.precision),
                                                ("min_samples", args.min_samples)) if v is not None}
        if args.impl:
            impls = impl_setup.resolve(args.impl, "--impl", None, backend, stack)
        else:
            impls = impl_setup.resolve(sset.impls, f"{sset.path}: [preset]: key 'impl'", sset.path.parent, backend,
                                       stack)

    cases = sset.cases
    if filt is not None:
        cases = tuple(c for c in cases if filt.search(c.id))
    if shard is not None:
        cases = runner.select_shard(cases, *shard)
    if not cases:
        raise InputError(f"{sset.path}: no case left after --filter/--shard; nothing to run")
    refuse_oversized(cases, devices)  # before allocating anything: cases the device cannot hold
    planned = plan(cases, impls)  # (case, impl): one record each

    if manifest is None:
        manifest = {
            "schema": store.SCHEMA_VERSION,
            "run_id": run_id,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": ["dsabench", *sys.argv[1:]],
            "preset": sset.name,
            "scenario_file": str(sset.path),
            "scenario_sha256": sset.sha256,
            "scenario_description": sset.description,
            "backend": backend,
            "shard": list(shard) if shard else None,
            "cases_planned": len(planned),
            "impls": [impl_setup.manifest_entry(i) for i in impls],
            "options": {"check": check, "filter": filt.pattern if filt else None, "devices": devices,
                        "interleave": not interleave_off,
                        "profile_iters": profile_iters, "nvtx_in_timed": nvtx},
            "protocol": None,  # filled in from the first worker's hello
            "protocol_overrides": protocol_overrides,
            "dsabench_version": __version__,
            **env.collect(args.measured_checkout),
            "workers": [],
        }
        store.create_run_dir(run_dir, manifest)
        created = True
    else:
        created = False
    if args.retry_failed:
        from dsabench.store.retry import RETRIED, set_aside  # noqa: PLC0415

        retried = set_aside(run_dir)
        print(f"--retry-failed: {len(retried)} crashed case(s) to measure again (old records in "
              f"{run_dir / RETRIED})", file=sys.stderr)
    done = store.finished_case_ids(run_dir)
    todo = tuple((c, impl) for c, impl in planned if record_key(c.id, impl) not in done)
    shown = "" if [i.label for i in impls] == ["mirror"] else f"; impls {', '.join(i.label for i in impls)}"
    print(f"run {run_id}: {len(todo)} of {len(planned)} cases to measure ({backend} backend{shown}) -> {run_dir}",
          file=sys.stderr)

    opts = WorkerOptions(run_id=run_id, run_dir=str(run_dir), protocol=protocol, check=check,
                         profile_iters=profile_iters, nvtx_in_timed=nvtx, trace=profile_iters > 0,
                         protocol_overrides=protocol_overrides,
                         impls=() if [i.label for i in impls] == ["mirror"] else impls)

    def on_worker(hello: dict) -> None:
        manifest["workers"].append(hello)
        if not manifest.get("protocol"):
            manifest["protocol"] = hello["protocol"]
        elif hello["protocol"] != manifest["protocol"]:
            print(f"warning: the worker on {hello['device'].get('kind')} device {hello['device'].get('name')} "
                  f"times with a different protocol than the first worker (GPU and CPU workers in one run); "
                  "each worker's protocol is in the manifest's 'workers'", file=sys.stderr)
        store.write_json_atomic(run_dir / store.MANIFEST, manifest)

    try:
        stats = runner.run_cases(todo, run_dir, backend, devices or (None,), opts, runner.progress_printer(),
                                 on_worker, case_timeout_s=args.case_timeout_s, interleave=not interleave_off)
    except runner.WorkersFailed as exc:
        if created and _holds_nothing_measured(run_dir):
            shutil.rmtree(run_dir)  # no worker started: leave no half-written run directory
        flag = f"--devices {','.join(devices)}" if devices else f"--backend {backend}"
        raise InputError(f"{flag}: {exc}") from None
    records, warnings = store.read_records(run_dir)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(summary_table(records))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(stats.by_status.items()))
    print(f"\n{len(records)} records in {run_dir / store.CASES} ({counts or 'none new'})")
    result = check_outputs(records)
    print(format_check(result, records))
    if stats.interrupted:
        print(f"interrupted: finish with  dsabench run --resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if stats.incomplete:
        _say_incomplete(stats, run_dir, len(records))
        return EXIT_INCOMPLETE
    for why in stats.lost_workers:  # the other workers measured its cases
        print(f"warning: {why}; the other workers measured its cases", file=sys.stderr)
    if check and not result.ok:
        return EXIT_REGRESSION
    return EXIT_OK


def _holds_nothing_measured(run_dir: Path) -> bool:
    """Only the manifest and an empty traces/ folder: what a run whose workers never started leaves."""
    names = {p.name for p in run_dir.iterdir()}
    traces = run_dir / store.TRACES
    return names <= {store.MANIFEST, store.TRACES} and (not traces.is_dir() or not any(traces.iterdir()))


def _say_incomplete(stats, run_dir: Path, n_records: int) -> None:
    """Why the run stopped short, what is kept, and the command that finishes it."""
    if stats.write_error:
        print(f"dsabench: error: {stats.write_error}; the run stopped", file=sys.stderr)
    for why in stats.lost_workers:
        print(f"dsabench: error: {why}", file=sys.stderr)
    crashed = stats.by_status.get("crashed", 0)
    retry = " --retry-failed" if crashed else ""
    print(f"incomplete: {n_records} records kept in {run_dir / store.CASES}, {stats.unfinished} case(s) not measured; "
          f"fix the cause, then finish with  dsabench run --resume {run_dir}{retry}", file=sys.stderr)
