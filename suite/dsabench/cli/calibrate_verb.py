"""`dsabench calibrate`: the regression gate measured on this machine.

It makes real runs of a preset's cases, alternating A/A runs of the same code with runs where a
known delay is injected into every forward (`run --inject-delay F`), each with several worker
processes per case, then judges every pair with the gate `compare` uses and reports per case:
run-to-run spread, false alarms over the A/A pairs, detection rate at each injected size, and
the smallest change this machine can detect at 95% power. Output: a table, calibration.json
and calibration.png/svg in OUT/RUN_ID. Run again with the same --out, --run-id and arguments, it
finishes an interrupted calibration (each run it already began is resumed) and reports again;
with other arguments it refuses (its runs would not be the calibration asked for). Its runs are
marked in their manifests (options.calibration) and kept out of `compare --history`, `history`
and `dashboard` unless those are asked to include them.

With --paired it measures the paired gate instead (`compare --impls`, the one a CI can use for
eager cases, whose cross-run noise this host's slow mode makes too wide to gate): --aa-runs runs,
each timing the mirror, its A/A twin `mirror+inject=0` and one `mirror+inject=F` per injected size
in the same rounds of the same processes; every run gives one A/A pair and one injected pair per
size (`analysis.calibrate_paired`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from dsabench.analysis.defaults import DEFAULT_THRESHOLD
from dsabench.cli import flags
from dsabench.cli.exit_codes import EXIT_OK
from dsabench.cli.output import fail as _fail, threshold_or_auto as _threshold
from dsabench.errors import DsabenchError, InputError

DEFAULT_INJECT = (0.05, 0.015)
MAX_INJECT = 5.0  # as `run --inject-delay` takes it: up to 5 x the step time added


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--inject {text!r}: expected fractions separated by commas, e.g. 0.05,0.015") from None
    if not values or any(not 0 < v <= MAX_INJECT for v in values):
        raise argparse.ArgumentTypeError(f"--inject {text!r}: expected fractions in (0, {MAX_INJECT:g}] of the step "
                                         "time, e.g. 0.05,0.015")
    return values


def plan(run_id: str, aa_runs: int, inject: tuple[float, ...]) -> list[tuple[str, float]]:
    """(run id, injected fraction) in the order they run: A/A and injected runs alternate, so slow
    drift of the machine falls on both kinds."""
    aa = [(f"{run_id}-aa{i}", 0.0) for i in range(aa_runs)]
    inj = [(f"{run_id}-inj{round(f * 1000):03d}", f) for f in inject]
    out = []
    for i in range(max(len(aa), len(inj))):
        out += aa[i:i + 1] + inj[i:i + 1]
    return out


PLAN = "calibrate.json"
# The arguments that decide what a calibration's runs measure: a rerun must give the same ones.
PLANNED = ("scenarios", "backend", "filter", "devices", "kernel", "aa_runs", "inject", "repeats", "max_time_s", "paired")
ABSENT = {"paired": False}  # what a calibration from before an argument was written with


def _planned(args: argparse.Namespace) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in ((k, getattr(args, k)) for k in PLANNED)}


def check_plan(out: Path, args: argparse.Namespace) -> None:
    """A calibration's arguments are written when it begins; a later call with other arguments
    is refused (one line naming them), so old runs are never reported as a new calibration.
    --no-run judges the runs again with the arguments they were made with (read back into `args`)."""
    import json  # noqa: PLC0415

    path, want = out / PLAN, _planned(args)
    if not path.is_file():
        if args.no_run:
            return  # a calibration from before the file: its runs are named by the arguments given
        if out.exists() and any(out.iterdir()):
            raise InputError(f"{out} holds files but no {PLAN} (a calibration from before it was written); "
                             "pass another --run-id for a new calibration, or --no-run to judge those runs again")
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(want, indent=1) + "\n")
        return
    try:
        had = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({exc}); expected the arguments of an earlier calibration") from None
    had = {**ABSENT, **had}
    if args.no_run:
        for k in PLANNED:
            if k in had:
                setattr(args, k, tuple(had[k]) if isinstance(had[k], list) else had[k])
        return
    differ = [f"--{k.replace('_', '-')} {had.get(k)!r} then, {want[k]!r} now" for k in PLANNED if had.get(k) != want[k]]
    if differ:
        raise InputError(f"{out} was begun with other arguments ({'; '.join(differ)}); give the same arguments to "
                         "finish it, or another --run-id for a new calibration")


def paired_plan(run_id: str, aa_runs: int, inject: tuple[float, ...]) -> tuple[list[str], list[str]]:
    """--paired: the runs (each one A/A pair and one injected pair per size) and the impls each times."""
    impls = ["mirror", injected_label(0.0), *(injected_label(f) for f in inject)]
    return [f"{run_id}-paired{i}" for i in range(aa_runs)], impls


def injected_label(fraction: float) -> str:
    from dsabench.bench.impls import ImplSpec  # noqa: PLC0415

    return ImplSpec("mirror", inject=fraction).label


def paired_sizes(out: Path, runs: list[str], inject: tuple[float, ...]) -> dict[float, dict[str, float]]:
    """--paired: per injected fraction, per case id, the median of the slowdowns the injected impl's
    workers measured over the runs and processes (`worker_sizes`, the record's impl naming the fraction)."""
    labels = {injected_label(f): f for f in inject}
    return worker_sizes(out, runs, lambda run_id, rec: labels.get(rec.get("impl")))


def _judge_paired(out: Path, args: argparse.Namespace, runs: list[str]):
    from dsabench.analysis.calibrate_paired import calibrate_paired  # noqa: PLC0415
    from dsabench.analysis.compare_impls import compare_impls  # noqa: PLC0415
    from dsabench.store.frames import load_runs  # noqa: PLC0415

    aa, injected = [], {}
    for run_id in runs:
        frame = load_runs([out / run_id])

        def rows(cand: str):
            return compare_impls(frame, "mirror", cand, threshold=args.threshold).table.to_dict("records")

        aa.append(rows(injected_label(0.0)))
        for f in args.inject:
            injected.setdefault(f, []).append(rows(injected_label(f)))
    return calibrate_paired(aa, injected, args.threshold, sizes=paired_sizes(out, runs, args.inject))


def measured_sizes(out: Path, runs: list[tuple[str, float]]) -> dict[float, dict[str, float]]:
    """Per injected fraction, per case: the median of the slowdowns its workers measured (each
    record's output.inject.measured; runs before it have none, and calibrate falls back on levels)."""
    fraction = dict(runs)
    return worker_sizes(out, [r for r, f in runs if f], lambda run_id, rec: fraction[run_id])


def worker_sizes(out: Path, runs: list[str], fraction_of) -> dict[float, dict[str, float]]:
    """Per injected fraction, per case id: the median of the slowdowns the workers measured
    (output.inject.measured of each ok record; `fraction_of(run_id, record)` names its fraction, None
    for a record that was not injected)."""
    import statistics  # noqa: PLC0415

    from dsabench.store.rundir import read_records  # noqa: PLC0415

    found: dict[float, dict[str, list[float]]] = {}
    for run_id in runs:
        for rec in read_records(out / run_id)[0]:
            size = ((rec.get("output") or {}).get("inject") or {}).get("measured")
            frac = fraction_of(run_id, rec)
            if frac is not None and rec.get("status") == "ok" and isinstance(size, (int, float)):
                found.setdefault(frac, {}).setdefault(rec["case_id"], []).append(float(size))
    return {f: {c: statistics.median(v) for c, v in cases.items()} for f, cases in found.items()}


def cmd_calibrate(args: argparse.Namespace) -> int:
    from dsabench.analysis.calibrate import calibrate  # noqa: PLC0415
    from dsabench.present.calibration import write_calibration  # noqa: PLC0415
    from dsabench.store.frames import load_runs  # noqa: PLC0415

    out = args.out / args.run_id
    try:
        check_plan(out, args)
        if args.paired:
            names, impls = paired_plan(args.run_id, args.aa_runs, args.inject)
            runs = [(name, 0.0) for name in names]
        else:
            runs, impls = plan(args.run_id, args.aa_runs, args.inject), []
        for run_id, frac in runs:
            if args.no_run:
                if not (out / run_id / "manifest.json").exists():
                    raise InputError(f"--no-run: {out / run_id} holds no run; expected the runs of an earlier calibration")
                continue
            if (out / run_id / "manifest.json").exists():  # an interrupted calibration: finish that run
                cmd = [sys.executable, "-m", "dsabench", "run", "--resume", str(out / run_id)]
            else:
                cmd = [sys.executable, "-m", "dsabench", "run", args.scenarios, "--backend", args.backend,
                       "--out", str(out), "--run-id", run_id, "--repeats", str(args.repeats), "--profile-iters", "0",
                       "--calibration", args.run_id]
                cmd += ["--inject-delay", str(frac)] if frac else []
                cmd += ["--filter", args.filter] if args.filter else []
                cmd += ["--devices", args.devices] if args.devices else []
                cmd += ["--max-time-s", str(args.max_time_s)] if args.max_time_s else []
                cmd += ["--kernel", args.kernel] if args.kernel else []
                cmd += [a for impl in impls for a in ("--impl", impl)]
            print(f"calibrate: {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL)
            if r.returncode not in (0, 1):
                raise InputError(f"run {run_id} exited {r.returncode}; see its output above")
        if args.paired:
            result = _judge_paired(out, args, [r for r, _ in runs])
        else:
            groups = {}
            for run_id, frac in runs:
                df = load_runs([out / run_id]).df
                ok = df[df["status"] == "ok"]
                groups[run_id] = {r["case_id"]: r for r in ok.to_dict("records")}  # eager: judged on steady chunks
            aa = [groups[r] for r, f in runs if not f]
            injected: dict[float, list] = {}
            for r, f in runs:
                if f:
                    injected.setdefault(f, []).append(groups[r])
            result = calibrate(aa, injected, args.threshold, sizes=measured_sizes(out, runs))
        paths = write_calibration(result, out, args.threshold, args.repeats, paired=args.paired)
    except DsabenchError as exc:
        return _fail("calibrate", exc)
    print(paths["table"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="measure the regression gate on this machine: false alarms and power",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("scenarios", help="preset name or scenario file (use --filter for a subset)")
    p.add_argument("--backend", choices=["paddle", "torch"], default="paddle")
    p.add_argument("--filter", help="only cases whose id matches this regular expression")
    p.add_argument("--devices", help="as for run")
    p.add_argument("--kernel", choices=("auto", "reference", "triton", "gluon", "flashmla"))
    p.add_argument("--aa-runs", type=flags.int_in("--aa-runs", 2, 20), default=3,
                   help="runs of the unchanged code; every pair of them is an A/A comparison (default 3: 3 pairs)")
    p.add_argument("--inject", type=_fractions, default=DEFAULT_INJECT,
                   help="injected delays as fractions of each forward (default 0.05,0.015)")
    p.add_argument("--repeats", type=flags.int_in("--repeats", 1, 20), default=3,
                   help="worker processes per case in each run (default 3)")
    p.add_argument("--threshold", type=_threshold, default=DEFAULT_THRESHOLD,
                   help=f"the gate's band, a fraction, or 'auto' (default {DEFAULT_THRESHOLD})")
    p.add_argument("--max-time-s", type=flags.positive_float("--max-time-s"))
    p.add_argument("--out", type=Path, default=Path("results") / "runs")
    p.add_argument("--run-id", type=flags.run_id, default="calibrate")
    p.add_argument("--paired", action="store_true",
                   help="measure the paired gate (compare --impls) instead of the cross-run one: each of --aa-runs "
                        "runs times the mirror, its A/A twin mirror+inject=0 and mirror+inject=F for each --inject "
                        "in the same rounds of the same processes")
    p.add_argument("--no-run", action="store_true",
                   help="measure nothing: judge the runs an earlier calibration left in OUT/RUN_ID again "
                        "(another --threshold, say)")
    p.set_defaults(func=cmd_calibrate)
