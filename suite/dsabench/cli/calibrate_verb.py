"""`dsabench calibrate`: the regression gate measured on this machine.

It makes real runs of a preset's cases, alternating A/A runs of the same code with runs where a
known delay is injected into every forward (`run --inject-delay F`), each with several worker
processes per case, then judges every pair with the gate `compare` uses and reports per case:
run-to-run spread, false alarms over the A/A pairs, detection rate at each injected size, and
the smallest change this machine can detect at 95% power. Output: a table, calibration.json
and calibration.png/svg in OUT/RUN_ID. Run again with the same --out and --run-id, it finishes an
interrupted calibration (each run it already began is resumed) and reports again.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from dsabench.analysis.defaults import DEFAULT_THRESHOLD
from dsabench.cli import flags
from dsabench.cli.exit_codes import EXIT_OK
from dsabench.cli.output import fail as _fail, threshold as _threshold
from dsabench.errors import DsabenchError, InputError

DEFAULT_INJECT = (0.05, 0.015)


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--inject {text!r}: expected fractions separated by commas, e.g. 0.05,0.015") from None
    if not values or any(not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"--inject {text!r}: expected fractions in (0, 1), e.g. 0.05,0.015")
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


def cmd_calibrate(args: argparse.Namespace) -> int:
    from dsabench.analysis.calibrate import calibrate  # noqa: PLC0415
    from dsabench.present.calibration import write_calibration  # noqa: PLC0415
    from dsabench.store.frames import load_runs  # noqa: PLC0415

    out = args.out / args.run_id
    try:
        runs = plan(args.run_id, args.aa_runs, args.inject)
        for run_id, frac in runs:
            if args.no_run:
                if not (out / run_id / "manifest.json").exists():
                    raise InputError(f"--no-run: {out / run_id} holds no run; expected the runs of an earlier calibration")
                continue
            if (out / run_id / "manifest.json").exists():  # an interrupted calibration: finish that run
                cmd = [sys.executable, "-m", "dsabench", "run", "--resume", str(out / run_id)]
            else:
                cmd = [sys.executable, "-m", "dsabench", "run", args.scenarios, "--backend", args.backend,
                       "--out", str(out), "--run-id", run_id, "--repeats", str(args.repeats), "--profile-iters", "0"]
                cmd += ["--inject-delay", str(frac)] if frac else []
                cmd += ["--filter", args.filter] if args.filter else []
                cmd += ["--devices", args.devices] if args.devices else []
                cmd += ["--max-time-s", str(args.max_time_s)] if args.max_time_s else []
                cmd += ["--kernel", args.kernel] if args.kernel else []
            print(f"calibrate: {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL)
            if r.returncode not in (0, 1):
                raise InputError(f"run {run_id} exited {r.returncode}; see its output above")
        groups = {}
        for run_id, frac in runs:
            df = load_runs([out / run_id]).df
            ok = df[df["status"] == "ok"]
            groups[run_id] = {r["case_id"]: r["process_samples"] for r in ok.to_dict("records")}
        aa = [groups[r] for r, f in runs if not f]
        injected: dict[float, list] = {}
        for r, f in runs:
            if f:
                injected.setdefault(f, []).append(groups[r])
        result = calibrate(aa, injected, args.threshold)
        measured = _measured_injection(runs, groups)
        paths = write_calibration(result, measured, out, args.threshold, args.repeats)
    except DsabenchError as exc:
        return _fail("calibrate", exc)
    print(paths["table"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return EXIT_OK


def _measured_injection(runs, groups) -> dict[float, dict[str, float]]:
    """The slowdown each injected run really measured, per case: its median over the mean of the
    A/A runs' medians, minus 1. It differs from the fraction asked for where a host-bound forward
    hides device time, or where the delay's own launch adds to it."""
    import numpy as np  # noqa: PLC0415

    aa = [groups[r] for r, f in runs if not f]
    out: dict[float, dict[str, float]] = {}
    for r, f in runs:
        if not f:
            continue
        for case, g in groups[r].items():
            base = [np.median(np.concatenate(a[case])) for a in aa if case in a and a[case]]
            if base and g:
                out.setdefault(f, {})[case] = float(np.median(np.concatenate(g)) / np.mean(base) - 1)
    return out


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="measure the regression gate on this machine: false alarms and power",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("scenarios", help="preset name or scenario file (use --filter for a subset)")
    p.add_argument("--backend", choices=["paddle", "torch"], default="paddle")
    p.add_argument("--filter", help="only cases whose id matches this regular expression")
    p.add_argument("--devices", help="as for run")
    p.add_argument("--kernel", choices=("auto", "reference", "triton", "flashmla"))
    p.add_argument("--aa-runs", type=flags.int_in("--aa-runs", 2, 20), default=3,
                   help="runs of the unchanged code; every pair of them is an A/A comparison (default 3: 3 pairs)")
    p.add_argument("--inject", type=_fractions, default=DEFAULT_INJECT,
                   help="injected delays as fractions of each forward (default 0.05,0.015)")
    p.add_argument("--repeats", type=flags.int_in("--repeats", 1, 20), default=3,
                   help="worker processes per case in each run (default 3)")
    p.add_argument("--threshold", type=_threshold, default=DEFAULT_THRESHOLD)
    p.add_argument("--max-time-s", type=flags.positive_float("--max-time-s"))
    p.add_argument("--out", type=Path, default=Path("results") / "runs")
    p.add_argument("--run-id", type=flags.run_id, default="calibrate")
    p.add_argument("--no-run", action="store_true",
                   help="measure nothing: judge the runs an earlier calibration left in OUT/RUN_ID again "
                        "(another --threshold, say)")
    p.set_defaults(func=cmd_calibrate)
