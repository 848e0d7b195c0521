"""The analysis verbs of the command line: compare, export, history.

`register(subparsers)` adds them to the main parser's subparsers; each sets `func`, and the
main CLI calls `args.func(args)`, which returns the exit code: 0 fine, 1 regression found
(compare with --fail-on-regression), 2 bad input (the error goes to stderr, one line), 4 nothing
slower but a case not judged that may hide a material slowdown (compare with --fail-on-regression:
`analysis.unjudged` says which cases, and why).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

from dsabench.analysis.defaults import AUTO_FLOOR, DEFAULT_THRESHOLD, MAX_PVALUE, MIN_CHANGE
from dsabench.errors import DsabenchError
from dsabench.cli import flags
from dsabench.cli.exit_codes import EXIT_OK, EXIT_REGRESSION, EXIT_UNJUDGED
from dsabench.cli.output import fail as _fail, threshold_or_auto as _threshold, warn as _warn

# The analysis (pandas, scipy) is imported by the verb that runs, not when the parser is built.

SAME_RUN = ("BASE and CAND are the same run ({run}): each case is compared with itself, so every ratio is 1 by "
            "construction and an interval is only the resampling's spread, not evidence of no change; compare two runs")


def _same_run(base, cand) -> bool:
    """The same run twice (the same directory, or a copy): the same run ids, made at the same moments."""
    return set(base.manifests) == set(cand.manifests) and all(
        base.manifests[k].get("created_at") == cand.manifests[k].get("created_at") for k in base.manifests)


def cmd_compare(args: argparse.Namespace) -> int:
    from dsabench.analysis.compare import compare_runs, compare_variants  # noqa: PLC0415
    from dsabench.present.fit import WIDTH  # noqa: PLC0415
    from dsabench.analysis.compare_impls import compare_impls  # noqa: PLC0415
    from dsabench.analysis.compare_kernels import compare_kernels  # noqa: PLC0415
    from dsabench.present.compare_text import format_markdown, format_table  # noqa: PLC0415
    from dsabench.analysis.unjudged import unjudged  # noqa: PLC0415
    from dsabench.store.frames import load_runs  # noqa: PLC0415

    try:
        base = load_runs([args.base])
        if sum(map(bool, (args.variants, args.impls, args.kernels))) > 1:
            return _fail("compare", "--variants, --impls and --kernels: give one of them")
        if (args.base_impl or args.cand_impl) and not args.impls:
            return _fail("compare", "--base-impl/--cand-impl: only with --impls")
        if (args.base_kernel or args.cand_kernel) and not args.kernels:
            return _fail("compare", "--base-kernel/--cand-kernel: only with --kernels")
        if args.kernels:
            if args.cand is not None:
                return _fail("compare", f"--kernels compares inside one run; got a second run {args.cand}")
            result = compare_kernels(base, args.base_kernel, args.cand_kernel, threshold=args.threshold)
        elif args.impls:
            if args.cand is not None:
                return _fail("compare", f"--impls compares inside one run; got a second run {args.cand}")
            result = compare_impls(base, args.base_impl, args.cand_impl, threshold=args.threshold)
        elif args.variants:
            if args.cand is not None:
                return _fail("compare", f"--variants compares inside one run; got a second run {args.cand}")
            result = compare_variants(base, args.base_variant, args.cand_variant, threshold=args.threshold)
        else:
            if args.cand is None:
                return _fail("compare", "CAND is missing; pass BASE and CAND runs, or --variants with one run")
            cand = load_runs([args.cand])
            history = load_runs(args.history) if args.history else None
            result = compare_runs(base, cand, threshold=args.threshold, allow_mismatch=args.allow_mismatch,
                                  history=history, include_calibration=args.include_calibration)
            if _same_run(base, cand):
                result = replace(result, warnings=(SAME_RUN.format(run=", ".join(base.manifests)), *result.warnings))
        items = unjudged(result)  # once: --json and the exit code say the same cases
        if args.json is not None:
            _write_json(result, args.json, items)
    except DsabenchError as exc:
        return _fail("compare", exc)
    sys.stdout.write(format_markdown(result) if args.markdown else format_table(result, None if args.wide else WIDTH))
    return _exit_code(result, args.fail_on_regression, items)


def _exit_code(result, fail_on_regression: bool, items) -> int:
    """Slower (or failed only in CAND) beats not judged: 1; else a case not judged that may hide a
    material slowdown (`items`, from `unjudged`): 4, never a silent pass; else 0. stderr says which,
    and why."""
    from dsabench.analysis.unjudged import slowdown_edge  # noqa: PLC0415
    from dsabench.present.unjudged_text import unjudged_lines  # noqa: PLC0415

    lines = unjudged_lines(items, slowdown_edge(result.threshold), within_run=result.mode != "runs")
    code = EXIT_OK
    if fail_on_regression and result.regressions:
        code = EXIT_REGRESSION
    elif fail_on_regression and items:
        code = EXIT_UNJUDGED
        lines[-1] += f"; nothing shown slower: exit {EXIT_UNJUDGED}"
    for line in lines:
        print(line, file=sys.stderr)
    if code == EXIT_REGRESSION:
        print(f"dsabench compare: {result.regressions} regression(s) (slower, or failed only in CAND); "
              f"exit {EXIT_REGRESSION}", file=sys.stderr)
    return code


def _write_json(result, path: Path, items=None) -> None:
    """The comparison as JSON: what was compared, and every pair with its verdict, reason code,
    reason in words, noisy qualifier and figures (NaN as null). base/cand_level_ms are the levels
    the ratio is formed from (cand / base = ratio); base/cand_pooled_median_ms the median of all
    of a side's samples, which is not what the verdict rests on. items: `unjudged(result)` where the
    caller has it already (None: computed here)."""
    import json  # noqa: PLC0415

    from dsabench.errors import InputError  # noqa: PLC0415

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v.item() if hasattr(v, "item") else v

    cols = ["case", "verdict", "reason", "why", "noisy", "noise", "band", "ratio", "ci_low", "ci_high", "p_value",
            "base_level_ms", "cand_level_ms", "base_pooled_median_ms", "cand_pooled_median_ms", "processes",
            "rests_on", "base_status", "cand_status", "message", "base_disturbed", "cand_disturbed", "steady_ratio",
            "steady_rounds", "rounds", "base_host_bound", "cand_host_bound"]
    doc = {"mode": result.mode, "base": result.base_label, "cand": result.cand_label, "threshold": result.threshold,
           "confidence": result.confidence, "device": result.device, "backend": result.backend,
           "kernel": result.kernel, "counts": result.counts(), "regressions": result.regressions,
           "withheld": len(result.withheld()), **_unjudged_json(result, items),
           "warnings": list(result.warnings) + list(result.mismatches),
           "pairs": [{c: clean(r.get(c)) for c in cols} for r in result.table.to_dict("records")]}
    try:
        Path(path).write_text(json.dumps(doc, indent=1, allow_nan=False, default=str) + "\n")
    except OSError as exc:
        raise InputError(f"--json {path}: could not be written ({exc.strerror or exc})") from None


def _unjudged_json(result, items) -> dict:
    """--json's account of the cases not judged that may hide a material slowdown (`items`, from
    `unjudged`): each with what stopped it, the largest ratio its interval allows (null: no interval)
    and about how many processes a side would judge it (null: unknown, or too many); the edge they are
    held against."""
    from dsabench.analysis.unjudged import slowdown_edge, unjudged  # noqa: PLC0415

    def num(v: float):
        return v if math.isfinite(v) else None

    items = unjudged(result) if items is None else items
    return {"unjudged_count": len(items), "unjudged_edge": slowdown_edge(result.threshold),
            "unjudged": [{"case": u.case, "reason": u.kind, "ratio": num(u.ratio), "ci_high": num(u.ci_high),
                          "spread": num(u.spread), "processes": u.processes, "repeats_to_judge": u.repeats}
                         for u in items]}


def cmd_export(args: argparse.Namespace) -> int:
    from dsabench.store.frames import export_parquet, load_runs  # noqa: PLC0415

    try:
        frame = load_runs(args.runs)
        export_parquet(frame, args.parquet)
    except DsabenchError as exc:
        return _fail("export", exc)
    _warn("export", frame.warnings)
    print(f"wrote {len(frame.df)} rows from {len(frame.manifests)} run(s) to {args.parquet}")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from dsabench.analysis.history import find_change_points  # noqa: PLC0415
    from dsabench.present.history_text import format_history  # noqa: PLC0415
    from dsabench.store.frames import load_runs  # noqa: PLC0415

    try:
        frame = load_runs(args.paths)
        history = find_change_points(frame, max_pvalue=args.max_pvalue, min_change=args.min_change,
                                     include_calibration=args.include_calibration)
    except DsabenchError as exc:
        return _fail("history", exc)
    sys.stdout.write(format_history(history, markdown=args.markdown))
    return EXIT_OK


def register(subparsers) -> None:
    """Add `compare`, `export` and `history` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "compare",
        help="compare two runs case by case, or two variants inside one run",
        description=(
            "Judge each case as faster, slower, same, undecided, new, missing, failed or not_comparable from the "
            "ratio CAND / BASE of the geometric mean of worker-process medians (sides timed in the same processes, "
            "--variants/--impls/--kernels: of each process's median round ratio) and its 95% Student t interval over "
            "the processes (and earlier runs, with --history; a within-process bootstrap where a side has one "
            "process, which calls no change). BASE and CAND are run directories "
            "(or directories holding the shards of one run)."
        ),
    )
    p.add_argument("base", type=Path, metavar="BASE")
    p.add_argument("cand", type=Path, metavar="CAND", nargs="?")
    p.add_argument("--threshold", type=_threshold, default=DEFAULT_THRESHOLD,
                   help=f"the band: a ratio cand / base above 1 + threshold is slower, below 1 / (1 + threshold) faster "
                        f"(default {DEFAULT_THRESHOLD}: +{DEFAULT_THRESHOLD * 100:.1f}%% or "
                        f"-{(1 - 1 / (1 + DEFAULT_THRESHOLD)) * 100:.1f}%%); 'auto': each case's band from its own noise "
                        f"(processes or history), at least {AUTO_FLOOR * 100:.1f}%%")  # fmt: skip
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="also write the comparison as JSON: every pair's verdict, reason, noisy qualifier and "
                        "figures, and the cases not judged that may hide a slowdown ('unjudged')")
    p.add_argument("--markdown", action="store_true", help="print markdown for a pull-request comment")
    p.add_argument("--wide", action="store_true",
                   help="print the table at full width: whole case ids, a row each for expected findings (default: "
                        "fitted to 120 columns)")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit 1 when a case is slower (noisy or not), or failed only in CAND; else exit 4 when a "
                        "case got no verdict and may hide a material slowdown: undecided (noisy or not) with an "
                        f"interval reaching the threshold's slower edge (auto: +{DEFAULT_THRESHOLD * 100:.1f}%%) or "
                        "beyond, one process a side (whatever its interval), withheld because the host changed "
                        "between the runs (host_changed), not_comparable (another clock, or no samples, on a side), or "
                        "only in BASE while CAND's run holds less than it planned (stopped early, a shard not "
                        "gathered); stderr says "
                        "how many, the largest slowdown they allow, why, and what would judge them; else 0")  # fmt: skip
    p.add_argument("--allow-mismatch", action="store_true",
                   help="compare runs from different device models, backends, attention kernels or injected delays anyway")  # fmt: skip
    p.add_argument("--history", type=Path, nargs="+", metavar="DIR",
                   help="earlier runs (results directories or runs): each case's run-to-run noise is estimated from "
                        "the runs of the same case, device model, backend, kernel, impl and injected delay made before "
                        "CAND, and goes into its interval (calibrate's runs are left out)")
    p.add_argument("--include-calibration", action="store_true",
                   help="with --history: let calibrate's runs (A/A and injected) vouch for the noise too")
    p.add_argument("--variants", action="store_true",
                   help="compare variants inside the one run BASE (--cand-variant vs --base-variant)")  # fmt: skip
    p.add_argument("--impls", action="store_true",
                   help="compare two impls inside the one run BASE (e.g. two FastDeploy commits of --impl)")
    p.add_argument("--base-impl", metavar="IMPL",
                   help="with --impls: the base impl, its label (mirror, fastdeploy:SHA12) or a SHA prefix "
                        "(default: the first of the run's two impls)")
    p.add_argument("--cand-impl", metavar="IMPL", help="with --impls: the candidate impl (default: the second)")
    p.add_argument("--kernels", action="store_true",
                   help="compare two attention kernels inside the one run BASE, made with a kernel axis "
                        "(dsabench run --kernel flashmla,triton,reference): the same cases, cand kernel vs base kernel")
    p.add_argument("--base-kernel", metavar="KERNEL",
                   help="with --kernels: the base kernel (default: the first the run asked for)")
    p.add_argument("--cand-kernel", metavar="KERNEL",
                   help="with --kernels: the candidate kernel (default: the second the run asked for)")
    p.add_argument("--base-variant", type=flags.variant("--base-variant"), default="baseline",
                   help="with --variants: 'baseline', 'patched' or SCALE+LAYOUT (default baseline)")
    p.add_argument("--cand-variant", type=flags.variant("--cand-variant"), default="patched",
                   help="with --variants: 'baseline', 'patched' or SCALE+LAYOUT (default patched)")
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser("export", help="write runs as one table to Parquet (needs pyarrow)")
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories, or directories of runs")
    p.add_argument("--parquet", type=Path, required=True, metavar="FILE")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "history",
        help="find change points in each case's median over a series of runs (needs apache-otava)",
        description="Runs are ordered by their manifests' created_at; each device model and backend is its own series.",
    )
    p.add_argument("paths", type=Path, nargs="+", metavar="RESULTS_DIR_OR_RUNS")
    p.add_argument("--max-pvalue", type=flags.float_in("--max-pvalue", 0, 1, True, False, " (a p-value)"),
                   default=MAX_PVALUE, help=f"largest p-value of a change point, in (0, 1] (default {MAX_PVALUE})")
    p.add_argument("--min-change", type=flags.float_in("--min-change", 0, math.inf, False, True,
                                                       " (a relative shift: 0.02 = 2%)"),
                   default=MIN_CHANGE, help=f"smallest relative shift of a change point, >= 0 (default {MIN_CHANGE})")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--include-calibration", action="store_true",
                   help="search calibrate's runs too (A/A and injected; left out by default)")
    p.set_defaults(func=cmd_history)
