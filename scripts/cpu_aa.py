"""A/A on the CPU (issue 19, item 5): the same code measured as two impls, or in two runs, must
never come out `slower` or `faster`. A benchmark with figures, not a test (it times real work).

    python3 scripts/cpu_aa.py [--repeats 20] [--mode impls|runs|both] [--out DIR] [--filter REGEX]

impls: each seed is one `dsabench run smoke` of the prefill and mixed eager cases with two impls,
two commits of a FastDeploy tree whose forward is the same code (the second commit changes a
README only; tests/data/fastdeploy_fixture, the baseline's lines), interleaved in one worker;
judged as `dsabench compare --impls` judges (its Python function). runs: each seed is two runs of the mirror on the same
cases, `--process-repeats` worker processes each, judged as `dsabench compare A B` judges. Seed s names
the runs (`aa-s-...`), and the run id seeds each group's round order (bench/worker._round_seed).
Prints one line per seed and the false verdict count; writes aa.json under --out.
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


def judge(mode: str, runs: list[str]) -> None:
    """(In a child process, on the package under test.) The pairs' verdicts as one JSON list."""
    import math  # noqa: PLC0415

    from dsabench.store.frames import load_runs  # noqa: PLC0415

    if mode == "impls":
        from dsabench.analysis.compare_impls import compare_impls  # noqa: PLC0415

        result = compare_impls(load_runs([Path(runs[0])]))
    else:
        from dsabench.analysis.compare import compare_runs  # noqa: PLC0415

        result = compare_runs(load_runs([Path(runs[0])]), load_runs([Path(runs[1])]))

    def clean(v):
        v = v.item() if hasattr(v, "item") else v
        return None if isinstance(v, float) and not math.isfinite(v) else v

    rows = [{k: clean(r.get(k)) for k in KEYS} for r in result.table.to_dict("records")]
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


def impls_seed(seed: int, out: Path, repo: Path, a: str, b: str, filt: str, extra: list[str]) -> list[dict]:
    run_id = f"aa-{seed}-impls"
    run_or_fail("run", "smoke", "--filter", filt, "--impl", f"fastdeploy:{repo}@{a[:12]}",
                "--impl", f"fastdeploy:{repo}@{b[:12]}", "--out", out, "--run-id", run_id, "--profile-iters", "0",
                *extra)
    return verdicts("impls", out / run_id)


def runs_seed(seed: int, out: Path, filt: str, process_repeats: int, extra: list[str]) -> list[dict]:
    ids = [f"aa-{seed}-run{i}" for i in (1, 2)]
    for run_id in ids:
        run_or_fail("run", "smoke", "--filter", filt, "--out", out, "--run-id", run_id, "--profile-iters", "0",
                    "--repeats", process_repeats, *extra)
    return verdicts("runs", out / ids[0], out / ids[1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=20, help="seeds (default 20)")
    ap.add_argument("--mode", choices=("impls", "runs", "both"), default="impls")
    ap.add_argument("--process-repeats", type=int, default=2, help="runs mode: worker processes per case (default 2)")
    ap.add_argument("--filter", default=FILTER)
    ap.add_argument("--out", type=Path, help="where runs and aa.json go (default: a temporary directory, removed)")
    ap.add_argument("--run-arg", action="append", default=[], help="extra argument for every dsabench run")
    ap.add_argument("--judge", nargs="+", metavar=("MODE", "RUN"), help=argparse.SUPPRESS)  # the child's verb
    args = ap.parse_args(argv)
    if args.judge:
        judge(args.judge[0], args.judge[1:])
        return 0
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
                got = (impls_seed(seed, out, repo, a, b, args.filter, args.run_arg) if mode == "impls"
                       else runs_seed(seed, out, args.filter, args.process_repeats, args.run_arg))
                for g in got:
                    g["seed"] = seed
                rows += got
                false = [g for g in got if g["verdict"] in CHANGED]
                print(f"{mode} seed {seed:2d}: " + "; ".join(
                    f"{g['case'].split('.')[0]} {g['verdict']} {100 * (g['ratio'] - 1):+.1f}% "
                    f"[{100 * (g['ci_low'] - 1):+.1f}, {100 * (g['ci_high'] - 1):+.1f}]"
                    if g.get("ratio") is not None else f"{g['case']} {g['verdict']}" for g in got)
                    + (f"  <- {len(false)} false" if false else ""), flush=True)
            false = [r for r in rows if r["verdict"] in CHANGED]
            counts: dict = {}
            for r in rows:
                counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
            report["modes"][mode] = {"pairs": len(rows), "false_verdicts": len(false), "verdicts": counts,
                                     "wall_s": round(time.perf_counter() - t0, 1), "rows": rows}
            print(f"{mode}: {len(false)} false slower/faster of {len(rows)} A/A pairs over {args.repeats} seeds "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}); {time.perf_counter() - t0:.0f} s")
        (out / "aa.json").write_text(json.dumps(report, indent=1) + "\n")
    finally:
        if args.out is None:
            shutil.rmtree(tmp, ignore_errors=True)
        elif repo is not None:
            shutil.rmtree(repo.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
