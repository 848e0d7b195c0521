"""calibrate's output: a table per case, calibration.json, and a chart (PNG + SVG)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from dsabench.analysis.calibrate import CaseCalibration
from dsabench.analysis.gate import band_text
from dsabench.present.text import text_table


def _signed(v) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v * 100:+.1f}%"


def _pct(v: float) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v * 100:.1f}%"


_SOURCE = {"worker": "measured in the workers", "levels": "measured from run levels"}


def _measured_range(result: Sequence[CaseCalibration], f: float) -> str:
    vals = [c.measured[f] for c in result if f in c.measured and math.isfinite(c.measured[f])]
    if not vals:
        return "not measured"
    how = " and ".join(sorted({_SOURCE.get(c.size_source.get(f, "levels"), "measured") for c in result
                               if f in c.measured}))
    return f"{how} {_signed(min(vals))} to {_signed(max(vals))}"


def _threshold_text(threshold) -> str:
    return "auto (each case's band from its noise)" if threshold == "auto" else band_text(threshold)


def table_lines(result: Sequence[CaseCalibration], threshold, repeats: int, paired: bool = False) -> list[str]:
    fracs = sorted({f for c in result for f in c.detected})
    head = (["case", "run-to-run", "pair spread" if paired else "processes", "A/A false", "noisy"]
            + [f"+{f * 100:g}%: slower (measured)" for f in fracs] + ["detectable"])
    rows = []
    for c in result:
        row = [c.case_id, _pct(c.run_to_run), _pct(c.process_spread), f"{c.false_alarms}/{c.aa_pairs}",
               f"{c.noisy_pairs}/{c.aa_pairs}"]
        row += [f"{c.detected[f][0]}/{c.detected[f][1]} ({_signed(c.measured.get(f))})" for f in fracs]
        row.append(_pct(c.mde))
        rows.append(row)
    pairs = sum(c.aa_pairs for c in result)
    alarms = sum(c.false_alarms for c in result)
    how = ("paired: the mirror against its twin (mirror+inject=0) and its injected copies (mirror+inject=F), timed in "
           "the same rounds of the same processes, every pair judged by compare --impls' gate (t intervals over "
           "per-process ratios; one A/A pair a run)" if paired else
           "every pair judged by compare's gate (t intervals over processes; run-to-run noise from the other A/A runs)")
    lines = [f"calibration: threshold {_threshold_text(threshold)}, {repeats} worker processes per case per run; {how}",
             *text_table(head, rows, right=range(1, len(head))),
             f"A/A: {alarms} false verdicts in {pairs} case comparisons ({_pct(alarms / pairs if pairs else math.nan)})"]
    withheld = [c for c in result if c.withheld]
    if withheld:  # not a miss or a false alarm of the gate: no verdict, and why
        lines.append(f"withheld (host_changed): {sum(c.withheld for c in withheld)} comparisons of "
                     f"{len(withheld)} case(s) got no verdict: an eager case on all samples, the two runs' hosts "
                     "differing by probe or waiting for a CPU, or a host-bound one on two machines ("
                     + ", ".join(f"{c.case_id} {c.withheld}" for c in withheld)
                     + "); such an A/A pair is no false alarm, such an injected pair is not called slower")
    for f in fracs:
        hit = sum(c.detected[f][0] for c in result)
        tot = sum(c.detected[f][1] for c in result)
        big = [c for c in result if math.isfinite(c.measured.get(f, math.nan)) and math.isfinite(c.mde)
               and c.measured[f] >= c.mde]
        small = [c for c in result if math.isfinite(c.measured.get(f, math.nan)) and threshold != "auto"
                 and c.measured[f] <= threshold]
        lines.append(f"injected +{f * 100:g}% ({_measured_range(result, f)}): called slower in {hit}/{tot} comparisons; "
                     f"{sum(c.detected[f][0] for c in big)}/{sum(c.detected[f][1] for c in big)} where the measured "
                     "slowdown is at least the case's detectable change"
                     + ("" if threshold == "auto" else
                        f"; {sum(c.detected[f][0] for c in small)}/{sum(c.detected[f][1] for c in small)} where it is "
                        "within the threshold (a call there would be wrong)"))
    spreads = ("run-to-run: none (a comparison within one run has no run term); pair spread: pooled sd the A/A pairs' "
               "intervals rest on, of per-process log ratios where the gate paired the case (eager), of process "
               "levels where it did not (CUDA Graph cases, timed in their own turn); detectable: from those "
               "intervals' own standard error and degrees of freedom" if paired else
               "run-to-run: sd of the A/A runs' log levels; processes: pooled sd of per-process log levels within a run")
    lines.append(f"{spreads}; measured: the slowdown the injection really added, plain against delayed forwards in the "
                 "same worker (runs before that record: the injected runs' level over the A/A runs'), and detection "
                 "is judged against it; detectable: smallest slowdown called slower with 95% power under that noise "
                 "(t approximation); noisy: pairs the gate marked noisy")
    return lines


def _finite(x):
    """NaN and infinities as null: JSON has neither."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def write_calibration(result: Sequence[CaseCalibration], out: Path, threshold, repeats: int,
                      paired: bool = False) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    table = out / "calibration.txt"
    table.write_text("\n".join(table_lines(result, threshold, repeats, paired)) + "\n")
    data = out / "calibration.json"
    data.write_text(json.dumps(_finite({
        "threshold": threshold, "repeats": repeats, "paired": paired,
        "cases": [{**asdict(c), "detected": {str(k): list(v) for k, v in c.detected.items()},
                   "measured": {str(k): v for k, v in c.measured.items()},
                   "level_shift": {str(k): v for k, v in c.level_shift.items()},
                   "size_source": {str(k): v for k, v in c.size_source.items()}} for c in result],
    }), indent=2, allow_nan=False))
    png = _chart(result, out, threshold, paired)
    return {"table": table, "json": data, **png}


def _chart(result: Sequence[CaseCalibration], out: Path, threshold: float, paired: bool = False) -> dict[str, Path]:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    n = max(len(result), 1)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * n))
    names = [c.case_id for c in result]
    y = range(len(result))
    spread = [c.process_spread if paired else c.run_to_run for c in result]
    ax.barh(list(y), [v * 100 if math.isfinite(v) else 0 for v in spread], color="#4c72b0",
            label="A/A pairs' spread (within one run)" if paired else "run-to-run spread")
    ax.scatter([c.mde * 100 if math.isfinite(c.mde) else 0 for c in result], list(y), color="#c0392b", zorder=3,
               label="smallest detectable slowdown (95% power)")
    if threshold != "auto":
        ax.axvline(threshold * 100, color="#555555", linestyle="--", linewidth=1, label=f"threshold {threshold:.0%}")
    ax.set_yticks(list(y), [s if len(s) < 70 else "…" + s[-68:] for s in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("% of the case's median")
    ax.set_title("Gate calibration on this machine: noise and detectable change per case", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    paths = {"png": out / "calibration.png", "svg": out / "calibration.svg"}
    fig.savefig(paths["png"], dpi=110)
    fig.savefig(paths["svg"])
    plt.close(fig)
    return paths
