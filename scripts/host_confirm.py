"""Issue 22's targets checked on the runs of scripts/gpu_host_confirm.sh: runs with the default
(`--pin auto`) alternating with runs of the alternative (`--pin off`), the same cases in each.

    python3 scripts/host_confirm.py RUNS_DIR [--out DIR]

RUNS_DIR holds run directories named MODE-N (auto-1, off-1, auto-2, ...). Per mode, over its runs:

- spread: per run and case, the SD over the mean of the worker processes' medians of their steady
  chunks (analysis/host_steady.steady_groups with the run's probe reference); the target is 3% or
  less. Beside it the same over all chunks, and the disturbed share of the case's chunks;
- the same spread on the gate's scale (what `dsabench compare` calls `noisy` beyond 3%, there
  pooled over both runs): the ddof-1 SD of the log process medians over the chunks steady by
  evidence alone (host_steady.steady_side: no level rule, a process kept only with >= 3 steady
  chunks and half or more of its own; probe reference over the case's chunks in the run, where
  the gate takes both runs'), or where fewer than 2 processes are kept, the fallback on all samples
  the gate would take, with their spread;
- ratio: per run and configuration, baseline (tensor-contiguous) over patched (scalar-view) from the
  rounds where both were steady (host_steady.steady_ratio); the target is the three runs within 2%
  (largest over smallest);
- A/A: each pair of the mode's runs judged by `dsabench compare --json` (3% band, no history),
  counted: cases `noisy`, and cases called `slower` or `faster` (false calls: the code is the same).

With --out, the compares' JSON and text and summary.txt go there. Benchmark figures for a reader,
not a test. A mode whose runs recorded another pin (the default resolving to off on a host without
a GPU) is named as such: then the comparison says nothing about pinning.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suite"))

from dsabench.analysis import host_steady as hs  # noqa: E402
from dsabench.analysis.hierarchy import log_levels  # noqa: E402
from dsabench.store.rundir import read_manifest, read_records  # noqa: E402

NAME = re.compile(r"^(?P<mode>[a-z]+)-(?P<n>\d+)$")
SPREAD_TARGET = 0.03
RATIO_TARGET = 0.02
BASELINE, PATCHED = "tensor-contiguous", "scalar-view"


def spread(xs) -> float:
    return statistics.pstdev(xs) / statistics.fmean(xs) if len(xs) > 1 else float("nan")


def log_spread(groups) -> float:
    """The gate's per-side spread: ddof-1 SD of the log process medians (hierarchy.level_interval)."""
    return float(log_levels(groups).std(ddof=1)) if len(groups) > 1 else float("nan")


def gate_scale(ps: list) -> dict:
    """A case side's spread as the gate would judge it alone; `fallback` the reason it would rest on
    all samples instead (None when it rests on the steady chunks)."""
    every = log_spread([[s for g in p.samples_ms for s in g] for p in ps])
    ref = hs.probe_reference(ps)
    if ref is None or any(p.rebuilt for p in ps):
        return {"gate": float("nan"), "fallback": "no chunk evidence", "gate_all": every}
    groups, _, _ = hs.steady_side(ps, ref)
    if len(groups) < 2:
        return {"gate": float("nan"), "fallback": f"{len(groups)} of {len(ps)} processes mostly steady",
                "gate_all": every}
    return {"gate": log_spread(groups), "fallback": None, "gate_kept": len(groups), "gate_all": every}


def gate_text(row: dict) -> str:
    if row["fallback"]:
        return f"fallback: all samples ({row['fallback']}), spread {pct(row['gate_all'])}"
    return f"{pct(row['gate'])} ({row['gate_kept']}/{row['processes']} processes)"


def load(run_dir: Path) -> dict:
    """A run's eager case sides: case id -> its processes' chunks; its probe reference; its pins."""
    m = read_manifest(run_dir)
    chunk = (m.get("protocol") or {}).get("chunk")
    sides = defaultdict(list)
    cores = {}  # repeat -> the core each pass's worker timed on (first item), None unpinned
    for r in read_records(run_dir)[0]:
        if r["status"] == "ok" and r["case_id"].endswith(".eager"):
            p = hs.record_chunks(r, chunk)
            if p is not None:
                sides[r["case_id"]].append(p)
            cores.setdefault(r.get("repeat", 0), ((r.get("worker") or {}).get("pin") or {}).get("core"))
    ref = hs.probe_reference(p for ps in sides.values() for p in ps)
    cores = [cores[k] for k in sorted(cores)]
    return {"dir": run_dir, "pin": m["options"].get("pin"), "sides": dict(sides), "ref": ref, "cores": cores}


def case_rows(run: dict) -> list[dict]:
    out = []
    for case, ps in sorted(run["sides"].items()):
        steady = [float(np.median(g)) for g in hs.steady_groups(ps, run["ref"])]
        every = [float(np.median([s for g in p.samples_ms for s in g])) for p in ps]
        out.append({"case": case, "steady": spread(steady), "kept": len(steady), "processes": len(ps),
                    "all": spread(every), "disturbed": hs.case_host(ps, run["ref"]).disturbed_share,
                    **gate_scale(ps)})
    return out


def ratios(run: dict) -> dict:
    """configuration (the case id without its variant) -> baseline/patched over steady rounds, or None."""
    out = {}
    for case, ps in run["sides"].items():
        if f".{BASELINE}." not in case:
            continue
        other = run["sides"].get(case.replace(f".{BASELINE}.", f".{PATCHED}."))
        if other:
            out[case.replace(f".{BASELINE}", "")] = hs.steady_ratio(other, ps, run["ref"])  # cand/base: baseline/patched
    return out


def compare(base: Path, cand: Path, out: Path | None) -> dict:
    """`dsabench compare BASE CAND --json` as a user runs it; its JSON (and text, under `out`)."""
    with tempfile.TemporaryDirectory() as tmp:
        json_path = (out or Path(tmp)) / f"{base.name}-vs-{cand.name}.json"
        r = subprocess.run([sys.executable, "-m", "dsabench", "compare", str(base), str(cand), "--allow-mismatch",
                            "--json", str(json_path)], capture_output=True, text=True, timeout=600)
        if out:
            (out / f"{base.name}-vs-{cand.name}.txt").write_text(r.stdout + r.stderr)
        if not json_path.exists():
            return {"error": f"compare exit {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1][:200]}"}
        return json.loads(json_path.read_text())


def pct(x: float) -> str:
    return f"{x:.1%}" if x == x else "-"


def gate_headline(rows: list[dict]) -> str:
    gate = [row["gate"] for row in rows if not row["fallback"]]
    met = sum(g <= SPREAD_TARGET for g in gate)
    return (f"; on the gate's scale (ddof-1 SD of log process medians, evidence-steady chunks): {met} of {len(rows)} "
            f"meet it ({len(rows) - len(gate)} fall back on all samples); median "
            f"{pct(float(np.median(gate))) if gate else '-'}, max {pct(max(gate)) if gate else '-'}")


def summary(runs_dir: Path, out: Path | None) -> list[str]:
    runs = defaultdict(dict)
    for d in sorted(runs_dir.iterdir()):
        m = NAME.match(d.name)
        if m and (d / "manifest.json").exists():
            runs[m["mode"]][int(m["n"])] = load(d)
    if not runs:
        raise SystemExit(f"{runs_dir}: no run directories named MODE-N with a manifest.json")
    lines = [f"runs in {runs_dir}: " + "; ".join(f"{mode}: {len(rs)}" for mode, rs in sorted(runs.items()))]
    for mode, rs in sorted(runs.items()):
        pins = Counter(r["pin"] for r in rs.values())
        lines += ["", f"== --pin {mode}: recorded pin {dict(pins)}; each pass's core per run "
                  + "; ".join(f"{n}: {r['cores']}" for n, r in sorted(rs.items()))]
        if mode == "auto" and set(pins) != {"probe"}:
            lines.append("   the default did not pin here (no GPU worker, or too few CPUs): these runs say nothing "
                         "about pinning")
        rows = [(n, row) for n, r in sorted(rs.items()) for row in case_rows(r)]
        steady = [row["steady"] for _, row in rows if row["steady"] == row["steady"]]
        every = [row["all"] for _, row in rows if row["all"] == row["all"]]
        met = sum(s <= SPREAD_TARGET for s in steady)
        lines.append(f"   spread of a case's steady-chunk median between processes (target <= {SPREAD_TARGET:.0%}): "
                     f"{met} of {len(rows)} run-cases meet it ({len(rows) - len(steady)} with fewer than 2 processes "
                     f"left steady); median {pct(float(np.median(steady))) if steady else '-'}, max "
                     f"{pct(max(steady)) if steady else '-'}; over all chunks median "
                     f"{pct(float(np.median(every))) if every else '-'}, max {pct(max(every)) if every else '-'}"
                     + gate_headline([row for _, row in rows]))
        for n, row in rows:
            lines.append(f"     run {n} {row['case']}: steady {pct(row['steady'])} ({row['kept']}/{row['processes']} "
                         f"processes), all {pct(row['all'])}, disturbed {row['disturbed']:.0%}; gate's scale "
                         + gate_text(row))
        per_config = defaultdict(dict)
        for n, r in rs.items():
            for config, sr in ratios(r).items():
                per_config[config][n] = sr
        lines.append(f"   baseline/patched from steady rounds per run (target: the runs within {RATIO_TARGET:.0%})")
        for config, by_run in sorted(per_config.items()):
            vals = [sr.ratio for sr in by_run.values() if sr is not None]
            agree = max(vals) / min(vals) - 1 if len(vals) > 1 else float("nan")
            cells = ", ".join(f"run {n} " + ("no steady round" if sr is None else
                                             f"{sr.ratio:.3f} ({sr.rounds_used}/{sr.rounds_total})")
                              for n, sr in sorted(by_run.items()))
            verdict = "-" if agree != agree else ("within" if agree <= RATIO_TARGET else "outside")
            lines.append(f"     {config}: {cells}; largest/smallest {pct(agree)} ({verdict})")
        lines.append("   A/A pairs (dsabench compare, 3% band): eager cases noisy, and called slower or faster")
        for a, b in itertools.combinations(sorted(rs), 2):
            doc = compare(rs[a]["dir"], rs[b]["dir"], out)
            if "error" in doc:
                lines.append(f"     {a} vs {b}: {doc['error']}")
                continue
            pairs = [p for p in doc["pairs"] if str(p["case"]).endswith(".eager")]
            verdicts = Counter(p["verdict"] for p in pairs)
            noisy = sum(bool(p.get("noisy")) for p in pairs)
            lines.append(f"     {a} vs {b}: {noisy} of {len(pairs)} noisy; "
                         + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    text = "\n".join(summary(args.runs, args.out)) + "\n"
    sys.stdout.write(text)
    if args.out:
        (args.out / "summary.txt").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
