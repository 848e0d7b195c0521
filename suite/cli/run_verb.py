"""`dsabench run`: validate everything, write the manifest, hand the cases to the runner, print the summary.

Every input is validated before anything is written, so bad input never leaves a
half-written run directory.
"""

from __future__ import annotations

import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from dsabench import __version__
from dsabench.cli import flags
from dsabench.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_REGRESSION
from dsabench.errors import InputError
from dsabench.store import rundir as store

DEFAULT_OUT = Path("results") / "runs"


def register(sub) -> None:
    r = sub.add_parser("run", help="measure the cases of a preset or scenario file")
    r.add_argument("scenarios", nargs="?", default="smoke", help="preset name (smoke, pr, nightly) or a .toml file")
    r.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory that receives the run directory")
    r.add_argument("--backend", choices=["paddle", "torch"], default="paddle")
    r.add_argument("--check", action="store_true",
                   help="compare outputs bit for bit across variants and with the float64 oracle; exit 1 on a mismatch")
    r.add_argument("--devices", type=flags.devices, help="one worker per GPU, e.g. 0,1 (default: one worker, default device)")
    r.add_argument("--shard", type=flags.shard, help="run shard K of N (by case id), e.g. 1/4")
    r.add_argument("--resume", type=Path, metavar="RUN_DIR", help="finish an interrupted run without redoing finished cases")
    r.add_argument("--filter", type=flags.regex, help="only cases whose id matches this regular expression")
    r.add_argument("--run-id", help="name of the run directory (default: time, preset and backend)")
    r.add_argument("--max-time-s", type=flags.positive_float("--max-time-s"), help="time cap of one case's timing loop")
    r.add_argument("--precision", type=flags.positive_float("--precision"), help="target CI half-width of the median (0.01 = 1%%)")
    r.add_argument("--min-samples", type=flags.positive_int("--min-samples"))
    r.add_argument("--profile-iters", type=int, default=5, help="forwards in the profiled pass (0: no trace)")
    r.add_argument("--no-interleave", action="store_true",
                   help="time each case on its own instead of interleaving the eager variants of a case")
    r.add_argument("--nvtx", action="store_true", help="keep NVTX ranges in the timed passes too (for an Nsight capture)")
    r.add_argument("--measured-checkout", type=Path, help="FastDeploy checkout whose git SHA goes into the manifest")
    r.add_argument("--case-timeout-s", type=flags.positive_float("--case-timeout-s"), default=1800.0)
    r.set_defaults(func=cmd_run)



def _run_id(preset: str, backend: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{re.sub(r'[^A-Za-z0-9_.-]', '_', preset)}-{backend}"


def _run_dir_name(run_id: str, shard) -> str:
    """Shards of one run share the run id (records and manifests say it) and get a directory each."""
    return run_id if shard is None else f"{run_id}-shard{shard[0]}of{shard[1]}"


def cmd_run(args) -> int:
    from dsabench.bench import env, runner  # noqa: PLC0415
    from dsabench.workload import scenarios  # noqa: PLC0415
    from dsabench.bench.protocol import protocol_for  # noqa: PLC0415
    from dsabench.analysis.checks import check_outputs
    from dsabench.present.summary import format_check, summary_table  # noqa: PLC0415
    from dsabench.bench.worker import WorkerOptions  # noqa: PLC0415

    if args.profile_iters < 0:
        raise InputError(f"--profile-iters {args.profile_iters}: expected an integer >= 0")
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
        run_id = args.run_id if args.run_id is not None else _run_id(sset.name, backend)
        problem = store.run_id_problem(run_id)
        if problem:
            raise InputError(f"--run-id {ascii(run_id)[:120]}: {problem}")
        run_dir = args.out / _run_dir_name(run_id, shard)
        manifest = None

    cases = sset.cases
    if filt is not None:
        cases = tuple(c for c in cases if filt.search(c.id))
    if shard is not None:
        cases = runner.select_shard(cases, *shard)
    if not cases:
        raise InputError(f"{sset.path}: no case left after --filter/--shard; nothing to run")
    if args.resume is None:
        gpu_expected = (devices is not None and any(not d.startswith("cpu:") for d in devices)) or (
            devices is None and _cuda_likely(backend))
        protocol = protocol_for(gpu_expected, max_time_s=args.max_time_s, precision=args.precision,
                                min_samples=args.min_samples)

    if manifest is None:
        manifest = store.Manifest(
            run_id=run_id, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            command=("dsabench", *sys.argv[1:]), preset=sset.name, scenario_file=str(Path(sset.path).resolve()),
            scenario_sha256=sset.sha256, scenario_description=sset.description, backend=backend, shard=shard,
            cases_planned=len(cases),
            options=store.RunOptions(check=check, filter=filt.pattern if filt else None, devices=devices,
                                     interleave=not interleave_off, profile_iters=profile_iters, nvtx_in_timed=nvtx),
            protocol=store.ProtocolSettings(**protocol.__dict__), dsabench_version=__version__,
            **store.machine(env.collect(args.measured_checkout)),
        )  # fmt: skip
        _writer = store.begin_run(run_dir, manifest)  # the lock, held until this returns: one writer per run dir
        created = True
    else:
        created = False
    done = store.finished_case_ids(run_dir)
    todo = tuple(c for c in cases if c.id not in done)
    print(f"run {run_id}: {len(todo)} of {len(cases)} cases to measure ({backend} backend) -> {run_dir}", file=sys.stderr)

    opts = WorkerOptions(run_id=run_id, run_dir=str(run_dir), protocol=protocol, check=check,
                         profile_iters=profile_iters, nvtx_in_timed=nvtx, trace=profile_iters > 0)

    def on_worker(hello: dict) -> None:
        store.add_worker(run_dir, manifest, hello)

    try:
        stats = runner.run_cases(todo, run_dir, backend, devices or (None,), opts, runner.progress_printer(),
                                 on_worker, case_timeout_s=args.case_timeout_s, interleave=not interleave_off)
    except runner.WorkersFailed as exc:
        if created and not store.read_records(run_dir)[0]:
            shutil.rmtree(run_dir)  # nothing measured: leave no half-written run directory
        raise InputError(f"--backend {backend}: {exc}") from None
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
    if check and not result.ok:
        return EXIT_REGRESSION
    return EXIT_OK


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


def _cuda_likely(backend: str) -> bool:
    """Pick the GPU protocol when a GPU is visible, without importing a framework here."""
    from dsabench.bench.env import gpus  # noqa: PLC0415

    return bool(gpus())


