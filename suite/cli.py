"""`dsabench` command line. Exit codes: 0 fine, 1 regression or failed check, 2 bad input.

Every input is validated before anything is written, so bad input never leaves a
half-written run directory.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from . import __version__, store
from .errors import InputError

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_OUT = Path("results") / "runs"


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line naming the flag and the problem (no usage dump)."""

    def error(self, message: str):  # noqa: D401
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise argparse.ArgumentTypeError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return int(m.group(1)), int(m.group(2))


def _devices(text: str) -> tuple[str, ...]:
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(not re.fullmatch(r"\d+|GPU-[0-9a-fA-F-]+|cpu:\d+", p) for p in parts) or len(set(parts)) != len(parts):
        raise argparse.ArgumentTypeError(
            f"--devices {text!r}: expected distinct GPU indices or UUIDs (or cpu:N for CPU workers) separated by "
            "commas, e.g. 0,1")
    return tuple(parts)


def _positive_float(name):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} {text!r}: expected a number") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"{name} {text!r}: expected a number > 0")
        return v
    return parse


def _positive_int(name):
    def parse(text: str) -> int:
        if not re.fullmatch(r"\d+", text) or int(text) < 1:
            raise argparse.ArgumentTypeError(f"{name} {text!r}: expected an integer >= 1")
        return int(text)
    return parse


def _regex(text: str):
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"--filter {text!r}: not a valid regular expression ({exc})") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dsabench", description="Benchmark FastDeploy's DSA attention forward before and after PR #7253.")
    p.add_argument("--version", action="version", version=f"dsabench {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="measure the cases of a preset or scenario file")
    r.add_argument("scenarios", nargs="?", default="smoke", help="preset name (smoke, pr, nightly) or a .toml file")
    r.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory that receives the run directory")
    r.add_argument("--backend", choices=["paddle", "torch"], default="paddle")
    r.add_argument("--check", action="store_true",
                   help="compare outputs bit for bit across variants and with the float64 oracle; exit 1 on a mismatch")
    r.add_argument("--devices", type=_devices, help="one worker per GPU, e.g. 0,1 (default: one worker, default device)")
    r.add_argument("--shard", type=_shard, help="run shard K of N (by case id), e.g. 1/4")
    r.add_argument("--resume", type=Path, metavar="RUN_DIR", help="finish an interrupted run without redoing finished cases")
    r.add_argument("--filter", type=_regex, help="only cases whose id matches this regular expression")
    r.add_argument("--run-id", help="name of the run directory (default: time, preset and backend)")
    r.add_argument("--max-time-s", type=_positive_float("--max-time-s"), help="time cap of one case's timing loop")
    r.add_argument("--precision", type=_positive_float("--precision"), help="target CI half-width of the median (0.01 = 1%%)")
    r.add_argument("--min-samples", type=_positive_int("--min-samples"))
    r.add_argument("--profile-iters", type=int, default=5, help="forwards in the profiled pass (0: no trace)")
    r.add_argument("--no-interleave", action="store_true",
                   help="time each case on its own instead of interleaving the eager variants of a case")
    r.add_argument("--nvtx", action="store_true", help="keep NVTX ranges in the timed passes too (for an Nsight capture)")
    r.add_argument("--measured-checkout", type=Path, help="FastDeploy checkout whose git SHA goes into the manifest")
    r.add_argument("--case-timeout-s", type=_positive_float("--case-timeout-s"), default=1800.0)
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("scenarios", help="list presets or show the cases of one")
    ssub = s.add_subparsers(dest="scenarios_verb", required=True, parser_class=_Parser)
    sl = ssub.add_parser("list", help="presets with their descriptions and case counts")
    sl.set_defaults(func=cmd_scenarios_list)
    ss = ssub.add_parser("show", help="expanded cases of a preset or file, with estimated memory")
    ss.add_argument("name", help="preset name or .toml file")
    ss.set_defaults(func=cmd_scenarios_show)

    e = sub.add_parser("env", help="this machine, and which backends, graph capture and profiler targets work here")
    e.add_argument("--backend", choices=["paddle", "torch", "all"], default="all")
    e.set_defaults(func=cmd_env)

    try:
        from . import analysis_cli  # noqa: PLC0415
    except ImportError:
        analysis_cli = None
    if analysis_cli is not None:
        analysis_cli.register(sub)
    return p


def cmd_scenarios_list(args) -> int:
    from .scenarios import list_presets  # noqa: PLC0415

    for info in list_presets():
        print(f"{info.name:<10} {info.num_cases:>4} cases  {info.description}")
    return EXIT_OK


def cmd_scenarios_show(args) -> int:
    from .scenarios import format_cases_table, load_named  # noqa: PLC0415

    sset = load_named(args.name)
    print(f"{sset.path}  sha256 {sset.sha256[:16]}  {sset.description}")
    print(format_cases_table(sset.cases))
    return EXIT_OK


def cmd_env(args) -> int:
    import json  # noqa: PLC0415
    import multiprocessing as mp  # noqa: PLC0415

    from . import env  # noqa: PLC0415

    info = env.collect()
    print(json.dumps(info, indent=2, default=str))
    names = ["paddle", "torch"] if args.backend == "all" else [args.backend]
    ctx = mp.get_context("spawn")
    for name in names:
        with ctx.Pool(1) as pool:  # a fresh process: importing a framework here would linger
            print(pool.apply(_availability_text, (name,)))
    return EXIT_OK


def _availability_text(name: str) -> str:
    from .backends.base import get_backend  # noqa: PLC0415

    try:
        b = get_backend(name)
    except ImportError as exc:
        return f"{name}: not usable: {exc} (pip install '.[{'cpu' if name == 'paddle' else 'torch'}]')"
    except Exception as exc:  # noqa: BLE001
        return f"{name}: not usable: {type(exc).__name__}: {exc}"
    a = b.availability()
    def cap(label, c):
        return f"  {label:<10} {'yes' if c.usable else 'no'}  {c.reason}"
    return "\n".join([
        f"{name} {a.framework_version}: device {a.device.reason}; profiler targets {', '.join(a.profiler_targets)}",
        cap("graph", a.graph), cap("nvtx", a.nvtx), f"  device     {b.device_identity()}",
    ])


def _run_id(preset: str, backend: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{re.sub(r'[^A-Za-z0-9_.-]', '_', preset)}-{backend}"


def _run_dir_name(run_id: str, shard) -> str:
    """Shards of one run share the run id (records and manifests say it) and get a directory each."""
    return run_id if shard is None else f"{run_id}-shard{shard[0]}of{shard[1]}"


def cmd_run(args) -> int:
    from . import env, runner, scenarios  # noqa: PLC0415
    from .measure import protocol_for  # noqa: PLC0415
    from .summary import check_outputs, format_check, summary_table  # noqa: PLC0415
    from .worker import WorkerOptions  # noqa: PLC0415

    if args.profile_iters < 0:
        raise InputError(f"--profile-iters {args.profile_iters}: expected an integer >= 0")
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
        from .measure import Protocol  # noqa: PLC0415

        protocol = Protocol(**manifest["protocol"])
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
            "cases_planned": len(cases),
            "options": {"check": check, "filter": filt.pattern if filt else None, "devices": devices,
                        "interleave": not interleave_off,
                        "profile_iters": profile_iters, "nvtx_in_timed": nvtx},
            "protocol": protocol.__dict__,
            "dsabench_version": __version__,
            **env.collect(args.measured_checkout),
            "workers": [],
        }
        store.create_run_dir(run_dir, manifest)
        created = True
    else:
        created = False
    done = store.finished_case_ids(run_dir)
    todo = tuple(c for c in cases if c.id not in done)
    print(f"run {run_id}: {len(todo)} of {len(cases)} cases to measure ({backend} backend) -> {run_dir}", file=sys.stderr)

    opts = WorkerOptions(run_id=run_id, run_dir=str(run_dir), protocol=protocol, check=check,
                         profile_iters=profile_iters, nvtx_in_timed=nvtx, trace=profile_iters > 0)

    def on_worker(hello: dict) -> None:
        manifest["workers"].append(hello)
        store.write_json_atomic(run_dir / store.MANIFEST, manifest)

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
        return 130
    if check and not result.ok:
        return EXIT_REGRESSION
    return EXIT_OK


def _cuda_likely(backend: str) -> bool:
    """Pick the GPU protocol when a GPU is visible, without importing a framework here."""
    from .env import gpus  # noqa: PLC0415

    return bool(gpus())


def _terminate_as_interrupt(signum, frame):
    """SIGTERM (a CI or batch time limit) stops a run like Ctrl-C: workers killed, records kept."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal  # noqa: PLC0415

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"dsabench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("dsabench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
