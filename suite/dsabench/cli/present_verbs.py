"""The presentation verbs: `report` (PR evidence bundle) and `dashboard` (static HTML site)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Sequence

from dsabench.analysis.defaults import DEFAULT_THRESHOLD
from dsabench.cli.exit_codes import EXIT_OK
from dsabench.cli.output import fail as _fail, threshold as _threshold, warn as _warn
from dsabench.errors import DsabenchError

# The report and the dashboard (pandas, matplotlib, jinja2) are imported by the verb that runs.

def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected GB/s, e.g. 2500") from None
    if not v > 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of GB/s")
    return v


def default_out(paths: Sequence[Path], run_id: str) -> Path:
    """RUN/evidence for one path (a run, or a directory holding its shards), else reports/<run_id>."""
    from dsabench.present.report import DEFAULT_REPORTS  # noqa: PLC0415

    return Path(paths[0]) / "evidence" if len(paths) == 1 else DEFAULT_REPORTS / run_id


def cmd_report(args: argparse.Namespace) -> int:
    from dsabench.present.report import build_report, load_run_set  # noqa: PLC0415

    out = args.out
    try:
        rs = load_run_set(args.runs, args.run_id)
        base = load_run_set(args.baseline, args.baseline_run_id, what="--baseline") if args.baseline else None
        out = args.out or default_out(args.runs, rs.run_id)
        report = build_report(rs, out, baseline=base, threshold=args.threshold,
                              copy_bandwidth_gbs=args.copy_bandwidth_gbs,
                              allow_mismatch=args.allow_mismatch, svg=args.svg)  # fmt: skip
    except DsabenchError as exc:
        return _fail("report", exc)
    except OSError as exc:  # e.g. a full disk while writing: nothing is left behind (build_report)
        return _fail("report", f"--out {out}: cannot write {exc.filename or 'the bundle'}: {exc.strerror or exc}")
    _warn("report", rs.frame.warnings)
    files = sum(1 + (c.svg is not None) for c in report.charts)
    print(f"wrote {report.path} and {files} chart files ({'PNG + SVG' if args.svg else 'PNG'}) for run {rs.run_id!r}")
    return EXIT_OK


def _register_report(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="PR evidence bundle of one run: evidence.md and charts (PNG; SVG with --svg)",
        description=(
            "Write evidence.md (what ran, environment, patched-vs-baseline speedup with intervals, every variant vs "
            "baseline, copies and syncs, CUDA Graph capture, correctness, and with --baseline a run-vs-run table) "
            "and the charts it links. RUN is a run directory, the directories of its shards, or a directory holding "
            "them (with --run-id when it holds several runs)."
        ),
    )
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN")
    p.add_argument("--run-id", help="the run to report when RUN holds several")
    p.add_argument("--baseline", type=Path, nargs="+", metavar="RUN", help="a run to compare with, run by run")
    p.add_argument("--baseline-run-id", help="the run to use when --baseline holds several")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output directory (default: RUN/evidence for one RUN, else reports/<run_id>)")  # fmt: skip
    p.add_argument("--threshold", type=_threshold, default=DEFAULT_THRESHOLD,
                   help="the gate's band: a ratio cand / base above 1 + threshold or below 1 / (1 + threshold) is a "
                        f"change (default {DEFAULT_THRESHOLD})")  # fmt: skip
    p.add_argument("--copy-bandwidth-gbs", type=_positive, metavar="GBS",
                   help="memory bandwidth (GB/s, read + write) for the layout-copy bound when the run's trace "
                        "measured no layout copy (default: none, and no bound is drawn)")  # fmt: skip
    p.add_argument("--allow-mismatch", action="store_true",
                   help="with --baseline: compare runs from different device models or backends anyway")  # fmt: skip
    p.add_argument("--svg", action="store_true",
                   help="write each chart as SVG as well as PNG, linked from evidence.md (a large run's charts take "
                        "nearly twice as long)")  # fmt: skip
    p.set_defaults(func=cmd_report)




def cmd_dashboard(args) -> int:
    from dsabench.present.dashboard.site import build_dashboard  # noqa: PLC0415

    try:
        site = build_dashboard(args.paths, args.out, threshold=args.threshold, change_points=not args.no_change_points)
    except DsabenchError as exc:
        return _fail("dashboard", exc)
    _warn("dashboard", site.warnings)
    if site.change_note is not None:
        print(f"dsabench dashboard: note: change points not marked: {site.change_note}")
    print(f"wrote {len(site.pages)} pages for {site.runs} run(s) and {site.series} case series; open {site.index}")
    return EXIT_OK


def _register_dashboard(subparsers) -> None:
    p = subparsers.add_parser(
        "dashboard",
        help="write a static HTML dashboard (no network) over every run under RESULTS_DIR",
        description=(
            "Pages: the latest run per device and backend with patched-vs-baseline speedups, trends of each case's "
            "median over runs (95% CI, slower-than-previous verdicts, change points when apache-otava is installed), "
            "and one page per run. Shards of one run_id are one run. Open DIR/index.html in a browser."
        ),
    )
    p.add_argument("paths", type=Path, nargs="+", metavar="RESULTS_DIR", help="results directories or run directories")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="new, empty, or earlier dashboard directory")
    p.add_argument("--threshold", type=_threshold, default=DEFAULT_THRESHOLD,
                   help="changes from the previous run of a case within the band count as same: a ratio above "
                        f"1 + threshold or below 1 / (1 + threshold) is a change (default {DEFAULT_THRESHOLD})")  # fmt: skip
    p.add_argument("--no-change-points", action="store_true", help="skip change-point detection (apache-otava)")
    p.set_defaults(func=cmd_dashboard)


def register(subparsers) -> None:
    """Add `report` and `dashboard` to an argparse subparsers object."""
    _register_report(subparsers)
    _register_dashboard(subparsers)
