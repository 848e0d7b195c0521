"""The eager decode forward's host slow mode on a GPU host (issue 22): which setting removes it, and
does the host speed probe see it. One process of the experiment, its blocks, or their summary.

    python3 scripts/host_modes_gpu.py run --out FILE.jsonl [--traced] [--sweeps 2] [--block-s 5]
    python3 scripts/host_modes_gpu.py load            # the second worker's host load (started by run)
    python3 scripts/host_modes_gpu.py summary FILE.jsonl...

`run`: torch backend on the GPU, the Triton kernel, `pr`'s decode b64 c4096 cases at 8192 and
65536 blocks, baseline (tensor-contiguous) and patched (scalar-view) eager. Their inputs are built
once; then blocks: in each, one configuration's two variants timed by the suite's own protocol
(`protocol.measure_interleaved`: rounds of one chunk each, the host evidence per chunk) for
--block-s seconds. The blocks cycle through four settings, in order ABCD then DCBA per sweep:
pinned (bench/pin.Pinner on a probed core of its own, re-probed before each block, the process's
other threads and the load elsewhere, torch at one thread) or not (every thread on every CPU,
torch's default threads), and a second worker's
host load (`load`: one more process keeping a core busy with interpreter work and single-thread
matrix products, as a second worker's host side does; its own core when pinned) running or
stopped (SIGSTOP). --traced records a torch profiler trace of 5 forwards first, as a worker's
profiled pass does with --profile-iters 5 (TEARDOWN_CUPTI=1 as workers set it); without it the
process never traces (--profile-iters 0). Every block is one JSON line.

`summary`: per setting, process kind, configuration and variant, chunk medians, the disturbed
share by the host-steady rule (analysis/host_steady.py; levels from all blocks of a
configuration and variant), the probe and its rank correlation with the chunk median, thread
CPU time over wall, run delay and steal, the chunk median per CPU; baseline/patched per setting
from rounds where both sides were steady.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suite"))

CASES = re.compile(r"^decode\.b64\.c4096\.p0\.n(8192|65536)\.bs64\.ch1\.h128\.k2048\.s0\.hot\."
                   r"(tensor-contiguous|scalar-view)\.eager$")
# --check-on-cpu: the same driver on smoke's small decode cases, torch on the CPU, the reference kernel
CPU_CASES = re.compile(r"^decode\.b2\.c128\.p0\.n(16|64)\.bs64\.ch1\..*\.hot\.(tensor-contiguous|scalar-view)\.eager$")
SETTINGS = [(False, False), (True, False), (False, True), (True, True)]  # (pinned, load)


def _load() -> None:
    """A second worker's host side: interpreter work and single-thread matrix products, forever."""
    import numpy as np

    from dsabench.bench.host import probe_work

    a = np.random.default_rng(0).standard_normal((192, 192))
    while True:
        probe_work()
        a = np.tanh(a @ a.T / 192.0)


def _cases(cpu: bool):
    from dsabench.workload import scenarios

    preset, pattern = ("smoke", CPU_CASES) if cpu else ("pr", CASES)
    found = [c for c in scenarios.load_named(preset).cases if pattern.search(c.id)]
    if len(found) != 4:
        raise SystemExit(f"host_modes_gpu: expected 4 {preset} cases matching {pattern.pattern}, found {len(found)}")
    return found


def _run(args) -> None:
    os.environ["TEARDOWN_CUPTI"] = "1"  # as every worker sets it (bench/worker_process.py)
    from dsabench.bench import pin
    from dsabench.bench.backends.base import NULL_MARKER
    from dsabench.bench.backends.registry import get_backend
    from dsabench.bench.protocol import GPU_PROTOCOL, measure_interleaved
    from dsabench.errors import InputError
    from dsabench.workload.inputs import make_host_inputs
    import dataclasses
    import msgspec

    allowed = os.sched_getaffinity(0)
    try:
        _, (mine, theirs) = pin.plan(allowed, 2)
    except InputError:  # too few CPUs for three owners (the CPU check here): the load shares the runner's
        theirs, (mine,) = pin.plan(allowed, 1)
    t0 = time.perf_counter()
    backend = get_backend("torch", "cpu" if args.check_on_cpu else "gpu")
    backend.use_kernel("reference" if args.check_on_cpu else "triton")
    steps: dict[str, dict[str, object]] = defaultdict(dict)
    states = {}
    for case in _cases(args.check_on_cpu):
        config = f"n{case.num_blocks}"
        if config not in states:
            states[config] = backend.prepare(case, make_host_inputs(case))
        state = states[config]
        steps[config][case.variant.name] = (lambda s=state, v=case.variant: backend.forward(s, v, NULL_MARKER))
        if case.variant.name == "patched":  # the profiled pass's forward, with its ranges (worker._trace)
            steps[config]["profiled"] = lambda s=state, v=case.variant: backend.forward(s, v, backend.marker(True))
    for config in steps:
        for name in ("baseline", "patched"):
            steps[config][name]()
        backend.synchronize()
    start_s = time.perf_counter() - t0
    if args.traced:
        trace = Path(args.out).with_suffix(".trace.json.gz")
        backend.record_trace(steps[min(steps)]["profiled"], 5, trace)
        trace.unlink(missing_ok=True)
    load = subprocess.Popen([sys.executable, __file__, "load"], env=dict(os.environ, OMP_NUM_THREADS="1"))
    os.kill(load.pid, signal.SIGSTOP)
    pinner = pin.Pinner(mine)
    import torch

    threads = torch.get_num_threads()  # unpinned blocks run with torch's own default
    protocol = dataclasses.replace(GPU_PROTOCOL, precision=1e-9, max_samples=100_000, max_time_s=args.block_s / 2)
    order = [s for sweep in range(args.sweeps) for s in (SETTINGS if sweep % 2 == 0 else SETTINGS[::-1])]
    block = 0
    try:
        with open(args.out, "w") as out:
            for pinned, loaded in order:
                for config in sorted(steps):
                    if pinned:  # as a --pin probe worker: its probed core, one framework thread
                        where = pinner.repin()
                        pin.one_framework_thread()
                        os.sched_setaffinity(load.pid, set(theirs))
                    else:
                        pin.set_process_affinity(allowed)
                        torch.set_num_threads(threads)
                        os.sched_setaffinity(load.pid, allowed)
                        where = None
                    os.kill(load.pid, signal.SIGCONT if loaded else signal.SIGSTOP)
                    timings = measure_interleaved([steps[config]["baseline"], steps[config]["patched"]],
                                                  backend.clock(), backend.synchronize, protocol, seed=block)
                    for name, t in zip(("baseline", "patched"), timings):
                        out.write(json.dumps({
                            "traced": args.traced, "block": block, "pinned": pinned, "load": loaded,
                            "config": config, "variant": name, "pin": where, "pid": os.getpid(),
                            "start_s": round(start_s, 1), "timing": msgspec.to_builtins(t)}) + "\n")
                    out.flush()
                    block += 1
    finally:
        load.kill()
        load.wait()


def _rank(xs):
    import numpy as np

    order = np.argsort(xs)
    r = np.empty(len(xs))
    r[order] = np.arange(len(xs))
    return r


def _spearman(a, b) -> float:
    import numpy as np

    if len(a) < 3:
        return float("nan")
    return float(np.corrcoef(_rank(a), _rank(b))[0, 1])


def _summary(paths) -> None:
    import numpy as np

    from dsabench.analysis import host_steady as hs

    rows = [json.loads(line) for p in paths for line in open(p)]
    procs = defaultdict(list)  # (config, variant) -> ProcessChunks of every block
    for i, r in enumerate(rows):
        t = r["timing"]
        r["_p"] = hs.process_chunks(t["samples_ms"], t["chunks"], key=(r["pid"], r["block"]))
        procs[(r["config"], r["variant"])].append(r["_p"])
    ref = hs.probe_reference(p for ps in procs.values() for p in ps)
    levels = {k: hs.side_levels(ps) for k, ps in procs.items()}
    print(f"{len(rows)} timings from {len(paths)} processes; reference probe {ref:.1f} us")
    for k, lv in sorted(levels.items()):
        print(f"  levels {k[0]} {k[1]}: {lv.why}")
    groups = defaultdict(list)
    for r in rows:
        classes = hs.classify(r["_p"], levels[(r["config"], r["variant"])], ref)
        for med, ev, c in zip(r["_p"].medians_ms, r["_p"].evidence, classes):
            groups[(r["config"], r["variant"], r["traced"], r["pinned"], r["load"])].append((med, ev, c))
    print("\nconfig variant traced pinned load | chunks  p10/p50/p90 ms | disturbed (level/probe/delay/steal) | "
          "probe p50 us, rho(probe, chunk) | cpu/wall | delay% | steal ms | CPUs")
    for key in sorted(groups):
        g = groups[key]
        meds = np.array([m for m, _, _ in g])
        probes = np.array([ev.get("probe_us") or np.nan for _, ev, _ in g])
        dist = sum(not c.steady for _, _, c in g)
        why = defaultdict(int)
        for _, _, c in g:
            for x in c.reasons:
                why[x] += 1
        cpu_wall = [ev["cpu_ms"] / ev["host_ms"] for _, ev, _ in g if ev.get("cpu_ms") is not None and ev["host_ms"] > 0]
        delay = [ev["run_delay_ms"] / ev["host_ms"] for _, ev, _ in g if ev.get("run_delay_ms") is not None]
        steal = sum(ev.get("steal_ms") or 0.0 for _, ev, _ in g)
        cpus = sorted({ev.get("cpu") for _, ev, _ in g if ev.get("cpu") is not None})
        print(f"{key[0]:6s} {key[1]:8s} {str(key[2]):5s} {str(key[3]):5s} {str(key[4]):5s} | {len(g):4d} "
              f"{np.percentile(meds, 10):.3f}/{np.median(meds):.3f}/{np.percentile(meds, 90):.3f} | "
              f"{dist / len(g):4.0%} ({why['level']}/{why['probe']}/{why['run_delay']}/{why['steal']}) | "
              f"{np.nanmedian(probes):6.1f} {_spearman(probes, meds):+.2f} | "
              f"{statistics.median(cpu_wall) if cpu_wall else float('nan'):.2f} | "
              f"{100 * statistics.median(delay) if delay else float('nan'):.2f} | {steal:.0f} | {len(cpus)}")
    print("\nslow mode vs probe (all chunks): chunks on the upper level, and of them / of the rest those with a slow probe")
    for k in sorted(procs):
        lv, on, off = levels[k], [0, 0], [0, 0]
        for p in procs[k]:
            for med, ev in zip(p.medians_ms, p.evidence):
                slow_probe = bool(ev.get("probe_us") and ev["probe_us"] > hs.PROBE_SLOW * ref)
                side = on if lv.split_ms is not None and med > lv.split_ms else off
                side[0] += 1
                side[1] += slow_probe
        print(f"  {k[0]} {k[1]}: upper level {on[0]} chunks, {on[1]} with a slow probe; lower {off[0]}, {off[1]} "
              "with a slow probe")
    print("\nchunk median by CPU (ms, all settings): config variant: cpu=median(n)")
    for k in sorted(procs):
        by_cpu = defaultdict(list)
        for p in procs[k]:
            for med, ev in zip(p.medians_ms, p.evidence):
                by_cpu[ev.get("cpu")].append(med)
        print(f"  {k[0]} {k[1]}: " + " ".join(f"{c}={statistics.median(v):.3f}({len(v)})" for c, v in sorted(
            by_cpu.items(), key=lambda kv: (kv[0] is None, kv[0]))))
    print("\nbaseline/patched from rounds where both sides were steady (rounds used / all), per setting")
    pairs = defaultdict(lambda: ([], []))
    for r in rows:
        pairs[(r["config"], r["traced"], r["pinned"], r["load"])][0 if r["variant"] == "baseline" else 1].append(r["_p"])
    for key in sorted(pairs):
        base, cand = pairs[key]
        cfg = key[0]
        rr = hs.round_ratios(cand, base, ref)  # base/cand: baseline over patched
        used = [x.ratio for x in rr if x.base.steady and x.cand.steady]
        slow = [x.ratio for x in rr if not x.base.steady and not x.cand.steady]
        print(f"  {cfg:6s} traced={str(key[1]):5s} pinned={str(key[2]):5s} load={str(key[3]):5s}: steady "
              f"{statistics.median(used) if used else float('nan'):.3f} ({len(used)}/{len(rr)}), both disturbed "
              f"{statistics.median(slow) if slow else float('nan'):.3f} ({len(slow)}), all "
              f"{statistics.median([x.ratio for x in rr]) if rr else float('nan'):.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--traced", action="store_true")
    r.add_argument("--sweeps", type=int, default=2)
    r.add_argument("--block-s", type=float, default=5.0)
    r.add_argument("--check-on-cpu", action="store_true", help="smoke's small decode cases, torch on the CPU: "
                   "checks the driver end to end where there is no GPU (its figures mean nothing for the GPU)")
    sub.add_parser("load")
    s = sub.add_parser("summary")
    s.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    if args.verb == "load":
        _load()
    elif args.verb == "run":
        _run(args)
    else:
        _summary(args.files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
