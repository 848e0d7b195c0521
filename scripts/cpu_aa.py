"""A/A on the CPU (issue 19, item 5): the same code measured as two impls, or in two runs, must
never come out `slower` or `faster`. A benchmark with figures, not a test (it times real work).

    python3 scripts/cpu_aa.py [--repeats 20] [--mode impls|runs|both] [--process-repeats 3] [--out DIR]

impls: each seed is one `dsabench run smoke` of the prefill and mixed eager cases with two impls,
two commits of a FastDeploy tree whose forward is the same code (the second commit changes a
README only; tests/data/fastdeploy_fixture, the baseline's lines), interleaved in one worker per
process, `--process-repeats` processes; judged as `dsabench compare --impls` judges. runs: each
seed is two runs of the mirror on the same cases, judged as `dsabench compare A B` judges. Seed s
names the runs (`aa-s-...`), and the run id seeds each group's round order (bench/worker._round_seed).
Beside the gate's verdict on all rounds, the same gate on the host-steady rounds only
(analysis/host_steady.steady_pairs: both sides steady, in step; cross-run: steady_groups), with the
rounds (cross-run: chunks) used. Prints one line per seed and the false verdict counts; writes aa.json under --out.
The gate calls no change with one process a side, so --process-repeats must be 2 or more for the
A/A to test anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "fastdeploy_fixture"
FILTER = r"^(prefill|mixed)\..*\.eager$"
CHANGED = {"slower", "faster"}
WITHHELD = "host_changed"  # the gate's reason for an eager case across runs on a host that changed (gate.HOST_CHANGED)
BAND = 0.03  # the default threshold, for the per-round diagnostic's count


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def same_code_commits(where: Path) -> tuple[Path, str, str]:
    """A FastDeploy tree at two commits whose forward is byte-identical (the second adds a README)."""
    repo = where / "FastDeploy"
    shutil.copytree(FIXTURE, repo)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "bench@example.invalid")
    git(repo, "config", "user.name", "bench")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "A: the forward")
    a = git(repo, "rev-parse", "HEAD")
    (repo / "README.md").write_text("A/A: no code change.\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-qm", "B: README only")
    return repo, a, git(repo, "rev-parse", "HEAD")


def _env() -> dict:
    """This checkout's package first on the path, whatever is installed."""
    return dict(os.environ, PYTHONPATH=str(REPO / "suite") + os.pathsep + os.environ.get("PYTHONPATH", ""))


def dsabench(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dsabench", *map(str, args)], capture_output=True, text=True,
                          env=_env(), cwd=REPO)


KEYS = ("case", "verdict", "ratio", "ci_low", "ci_high", "reason", "message")


def _clean(v):
    import math  # noqa: PLC0415

    v = v.item() if hasattr(v, "item") else v
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _steady(base_rows, cand_rows, paired: bool) -> dict:
    """The gate on the host-steady rounds (paired: both sides steady, in step) or chunks (unpaired)."""
    from dsabench.analysis import host_steady as hs  # noqa: PLC0415
    from dsabench.analysis.compare import gate_decision  # noqa: PLC0415
    from dsabench.analysis.defaults import DEFAULT_THRESHOLD  # noqa: PLC0415

    bp = [p for r in base_rows for p in hs.row_processes(r)]
    cp = [p for r in cand_rows for p in hs.row_processes(r)]
    if paired:
        ref = hs.probe_reference(bp + cp)
        pairs = hs.steady_pairs(bp, cp, ref)
        bg, cg, used, total = pairs.base, pairs.cand, pairs.rounds_used, pairs.rounds_total
    else:  # one reference probe from both runs (as host_steady.pair_host); "used" counts steady chunks of both
        ref = hs.probe_reference(bp + cp)
        bg, cg = hs.steady_groups(bp, ref), hs.steady_groups(cp, ref)
        hb, hc = hs.case_host(bp, ref), hs.case_host(cp, ref)
        used, total = hb.chunks - hb.disturbed + hc.chunks - hc.disturbed, hb.chunks + hc.chunks
    if not bg or not cg:
        return {"verdict": "undecided", "why": "no host-steady round", "used": used, "total": total}
    d = gate_decision(bg, cg, DEFAULT_THRESHOLD, paired=paired)
    return {"verdict": d.verdict.value, "ratio": _clean(d.ratio), "ci_low": _clean(d.ci_low),
            "ci_high": _clean(d.ci_high), "why": d.message, "used": used, "total": total}


def _per_round(base_rows, cand_rows) -> dict | None:
    """Diagnostic, not a verdict: the paired level of each process taken as the median of its
    per-round log ratios (sample i of both sides is one round) instead of the ratio of its two
    medians, with the same Student t interval over processes. It says whether a load burst that
    hit one side of a round, and so moved one side's median, is what a false call rests on."""
    import math  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    from scipy.stats import t  # noqa: PLC0415

    levels = []
    for b, c in zip(base_rows, cand_rows):
        for gb, gc in zip(b.get("process_samples") or [], c.get("process_samples") or []):
            n = min(len(gb), len(gc))
            if n:
                levels.append(float(np.median(np.log(np.asarray(gc[:n]) / np.asarray(gb[:n])))))
    if len(levels) < 2:
        return None
    x = np.asarray(levels)
    h = float(t.ppf(0.975, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return {"ratio": math.exp(x.mean()), "ci_low": math.exp(x.mean() - h), "ci_high": math.exp(x.mean() + h)}


def judge(mode: str, runs: list[str]) -> None:
    """(In a child process, on the package under test.) Each pair's verdict, all rounds and steady
    rounds, as one JSON list."""
    from dsabench.store.frames import load_runs  # noqa: PLC0415

    if mode == "impls":
        from dsabench.analysis.compare_impls import compare_impls, impls_of  # noqa: PLC0415

        frame = load_runs([Path(runs[0])])
        result = compare_impls(frame)
        df = frame.df
        base_impl, cand_impl = impls_of(frame)
        steady = {}
        for group, rows in df.groupby("group_id"):
            b = rows[rows["impl"] == base_impl].to_dict("records")
            c = rows[rows["impl"] == cand_impl].to_dict("records")
            if b and c:
                steady[group] = _steady(b, c, paired=True)
                steady[group]["per_round"] = _per_round(b, c)
    else:
        from dsabench.analysis.compare import compare_runs  # noqa: PLC0415

        base, cand = load_runs([Path(runs[0])]), load_runs([Path(runs[1])])
        result = compare_runs(base, cand)
        steady = {}
        for case_id, rows in base.df.groupby("case_id"):
            c = cand.df[cand.df["case_id"] == case_id].to_dict("records")
            if c:
                steady[case_id] = _steady(rows.to_dict("records"), c, paired=False)
    rows = []
    for r in result.table.to_dict("records"):
        row = {k: _clean(r.get(k)) for k in KEYS}
        row["steady"] = steady.get(row["case"])  # impls: keyed by group id; runs: by case id, as the table
        rows.append(row)
    print(json.dumps(rows, default=str))


def verdicts(mode: str, *runs: Path) -> list[dict]:
    r = subprocess.run([sys.executable, __file__, "--judge", mode, *map(str, runs)], capture_output=True, text=True,
                       env=_env(), cwd=REPO)
    if r.returncode != 0:
        sys.exit(f"cpu_aa: judging {mode} {runs} failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_or_fail(*args) -> None:
    r = dsabench(*args)
    if r.returncode != 0:
        sys.exit(f"cpu_aa: dsabench {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr[-3000:]}")


def impls_seed(seed: int, out: Path, repo: Path, a: str, b: str, filt: str, process_repeats: int,
               extra: list[str]) -> list[dict]:
    run_id = f"aa-{seed}-impls"
    run_or_fail("run", "smoke", "--filter", filt, "--impl", f"fastdeploy:{repo}@{a[:12]}",
                "--impl", f"fastdeploy:{repo}@{b[:12]}", "--out", out, "--run-id", run_id, "--profile-iters", "0",
                "--repeats", process_repeats, *extra)
    return verdicts("impls", out / run_id)


def runs_seed(seed: int, out: Path, filt: str, process_repeats: int, extra: list[str]) -> list[dict]:
    ids = [f"aa-{seed}-run{i}" for i in (1, 2)]
    for run_id in ids:
        run_or_fail("run", "smoke", "--filter", filt, "--out", out, "--run-id", run_id, "--profile-iters", "0",
                    "--repeats", process_repeats, *extra)
    return verdicts("runs", out / ids[0], out / ids[1])


def _pct(x) -> str:
    return f"{100 * (x - 1):+.1f}%" if x is not None else "n/a"


def _line(g: dict) -> str:
    st = g.get("steady") or {}
    steady = (f" | steady {st.get('verdict')} {_pct(st.get('ratio'))} ({st.get('used')}/{st.get('total')})"
              if st else "")
    pr = st.get("per_round")
    if pr:
        steady += f" | per-round {_pct(pr['ratio'])} [{_pct(pr['ci_low'])}, {_pct(pr['ci_high'])}]"
    held = " (host changed)" if g.get("reason") == WITHHELD else ""
    return (f"{g['case'].split('.')[0]} {g['verdict']}{held} {_pct(g.get('ratio'))} "
            f"[{_pct(g.get('ci_low'))}, {_pct(g.get('ci_high'))}]{steady}")


def _counts(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "none"


def _tally(rows: list[dict], wall_s: float) -> dict:
    counts: dict = {}
    steady: dict = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
        v = (r.get("steady") or {}).get("verdict", "none")
        steady[v] = steady.get(v, 0) + 1
    def beyond(r) -> bool:
        pr = (r.get("steady") or {}).get("per_round") or {}
        from dsabench.analysis.gate import edges  # noqa: PLC0415

        low, high = edges(BAND)  # the gate's band, symmetric on the log scale
        return bool(pr) and (pr["ci_low"] > high or pr["ci_high"] < low)

    return {"pairs": len(rows), "false_verdicts": sum(r["verdict"] in CHANGED for r in rows), "verdicts": counts,
            "withheld": sum(r.get("reason") == WITHHELD for r in rows),
            "per_round_beyond_band": sum(beyond(r) for r in rows),
            "false_verdicts_steady": sum((r.get("steady") or {}).get("verdict") in CHANGED for r in rows),
            "verdicts_steady": steady, "rounds_used": sum((r.get("steady") or {}).get("used", 0) for r in rows),
            "rounds_total": sum((r.get("steady") or {}).get("total", 0) for r in rows),
            "wall_s": round(wall_s, 1), "rows": rows}


def rejudge(out: Path) -> int:
    """The runs of an earlier invocation judged again: impls runs aa-S-impls, run pairs aa-S-run1/2."""
    import re  # noqa: PLC0415

    report: dict = {"rejudged": str(out), "modes": {}}
    for mode, pattern in (("impls", r"aa-(\d+)-impls"), ("runs", r"aa-(\d+)-run1")):
        seeds = sorted(int(m.group(1)) for d in out.iterdir() if (m := re.fullmatch(pattern, d.name)))
        if not seeds:
            continue
        rows = []
        for seed in seeds:
            got = (verdicts("impls", out / f"aa-{seed}-impls") if mode == "impls"
                   else verdicts("runs", out / f"aa-{seed}-run1", out / f"aa-{seed}-run2"))
            for g in got:
                g["seed"] = seed
            rows += got
            print(f"{mode} seed {seed:2d}: " + "; ".join(_line(g) for g in got), flush=True)
        report["modes"][mode] = t = _tally(rows, 0.0)
        print(f"{mode}: {t['false_verdicts']} false slower/faster of {t['pairs']} A/A pairs over {len(seeds)} seeds "
              f"({_counts(t['verdicts'])}; withheld, the host changed between the runs: {t['withheld']}); "
              f"on host-steady rounds {t['false_verdicts_steady']} "
              f"({_counts(t['verdicts_steady'])}; rounds used {t['rounds_used']} of {t['rounds_total']}); "
              f"per-round paired levels beyond the {BAND:.0%} band: {t['per_round_beyond_band']}")
    report["host"] = host_figures(out)
    (out / "aa.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


def host_figures(out: Path) -> dict:
    """What the chunks' evidence says across every run under `out`, per case kind: rank correlation
    of the probe with the forward's CPU time and with its wall time, of the run delay share with
    the wall time; the forward's CPU time in chunks whose probe was slow (host_steady.PROBE_SLOW x
    the 2% quantile) and in the others."""
    import numpy as np  # noqa: PLC0415
    from scipy.stats import spearmanr  # noqa: PLC0415

    from dsabench.analysis.host_steady import PROBE_REF_QUANTILE, PROBE_SLOW  # noqa: PLC0415

    figures = {}
    for kind in ("prefill", "mixed"):
        rows = []
        for path in sorted(out.glob("aa-*/cases.jsonl")):
            for line in path.read_text().splitlines():
                r = json.loads(line)
                if r["case_id"].startswith(kind) and r["status"] == "ok":
                    rows += [(c["probe_us"], c["cpu_ms"] / c["samples"], c["host_ms"] / c["samples"],
                              c["run_delay_ms"] / c["host_ms"]) for c in r["timing"].get("chunks") or []
                             if c.get("probe_us") and c.get("run_delay_ms") is not None]
        if len(rows) < 3:
            continue
        probe, cpu, wall, delay = (np.asarray(x) for x in zip(*rows))
        slow = probe > PROBE_SLOW * np.quantile(probe, PROBE_REF_QUANTILE)
        figures[kind] = {
            "chunks": len(rows), "rho_probe_cpu": float(spearmanr(probe, cpu)[0]),
            "rho_probe_wall": float(spearmanr(probe, wall)[0]), "rho_delay_wall": float(spearmanr(delay, wall)[0]),
            "slow_probe_share": float(slow.mean()),
            "cpu_ms_slow_probe": float(np.median(cpu[slow])) if slow.any() else None,
            "cpu_ms_other": float(np.median(cpu[~slow])) if (~slow).any() else None}
        f = figures[kind]
        print(f"host, {kind}: {f['chunks']} chunks; rank correlation probe~CPU time per forward {f['rho_probe_cpu']:+.2f}, "
              f"probe~wall {f['rho_probe_wall']:+.2f}, run delay share~wall {f['rho_delay_wall']:+.2f}; "
              f"{f['slow_probe_share']:.0%} of chunks with a slow probe, CPU time per forward {f['cpu_ms_slow_probe']:.0f} "
              f"ms there vs {f['cpu_ms_other']:.0f} ms")
    return figures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=20, help="seeds (default 20)")
    ap.add_argument("--mode", choices=("impls", "runs", "both"), default="impls")
    ap.add_argument("--process-repeats", type=int, default=3,
                    help="worker processes per case in every run (default 3, the pr preset's; the gate needs >= 2)")
    ap.add_argument("--filter", default=FILTER)
    ap.add_argument("--out", type=Path, help="where runs and aa.json go (default: a temporary directory, removed)")
    ap.add_argument("--run-arg", action="append", default=[], help="extra argument for every dsabench run")
    ap.add_argument("--judge", nargs="+", metavar=("MODE", "RUN"), help=argparse.SUPPRESS)  # the child's verb
    ap.add_argument("--rejudge", type=Path, metavar="DIR",
                    help="judge the runs an earlier --out DIR holds again (this tree's gate), rewrite its aa.json")
    args = ap.parse_args(argv)
    if args.judge:
        judge(args.judge[0], args.judge[1:])
        return 0
    if args.rejudge:
        return rejudge(args.rejudge)
    tmp = Path(tempfile.mkdtemp(prefix="cpu-aa-"))
    out = args.out or tmp
    out.mkdir(parents=True, exist_ok=True)
    modes = ("impls", "runs") if args.mode == "both" else (args.mode,)
    repo, a, b = same_code_commits(tmp) if "impls" in modes else (None, "", "")
    report: dict = {"filter": args.filter, "seeds": args.repeats, "modes": {}}
    try:
        for mode in modes:
            rows, t0 = [], time.perf_counter()
            for seed in range(args.repeats):
                got = (impls_seed(seed, out, repo, a, b, args.filter, args.process_repeats, args.run_arg)
                       if mode == "impls" else runs_seed(seed, out, args.filter, args.process_repeats, args.run_arg))
                for g in got:
                    g["seed"] = seed
                rows += got
                false = [g for g in got if g["verdict"] in CHANGED]
                false_steady = [g for g in got if (g.get("steady") or {}).get("verdict") in CHANGED]
                print(f"{mode} seed {seed:2d}: " + "; ".join(_line(g) for g in got)
                      + (f"  <- {len(false)} false" if false else "")
                      + (f"  <- {len(false_steady)} false on steady rounds" if false_steady else ""), flush=True)
            report["modes"][mode] = _tally(rows, time.perf_counter() - t0)
            t = report["modes"][mode]
            print(f"{mode}: {t['false_verdicts']} false slower/faster of {t['pairs']} A/A pairs over {args.repeats} "
                  f"seeds ({_counts(t['verdicts'])}; withheld, the host changed: {t['withheld']}); "
                  f"on host-steady rounds {t['false_verdicts_steady']} "
                  f"({_counts(t['verdicts_steady'])}; rounds used {t['rounds_used']} of {t['rounds_total']}); "
                  f"{t['wall_s']:.0f} s")
        (out / "aa.json").write_text(json.dumps(report, indent=1) + "\n")
    finally:
        if args.out is None:
            shutil.rmtree(tmp, ignore_errors=True)
        elif repo is not None:
            shutil.rmtree(repo.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
