"""calibrate's output: a table per case, calibration.json, and a chart (PNG + SVG)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Mapping, Sequence

from dsabench.analysis.calibrate import CaseCalibration
from dsabench.present.text import text_table


def _signed(v) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v * 100:+.1f}%"


def _pct(v: float) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v * 100:.1f}%"


def table_lines(result: Sequence[CaseCalibration], measured: Mapping[float, float], threshold: float,
                repeats: int) -> list[str]:
    fracs = sorted({f for c in result for f in c.detected})
    head = (["case", "run-to-run", "A/A false", "noisy"] + [f"slower at +{f * 100:g}% (measured)" for f in fracs]
            + ["detectable"])
    rows = []
    for c in result:
        row = [c.case_id, _pct(c.run_to_run), f"{c.false_alarms}/{c.aa_pairs}", f"{c.noisy_pairs}/{c.aa_pairs}"]
        row += [f"{c.detected[f][0]}/{c.detected[f][1]} ({_signed(measured.get(f, {}).get(c.case_id))})" for f in fracs]
        row.append(_pct(c.mde))
        rows.append(row)
    pairs = sum(c.aa_pairs for c in result)
    alarms = sum(c.false_alarms for c in result)
    lines = [f"calibration: threshold +-{threshold:.1%}, {repeats} worker processes per case per run; every pair judged "
             "by compare's gate (hierarchical intervals, run-to-run noise from the A/A runs)",
             *text_table(head, rows, right=range(1, len(head))),
             f"A/A: {alarms} false verdicts in {pairs} case comparisons ({_pct(alarms / pairs if pairs else math.nan)})"]
    for f in fracs:
        hit = sum(c.detected[f][0] for c in result)
        tot = sum(c.detected[f][1] for c in result)
        quiet = [c for c in result if c.noisy_pairs == 0]
        hit_q = sum(c.detected[f][0] for c in quiet)
        tot_q = sum(c.detected[f][1] for c in quiet)
        lines.append(f"injected +{f * 100:g}%: called slower in {hit}/{tot} comparisons; {hit_q}/{tot_q} among cases not "
                     "marked noisy")
    lines.append("run-to-run: robust sd of the A/A runs' log medians; measured: the injected run's median over the "
                 "A/A runs' (a host-bound forward hides device delay; the delay's launch adds to it); detectable: "
                 "smallest slowdown called slower with 95% power under that noise (normal approximation); noisy: "
                 "pairs the gate marked noisy")
    return lines


def write_calibration(result: Sequence[CaseCalibration], measured: Mapping[float, float], out: Path,
                      threshold: float, repeats: int) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    table = out / "calibration.txt"
    table.write_text("\n".join(table_lines(result, measured, threshold, repeats)) + "\n")
    data = out / "calibration.json"
    data.write_text(json.dumps({
        "threshold": threshold, "repeats": repeats,
        "measured_injection": {str(k): dict(v) for k, v in measured.items()},  # per case
        "cases": [{**asdict(c), "detected": {str(k): list(v) for k, v in c.detected.items()}} for c in result],
    }, indent=2, default=lambda x: None if isinstance(x, float) and not math.isfinite(x) else x))
    png = _chart(result, out, threshold)
    return {"table": table, "json": data, **png}


def _chart(result: Sequence[CaseCalibration], out: Path, threshold: float) -> dict[str, Path]:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    n = max(len(result), 1)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * n))
    names = [c.case_id for c in result]
    y = range(len(result))
    ax.barh(list(y), [c.run_to_run * 100 if math.isfinite(c.run_to_run) else 0 for c in result],
            color="#4c72b0", label="run-to-run spread")
    ax.scatter([c.mde * 100 if math.isfinite(c.mde) else 0 for c in result], list(y), color="#c0392b", zorder=3,
               label="smallest detectable slowdown (95% power)")
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
