"""`dsabench run`: validate everything, write the manifest, hand the cases to the runner, print the summary.

Every input is validated before anything is written, so bad input never leaves a
half-written run directory.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import sys
import threading
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
    from dsabench.bench.pin import PIN_CHOICES  # noqa: PLC0415
    from dsabench.bench.protocol import CPU_PROTOCOL, GPU_PROTOCOL, MIN_SAMPLES  # noqa: PLC0415

    r = sub.add_parser("run", help="measure the cases of a preset or scenario file")
    r.add_argument("scenarios", nargs="?", help="preset name (smoke, pr, nightly) or a .toml file (default smoke)")
    r.add_argument("--out", type=Path, help=f"directory that receives the run directory (default {DEFAULT_OUT})")
    r.add_argument("--backend", choices=["paddle", "torch"],
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
    r.add_argument("--profile-iters", type=flags.int_in("--profile-iters", 0, 1000),
                   help="forwards in the profiled pass, 0 to 1000 (0: no trace; default 5)")
    r.add_argument("--no-interleave", action="store_true",
                   help="time each case on its own instead of interleaving the eager variants of a case")
    r.add_argument("--nvtx", action="store_true", help="keep NVTX ranges in the timed passes too (for an Nsight capture)")
    r.add_argument("--pin", choices=PIN_CHOICES,
                   help="probe: each worker's timing thread on a core of its own, the fastest of its cores by a host "
                        "speed probe at start and before each item, one OpenMP/torch thread, the runner on another "
                        "core (needs a CPU per worker plus one); off: as the OS schedules; auto (default): probe when "
                        "every worker runs on a GPU and there are 2 CPUs per worker plus one, else off (the manifest "
                        "records which)")
    r.add_argument("--impl", action="append", metavar="IMPL",
                   help="where the forward comes from: 'mirror' (default), 'fastdeploy:PATH[@COMMIT]' (FastDeploy's "
                        "own forward_mixed from the tree at PATH, at COMMIT through a git worktree) or "
                        "'mirror+inject=F' (the mirror with F x its forward added to every forward: a known slowdown "
                        "to calibrate compare --impls with; F=0 is an A/A twin); repeat it to measure several "
                        "interleaved per case on the same inputs; overrides [preset] impl")
    r.add_argument("--measured-checkout", type=flags.git_checkout, metavar="DIR",
                   help="FastDeploy git checkout whose commit SHA goes into the manifest")
    r.add_argument("--case-timeout-s", type=flags.positive_float("--case-timeout-s"), default=1800.0, metavar="S",
                   help="wall-clock seconds one case may take in its worker (per variant for an interleaved group) "
                        "before the worker is killed and the case recorded crashed (default 1800)")
    r.add_argument("--repeats", type=flags.int_in("--repeats", 1, 20),
                   help="worker processes per case: each case is measured in R different processes (one device: "
                        "R passes of fresh processes), so the interval of a median includes the variance between "
                        "processes (default: the scenario file's [preset] repeats, else 1); each process gets 1/R "
                        "of the time cap")
    r.add_argument("--inject-delay", type=flags.float_in("--inject-delay", 0.0, 5.0, False, False), metavar="F",
                   help=argparse.SUPPRESS)  # calibrate's known slowdown: a delay of F x the forward, every forward
    r.add_argument("--calibration", type=flags.run_id, metavar="ID",
                   help=argparse.SUPPRESS)  # calibrate's mark: the run is one of calibration ID's, no history
    r.add_argument("--wide", action="store_true",
                   help="print the end-of-run tables at full width, whole case ids on one line a row (default: "
                        "fitted to 120 columns)")
    r.add_argument("--kernel", type=flags.kernel, metavar="KERNEL[,KERNEL...]",
                   help="attention kernel of decode and prefill: reference (plain framework ops), triton (fused, "
                        "torch on CUDA), gluon (warp-specialized, torch on sm_90), flashmla (when installed), auto "
                        "(flashmla, else triton, else reference on each worker's device; default, or the scenario "
                        "file's 'kernel' key). Recorded in every record; compare refuses "
                        "runs made with different kernels. Several, e.g. flashmla,triton,reference: an axis, each "
                        "case measured with each kernel side by side in one worker (compare --kernels RUN)")
    r.set_defaults(func=cmd_run)



# What a run's manifest fixes (flag: its dest): --resume takes each from the manifest, so one given
# with it would be ignored; it is refused instead. --retry-failed, --case-timeout-s and --wide
# apply to the invocation and go with --resume. Their defaults, where they have one, are here.
FIXED_BY_THE_RUN = {
    "SCENARIOS": "scenarios", "--out": "out", "--backend": "backend", "--check": "check", "--devices": "devices",
    "--shard": "shard", "--filter": "filter", "--run-id": "run_id", "--max-time-s": "max_time_s",
    "--precision": "precision", "--min-samples": "min_samples", "--profile-iters": "profile_iters",
    "--no-interleave": "no_interleave", "--nvtx": "nvtx", "--pin": "pin", "--impl": "impl",
    "--measured-checkout": "measured_checkout", "--repeats": "repeats", "--inject-delay": "inject_delay",
    "--calibration": "calibration", "--kernel": "kernel",
}  # fmt: skip
DEFAULTS = {"scenarios": "smoke", "out": DEFAULT_OUT, "backend": "paddle", "profile_iters": 5, "pin": "auto",
            "inject_delay": 0.0}


def settle_flags(args) -> None:
    """With --resume: refuse, in one line, every flag the run's manifest fixes. Without: their defaults."""
    if args.resume is not None:
        given = [flag for flag, dest in FIXED_BY_THE_RUN.items() if getattr(args, dest) not in (None, False)]
        if given:
            raise InputError(f"--resume {args.resume}: {', '.join(given)} cannot be given with --resume: a resumed run "
                             f"measures the rest as it began, with the settings in its {store.MANIFEST}; leave "
                             f"{'them' if len(given) > 1 else 'it'} out, or start a new run")
    for dest, value in DEFAULTS.items():
        if getattr(args, dest) is None:
            setattr(args, dest, value)


def _auto_pin(devices) -> str:
    """--pin auto on this host: probe for GPU workers (NVML sees a GPU and no cpu:N device is asked
    for), off otherwise (bench/pin.auto_mode); said on stderr when it pins."""
    from dsabench.bench.env import gpus  # noqa: PLC0415
    from dsabench.bench.pin import auto_mode  # noqa: PLC0415

    seen = bool(gpus())
    workers = [seen and not str(d).startswith("cpu:") for d in (devices or (None,))]
    mode, why = auto_mode(workers, len(os.sched_getaffinity(0)))
    if mode == "probe":
        print(f"pin: probe (--pin auto: {why}); --pin off leaves the cores to the OS", file=sys.stderr)
    return mode


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
    from dsabench.bench.schedule import select_shard  # noqa: PLC0415
    from dsabench.bench.impls.plan import plan  # noqa: PLC0415
    from dsabench.cli import impl_setup  # noqa: PLC0415
    from dsabench.store.schema import record_key  # noqa: PLC0415
    from dsabench.workload import scenarios  # noqa: PLC0415
    from dsabench.store.codec import builtins  # noqa: PLC0415
    from dsabench.bench.worker import WorkerOptions  # noqa: PLC0415
    from dsabench.cli.device_fit import refuse_oversized  # noqa: PLC0415
    from dsabench.cli.kernel_choice import asked_kernel, refuse_unusable  # noqa: PLC0415

    settle_flags(args)
    if args.profile_iters < 0:
        raise InputError(f"--profile-iters {args.profile_iters}: expected an integer >= 0")
    if args.retry_failed and args.resume is None:
        raise InputError("--retry-failed: only with --resume RUN_DIR (it measures a run's crashed cases again)")
    if args.resume is not None:
        _writer, manifest = store.resume_run(args.resume)  # validated; this process is its only writer until return
        sset = _resume_scenarios(args.resume, manifest, scenarios.load)
        run_dir, run_id = Path(args.resume), manifest.run_id
        backend, shard, saved = manifest.backend, manifest.shard, manifest.options
        check, filt = saved.check, re.compile(saved.filter) if saved.filter else None
        interleave_off = not saved.interleave
        # A resumed run measures the rest as the run began: same protocol, passes and devices.
        devices, profile_iters, nvtx = saved.devices, saved.profile_iters, saved.nvtx_in_timed
        protocol = _resume_protocol(args.resume, manifest)
        protocol_overrides = dict(manifest.protocol_overrides)
        kernel = saved.kernel
        repeats, inject, pin = saved.repeats, saved.inject_delay, saved.pin
        impls = impl_setup.resume([dict(i) for i in manifest.impls], backend, stack, run_dir)
    else:
        sset = scenarios.load_named(args.scenarios)
        backend, shard, check, filt = args.backend, args.shard, args.check, args.filter
        interleave_off = args.no_interleave
        devices, profile_iters, nvtx = args.devices, args.profile_iters, args.nvtx
        kernel, kernel_source = asked_kernel(args.kernel, sset.kernel, str(sset.path))
        repeats = args.repeats or sset.repeats or 1
        inject, pin = args.inject_delay, args.pin
        refuse_unusable(kernel, kernel_source, backend, devices)
        if args.out.exists() and not args.out.is_dir():
            raise InputError(f"--out {args.out}: is a file; expected a directory to hold run directories")
        if shard is not None and args.run_id is None:
            print("warning: --shard without --run-id: give every shard the same --run-id so that they load as one run",
                  file=sys.stderr)
        run_id = args.run_id if args.run_id is not None else _run_id(sset.name, backend)
        problem = store.run_id_problem(run_id)
        if problem:
            raise InputError(f"--run-id {ascii(run_id)[:120]}: {problem}")
        run_dir = args.out / _run_dir_name(run_id, shard)
        manifest = None
        # the protocol (GPU or CPU) is settled by each worker from the device it really runs on
        protocol = None
        protocol_overrides = {k: v for k, v in (("max_time_s", args.max_time_s), ("precision", args.precision),
                                                ("min_samples", args.min_samples)) if v is not None}
        if args.impl:
            impls = impl_setup.resolve(args.impl, "--impl", None, backend, stack)
        else:
            impls = impl_setup.file_impls(sset, backend, stack)

    _refuse_missing_backend(backend)
    injected = [i.label for i in impls if i.inject is not None]
    if injected and inject:
        raise InputError(f"--inject-delay {inject:g} and impl {injected[0]!r}: give one known slowdown (the impl's "
                         "slows its own forwards, --inject-delay every forward of the run)")
    cases = sset.cases
    if filt is not None:
        cases = tuple(c for c in cases if filt.search(c.id))
    if shard is not None:
        cases = select_shard(cases, *shard)
    if not cases:
        raise InputError(f"{sset.path}: no case left after --filter/--shard; nothing to run")
    if pin == "auto":  # resolved once, recorded as resolved: a resume measures the rest as the run began
        pin = _auto_pin(devices)
    if pin == "probe":  # before the run directory: a core per worker and one for the runner
        from dsabench.bench.pin import plan as pin_plan  # noqa: PLC0415

        pin_plan(os.sched_getaffinity(0), len(devices or (None,)))
    from dsabench.bench.kernels.select import axis  # noqa: PLC0415

    planned = plan(cases, impls, axis(kernel))  # (case, impl, kernel on a kernel axis): one record each
    refuse_oversized(planned, devices, not interleave_off)  # before allocating anything: what the device cannot hold

    if manifest is None:
        manifest = store.Manifest(
            run_id=run_id, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            command=("dsabench", *sys.argv[1:]), preset=sset.name, scenario_file=str(Path(sset.path).resolve()),
            scenario_sha256=sset.sha256, scenario_description=sset.description, backend=backend, shard=shard,
            cases_planned=len(planned), impls=[impl_setup.manifest_entry(i) for i in impls],
            options=store.RunOptions(check=check, filter=filt.pattern if filt else None, devices=devices,
                                     interleave=not interleave_off, profile_iters=profile_iters, nvtx_in_timed=nvtx,
                                     kernel=kernel, repeats=repeats, inject_delay=inject, pin=pin,
                                     calibration=args.calibration),  # kernel: asked for
            protocol=None, protocol_overrides=protocol_overrides, dsabench_version=__version__,  # protocol: from the first worker
            **store.machine(env.collect(args.measured_checkout)),
        )  # fmt: skip
        _writer = store.begin_run(run_dir, manifest)  # the lock, held until this returns: one writer per run dir
        created = True
    else:
        created = False
    retry = frozenset()
    if args.retry_failed:  # set aside once a worker has started: a run refused before leaves them in place
        from dsabench.store.retry import RETRIED, RETRY_STATUSES, set_aside  # noqa: PLC0415

        retry = store.keys_with_status(run_dir, RETRY_STATUSES)
        print(f"--retry-failed: {len(retry)} crashed case(s) to measure again (old records to "
              f"{run_dir / RETRIED})", file=sys.stderr)
    done = store.finished_keys(run_dir) - retry
    logs_before = store.log_names(run_dir)
    left = sum(1 for c, impl, k in planned for rep in range(repeats) if (record_key(c.id, impl, k), rep) not in done)
    # each case is measured once per worker process: 'left' counts those measurements, as the total does
    per = (f"{len(planned) * repeats} ({len(planned)} cases x {repeats} worker processes)" if repeats > 1
           else f"{len(planned)} cases")
    shown = "" if [i.label for i in impls] == ["mirror"] else f"; impls {', '.join(i.label for i in impls)}"
    shown += f"; kernels {kernel.replace(',', ', ')} side by side" if axis(kernel) else ""
    print(f"run {run_id}: {left} of {per} to measure ({backend} backend{shown}) -> {run_dir}", file=sys.stderr)

    opts = WorkerOptions(run_id=run_id, run_dir=str(run_dir), protocol=protocol, check=check,
                         profile_iters=profile_iters, nvtx_in_timed=nvtx, trace=profile_iters > 0,
                         protocol_overrides=protocol_overrides, kernel=kernel, repeats=repeats,
                         inject_delay=inject, impls=() if [i.label for i in impls] == ["mirror"] else impls, pin=pin)

    first_hello = []

    def on_worker(hello: dict) -> None:
        if not first_hello:  # the run really starts: until now a refusal changed nothing in a resumed run
            first_hello.append(hello)
            _writer.claim()
            if retry:
                set_aside(run_dir)
        if pin == "probe" and hello["device"].get("kind") != "gpu":
            print(f"warning: --pin probe on a {hello['device'].get('kind')} worker: its forward runs on one core "
                  "with one thread (--pin off for the framework's own threads)", file=sys.stderr)
        worker = store.add_worker(run_dir, manifest, hello)  # the first worker's protocol becomes the run's
        if worker.protocol is not None and worker.protocol != manifest.protocol:
            print(f"warning: the worker on {hello['device'].get('kind')} device {hello['device'].get('name')} "
                  f"times with a different protocol than the first worker (GPU and CPU workers in one run); "
                  "each worker's protocol is in the manifest's 'workers'", file=sys.stderr)

    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    threading.Thread(target=_import_summary, daemon=True).start()  # pandas loads while the workers start
    try:
        stats = runner.run_cases(planned, run_dir, backend, devices or (None,), opts, runner.progress_printer(),
                                 on_worker, case_timeout_s=args.case_timeout_s, interleave=not interleave_off,
                                 repeats=repeats, done=done)
    except runner.WorkersFailed as exc:  # no worker started: leave the disk as it was
        if created and _holds_nothing_measured(run_dir):
            store.abandon_run(_writer)
        elif not created:
            store.remove_new_logs(run_dir, logs_before)
        flag = f"--devices {','.join(devices)}" if devices else f"--backend {backend}"
        raise InputError(f"{flag}: {exc}") from None
    _add_attempt(run_dir, manifest, stats, started_at, devices)
    from dsabench.analysis.checks import check_outputs  # noqa: PLC0415
    from dsabench.analysis.wall import breakdown  # noqa: PLC0415
    from dsabench.present.fit import WIDTH  # noqa: PLC0415
    from dsabench.present.summary import format_check, records_line, summary_table  # noqa: PLC0415
    from dsabench.present.wall_text import format_wall  # noqa: PLC0415

    records, warnings = store.read_records(run_dir)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    wall = format_wall(breakdown(records, builtins(manifest)["attempts"]), None if args.wide else WIDTH)
    raw = records  # one per case, impl and repeat: what --check judges (a merged case hides its other processes)
    records = store.merge_repeats(records)  # one per case: samples pooled, grouped per process
    width = None if args.wide else WIDTH
    print(summary_table(records, width))
    print(f"\n{records_line(raw, stats.done, run_dir / store.CASES)}")
    if wall:
        print(wall)
    result = check_outputs(raw)
    print(format_check(result, raw, width))
    if stats.interrupted:
        print(f"interrupted: finish with  dsabench run --resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if stats.incomplete:
        _say_incomplete(stats, run_dir, len(records))
        return EXIT_INCOMPLETE
    for why in stats.lost_workers:  # the other workers measured its cases
        print(f"warning: {why}; the other workers measured its cases", file=sys.stderr)
    if check and not result.ok:
        bad = [*result.mismatches, *result.nonfinite, *result.crashed, *result.oracle_failures]
        print(f"dsabench run: --check failed on {len(bad)} finding(s), first: {bad[0]}; exit {EXIT_REGRESSION}",
              file=sys.stderr)
        return EXIT_REGRESSION
    return EXIT_OK


def _import_summary() -> None:
    """The modules of the summary printed after the run (pandas among them, about a second)."""
    for name in ("analysis.checks", "analysis.wall", "present.summary", "present.wall_text"):
        importlib.import_module(f"dsabench.{name}")


def _add_attempt(run_dir: Path, manifest, stats, started_at: str, devices) -> None:
    """This invocation's wall time and worker start-ups into the manifest; a manifest that cannot
    be written (a full disk) loses only this breakdown, never a record."""
    attempt = {"started_at": started_at, "wall_s": stats.wall_s, "devices": list(devices or (None,)),
               "records": stats.done, "worker_starts": stats.starts, "interrupted": stats.interrupted}
    try:
        store.add_attempt(run_dir, manifest, attempt)
    except Exception as exc:  # noqa: BLE001 - StoreWriteError or OSError: said, and the run's outcome stands
        print(f"warning: the run's wall-time breakdown was not written to {run_dir / store.MANIFEST}: {exc}",
              file=sys.stderr)


def _resume_scenarios(run_dir: Path, manifest, load):
    """The run's scenario file, found from any directory (schema 2 stores it resolved) and unchanged."""
    path = Path(manifest.scenario_file)
    where = f"--resume {run_dir}: scenario file {path} (from {store.MANIFEST})"
    if not path.is_file():
        hint = "" if path.is_absolute() else "; it was recorded relative: resume from the directory the run began in"
        raise InputError(f"{where} is not there (or not a file){hint}")
    sset = load(path)
    if sset.sha256 != manifest.scenario_sha256:
        raise InputError(f"{where} changed since the run began (sha256 {sset.sha256[:12]} != "
                         f"{manifest.scenario_sha256[:12]}); start a new run")  # fmt: skip
    return sset


def _resume_protocol(run_dir: Path, manifest):
    from dsabench.bench.protocol import Protocol  # noqa: PLC0415

    if manifest.protocol is None:
        return None  # no worker settled it before the run stopped: the resumed run's workers do
    try:
        return Protocol(**manifest.protocol.fields())
    except (TypeError, ValueError) as exc:
        raise InputError(f"{Path(run_dir) / store.MANIFEST}: key 'protocol': {exc}") from None


def _refuse_missing_backend(backend: str) -> None:
    """A framework that is not installed, refused at once rather than after worker start-up (~20 s)."""
    module, extra = ("paddle", "cpu") if backend == "paddle" else ("torch", "torch")
    if importlib.util.find_spec(module) is None:
        raise InputError(f"--backend {backend}: {module} is not installed; install it with pip install "
                         f"'dsabench[{extra}]' (or '.[{extra}]' in a checkout)")


def _holds_nothing_measured(run_dir: Path) -> bool:
    """Only the manifest, an empty traces/ folder and worker logs: what a run whose workers never started leaves."""
    names = {p.name for p in run_dir.iterdir()}
    traces = run_dir / store.TRACES
    return names <= {store.MANIFEST, store.TRACES, store.LOCK, store.LOGS} and (not traces.is_dir() or not any(traces.iterdir()))


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
