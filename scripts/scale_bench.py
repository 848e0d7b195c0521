"""How long `dashboard`, `compare` and `history` take over a year of nightly runs.

Writes RUNS nightly runs of the `nightly` preset (222 cases, about 81,000 records for 365 runs)
with the suite's own writer (`store.rundir.create_run_dir` / `append_record`, one fsync a
record, as a real run writes them), then runs each verb in a fresh process and prints its wall
time, peak memory (max RSS of the process) and, for the dashboard, the files and bytes it wrote.

The records take their shape from a committed H100 record (results/h100-2026-11-25: trace and
memory aggregates, per-phase samples, device, timing block); only the case, the run and the
samples change. Samples are synthetic: log-normal around a per-case median, a few per cent of
drift over the year and a 6% step in one case a third of the way in, so `history` and the
dashboard's verdicts have something to find. Baseline (tensor-scale) graph cases are
`capture_failed`, as on a GPU; one case in 500 is `crashed`.

These are figures to read, not a test: the targets of issue 21 (a year of nightlies on 2 cores:
dashboard <= 60 s, <= 50 MB on disk, <= 1 GB; report, history and compare --history <= 20 s
each; compare of two runs <= 10 s) are printed beside them. On a shared machine the wall time
includes waiting for a CPU: the load average is printed, and CPU time is the steadier figure.
`--tree DIR` times the package under DIR/suite instead (e.g. an exported older commit), so that
a before and an after are measured in turn under the same load (`--rounds`); the median of the
rounds is printed at the end, with the load averages (1, 5, 15 min) at each.

The loaders keep each run's rows between invocations (store.frame_cache). `--cache warm` (the
default) times them with every run already cached, as a nightly job finds its history but the
newest run (primed by one untimed load); `--cache cold` gives each timed process an empty cache
(it builds every run's rows and writes them); `--cache off` neither reads nor writes one.

    python scripts/scale_bench.py                       # 365 runs into /tmp/dsabench-scale
    python scripts/scale_bench.py --runs 30 --dir /tmp/small
    python scripts/scale_bench.py --only dashboard      # reuse the history already written
    python scripts/scale_bench.py --tree /tmp/before --tree . --rounds 3   # before/after, in turn
    python scripts/scale_bench.py --only history --cache cold --rounds 3    # first loads, no cache yet
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from dsabench.store.rundir import append_record, create_run_dir
from dsabench.workload.scenarios import load_named

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "results" / "h100-2026-11-25" / "pr-torch-h100-shard1of2"
T0 = datetime(2026, 1, 1, 2, 0, tzinfo=timezone.utc)
TARGETS = {"dashboard": (60.0, 1024.0), "report": (20.0, None), "history": (20.0, None),
           "compare --history": (20.0, None), "compare": (10.0, None)}
DASHBOARD_DISK_MB = 50.0


def _templates() -> tuple[dict, dict]:
    """A committed manifest and an ok record with a trace block (the richest shape)."""
    manifest = json.loads((TEMPLATE / "manifest.json").read_text())
    for line in (TEMPLATE / "cases.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["status"] == "ok" and record.get("trace"):
            return manifest, record
    raise SystemExit(f"{TEMPLATE}: no ok record with a trace to copy the shape from")


def _base_ms(case) -> float:
    """A plausible per-case median: grows with batch, context and cache; the copy costs more."""
    ms = 0.05 + 0.0004 * case.batch * case.context_len / 64 + 1e-5 * case.num_blocks
    if case.variant.layout == "contiguous":
        ms += 6e-5 * case.num_blocks
    return ms * (0.7 if case.graph else 1.0)


def write_history(root: Path, runs: int, seed: int = 0) -> int:
    nightly = load_named("nightly")
    cases = nightly.cases
    manifest0, record0 = _templates()
    rng = np.random.default_rng(seed)
    step_case = cases[len(cases) // 2].id
    n = 0
    for day in range(runs):
        run_id = f"nightly-{(T0 + timedelta(days=day)):%Y%m%d}"
        manifest = copy.deepcopy(manifest0)
        manifest.update(run_id=run_id, created_at=(T0 + timedelta(days=day)).isoformat(), preset="nightly",
                        shard=None, cases_planned=len(cases), scenario_file="scenarios/nightly.toml",
                        scenario_description=nightly.description, scenario_sha256=nightly.sha256,
                        command=["dsabench", "run", "nightly", "--backend", "torch", "--run-id", run_id])  # fmt: skip
        manifest["git"] = {"suite": {"sha": f"{day:08x}" + "a" * 32, "dirty": False},
                           "measured": {"path": "/fd", "sha": f"{day:08x}" + "f" * 32, "dirty": False,
                                        "message": f"nightly build {day}"}}  # fmt: skip
        path = create_run_dir(root / run_id, manifest)
        drift = 1.0 + 0.03 * np.sin(day / 58.0)
        for case in cases:
            r = copy.deepcopy(record0)
            r.update(run_id=run_id, case_id=case.id, config_id=case.config_id, group_id=case.group_id,
                     params=case.params(), started_at=manifest["created_at"])  # fmt: skip
            if case.graph and case.variant.scale == "tensor":
                r.update(status="capture_failed", timing=None, trace=None, phases_ms={}, memory=None, output=None,
                         message="CUDA error: operation not permitted when stream is capturing")  # fmt: skip
            elif rng.random() < 0.002:
                r.update(status="crashed", timing=None, trace=None, phases_ms={}, memory=None, output=None,
                         message="worker exited with signal 11 (SIGSEGV)")  # fmt: skip
            else:
                median = _base_ms(case) * drift * (1.06 if case.id == step_case and day >= runs // 3 else 1.0)
                k = int(rng.integers(20, 60))
                r["timing"]["samples_ms"] = (median * np.exp(rng.normal(0, 0.01, k))).tolist()
                r["phases_ms"] = {ph: (np.asarray(v) * median / 3.2 * np.exp(rng.normal(0, 0.02, len(v)))).tolist()
                                  for ph, v in record0["phases_ms"].items()}  # fmt: skip
                r["trace"]["file"] = None
            append_record(path, r)
            n += 1
        if day % 30 == 29:
            print(f"  wrote {day + 1} runs, {n} records", flush=True)
    (root / ".scale-bench").write_text(json.dumps({"runs": runs, "records": n, "cases": len(cases)}))
    return n


def _measure(argv: list[str], tree: Path | None = None, cache: str | None = None) -> tuple[float, float, float, int, str]:
    """(wall s, CPU s, max RSS MiB, exit code, last output line) of one fresh process. CPU time
    (user + system) is the figure to trust on a shared machine; wall time includes waiting.
    `tree`: import dsabench from tree/suite instead of the installed package."""
    env = dict(os.environ)
    if cache is not None:
        env["DSABENCH_CACHE_DIR"] = cache
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(tree).resolve() / "suite"), env.get("PYTHONPATH", "")])
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    last = (out.strip().splitlines() or [""])[-1]
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, last[:120]


def _disk(path: Path) -> tuple[int, float, float]:
    """(files, MB of content, MB allocated on disk) under path."""
    files, size, blocks = 0, 0, 0
    for p in path.rglob("*"):
        if p.is_file():
            st = p.stat()
            files, size, blocks = files + 1, size + st.st_size, blocks + st.st_blocks * 512
    return files, size / 1e6, blocks / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=365)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/dsabench-scale"))
    ap.add_argument("--only", choices=tuple(TARGETS), action="append")
    ap.add_argument("--tree", type=Path, action="append",
                    help="a checkout (or exported tree) whose suite/ to time; repeat it to time several in turn")
    ap.add_argument("--rounds", type=int, default=1, help="times each tree is timed, trees in turn")
    ap.add_argument("--cache", choices=("warm", "cold", "off"), default="warm",
                    help="the loaders' cache of run rows: primed (warm), empty for each process (cold), or off")
    args = ap.parse_args()
    history = args.dir / "history"
    meta = history / ".scale-bench"
    if not meta.is_file() or json.loads(meta.read_text())["runs"] != args.runs:
        shutil.rmtree(history, ignore_errors=True)
        print(f"writing {args.runs} nightly runs into {history} (store.rundir, one fsync a record) ...", flush=True)
        start = time.perf_counter()
        n = write_history(history, args.runs)
        print(f"wrote {n} records in {time.perf_counter() - start:.0f} s", flush=True)
    info = json.loads(meta.read_text())
    print(f"history: {info['runs']} runs x {info['cases']} cases = {info['records']} records; "
          f"{_disk(history)[1]:.0f} MB of JSON Lines")  # fmt: skip
    runs = sorted(p for p in history.iterdir() if p.is_dir())
    cli = [sys.executable, "-m", "dsabench"]
    out = args.dir / "site"
    verbs = {
        "dashboard": cli + ["dashboard", str(history), "--out", str(out)],
        "report": cli + ["report", str(history), "--run-id", runs[-1].name, "--baseline", str(history),
                         "--baseline-run-id", runs[-2].name, "--out", str(args.dir / "report")],
        "history": cli + ["history", str(history)],
        "compare --history": cli + ["compare", str(runs[-2]), str(runs[-1]), "--history", str(history)],
        "compare": cli + ["compare", str(runs[-2]), str(runs[-1])],
    }
    trees = args.tree or [None]
    cache_dir = args.dir / "cache"
    if args.cache == "warm":
        for tree in trees:  # one untimed load of the whole history fills the cache of each tree's code
            _measure([sys.executable, "-c", "import sys; from dsabench.store.frames import load_runs; "
                      "load_runs([sys.argv[1]])", str(history)], tree, str(cache_dir))
    print(f"{'verb':<18} {'tree':<14} {'wall s':>7} {'CPU s':>7} {'target s':>9} {'max RSS MiB':>12} "
          f"{'target MiB':>11} {'load 1/5/15':>14}  exit  last line")
    walls: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for verb, argv in verbs.items():
            if args.only and verb not in args.only:
                continue
            for tree in trees:
                if verb == "dashboard":
                    shutil.rmtree(out, ignore_errors=True)
                cache = {"warm": str(cache_dir), "off": "off"}.get(args.cache)
                if cache is None:
                    shutil.rmtree(args.dir / "cold-cache", ignore_errors=True)
                    cache = str(args.dir / "cold-cache")
                load = "/".join(f"{v:.1f}" for v in os.getloadavg())
                wall, cpu, rss, rc, last = _measure(argv, tree, cache)
                t_s, t_mb = TARGETS[verb]
                name = "installed" if tree is None else str(tree)[-14:]
                walls.setdefault((verb, name), []).append(wall)
                print(f"{verb:<18} {name:<14} {wall:7.1f} {cpu:7.1f} {t_s:9.0f} {rss:12.0f} {t_mb or '-':>11} "
                      f"{load:>14}  {rc:>4}  {last}", flush=True)
                if verb == "dashboard" and out.is_dir() and rc == 0:
                    files, mb, on_disk = _disk(out)
                    biggest = max((p for p in out.rglob("*.html")), key=lambda p: p.stat().st_size)
                    print(f"{'':<18} site: {files} files, {mb:.1f} MB content, {on_disk:.1f} MB on disk "
                          f"(target <= {DASHBOARD_DISK_MB:g} MB); largest page {biggest.relative_to(out)} "
                          f"{biggest.stat().st_size / 1e6:.2f} MB")  # fmt: skip
    if args.rounds > 1:
        print(f"median wall s of {args.rounds} rounds (cache {args.cache}):")
        for (verb, name), w in walls.items():
            print(f"  {verb:<18} {name:<14} {float(np.median(w)):7.1f}   ({', '.join(f'{x:.1f}' for x in w)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
