"""Which probe sees the eager decode forward's slow chunks (issue 22): beside every chunk, the
interpreter probe the suite records (L1-resident), the suite's memory probe (bench/host.memory_probe_us:
random reads over a buffer far larger than the last-level cache; results/h200-2026-12-03d/probes
was made at d54eaac with this script's own copy of it, the same 4,096 reads over 256 MiB at other
random offsets), a device probe (fixed matrix products timed on the GPU alone)
and the GPU's SM clock and clock-event reasons (NVML, before and after the chunk).

    python3 scripts/host_probes_gpu.py run --out FILE.jsonl [--seconds 30] [--check-on-cpu]
    python3 scripts/host_probes_gpu.py summary FILE.jsonl...

`run`: the torch backend, the Triton kernel, pr's decode b64 c4096 at 8192 blocks, baseline
(tensor-contiguous) and patched (scalar-view) eager, alternating chunk by chunk; pinned as a
`--pin probe` worker is (bench/pin.Pinner, re-probed every 5 s, torch at one thread). One JSON line
per chunk. On the CPU (--check-on-cpu, smoke's small case, the reference kernel) the device probe
and NVML are absent: a check of the script, its figures mean nothing.

`summary`: per process and variant the fast level (the 10% quantile of its chunk medians) and each
chunk's ratio to it, a chunk "slow" beyond 1.3x; per probe, how well it separates slow chunks from
the others (the area under the ROC curve: 0.5 is chance, 1.0 perfect) and its median in each; the
processes' fast levels side by side (their spread is what no chunk rule can remove).
Benchmark figures for a reader, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suite"))

GPU_CASE = "decode.b64.c4096.p0.n8192.bs64.ch1.h128.k2048.s0.hot.{}.eager"
CPU_CASE = "decode.b2.c128.p0.n16.bs64.ch1.h16.k64.s0.hot.{}.eager"
VARIANTS = ("tensor-contiguous", "scalar-view")
FORWARDS = 10  # per chunk, each timed alone (the protocol's GPU chunk)
SLOW = 1.3


class Nvml:
    """The SM clock (MHz) and the clock-event reasons bitmask of GPU 0 through pynvml (the binding
    bench/env.py reads the GPUs with), or None each without it."""

    def __init__(self) -> None:
        self.handle = None
        try:
            import pynvml  # noqa: PLC0415  (package nvidia-ml-py)

            pynvml.nvmlInit()
            self.nvml, self.handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # noqa: BLE001 - no binding, no driver, no GPU: the readings are None
            pass

    def read(self) -> dict:
        if self.handle is None:
            return {"sm_mhz": None, "reasons": None}
        out = {}
        for key, call in (("sm_mhz", lambda: self.nvml.nvmlDeviceGetClockInfo(self.handle, self.nvml.NVML_CLOCK_SM)),
                          ("reasons", lambda: self.nvml.nvmlDeviceGetCurrentClocksThrottleReasons(self.handle))):
            try:
                out[key] = int(call())
            except self.nvml.NVMLError:
                out[key] = None
        return out


def _run(args) -> None:
    os.environ["TEARDOWN_CUPTI"] = "1"
    import torch

    from dsabench.bench import pin
    from dsabench.bench.backends.base import NULL_MARKER
    from dsabench.bench.backends.registry import get_backend
    from dsabench.bench.host import HostReader, memory_probe_us, probe_us
    from dsabench.workload import scenarios
    from dsabench.workload.inputs import make_host_inputs

    cpu = args.check_on_cpu
    preset, pattern = ("smoke", CPU_CASE) if cpu else ("pr", GPU_CASE)
    cases = {c.id: c for c in scenarios.load_named(preset).cases}
    backend = get_backend("torch", "cpu" if cpu else "gpu")
    backend.use_kernel("reference" if cpu else "triton")
    state, steps = None, {}
    for v in VARIANTS:
        case = cases[pattern.format(v)]
        state = state or backend.prepare(case, make_host_inputs(case))
        steps[v] = lambda s=state, var=case.variant: backend.forward(s, var, NULL_MARKER)
    for v in VARIANTS:
        for _ in range(3):
            steps[v]()
    backend.synchronize()
    allowed = os.sched_getaffinity(0)
    _, (mine,) = pin.plan(allowed, 1)
    pinner = pin.Pinner(mine)
    pinner.repin()
    pin.one_framework_thread()
    host = HostReader()
    nvml = Nvml()
    if cpu:
        a = None
    else:
        a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
    clock = backend.clock()
    end = time.perf_counter() + args.seconds
    next_repin = time.perf_counter() + 5.0
    n = 0
    with open(args.out, "w") as out:
        while time.perf_counter() < end:
            if time.perf_counter() > next_repin:
                pinner.repin()
                next_repin = time.perf_counter() + 5.0
            v = VARIANTS[n % 2]
            dev_us = None
            if a is not None:  # the device alone: queued products, timed by events, the host out of it
                backend.synchronize()
                ev[0].record()
                for _ in range(3):
                    a @ a
                ev[1].record()
                ev[1].synchronize()
                dev_us = ev[0].elapsed_time(ev[1]) * 1e3
            mem = memory_probe_us()
            g0 = nvml.read()
            probe = probe_us()
            spans = clock.spans(FORWARDS)
            before = host.before()
            t0 = time.perf_counter()
            for s in spans:
                clock.start(s)
                steps[v]()
                clock.stop(s)
            t1 = time.perf_counter()
            after = host.after()
            probe_after = probe_us()
            g1 = nvml.read()
            samples = [clock.elapsed_ms(s) for s in spans]
            out.write(json.dumps({"pid": os.getpid(), "n": n, "variant": v, "t": t0, "host_ms": (t1 - t0) * 1e3,
                                  "median_ms": sorted(samples)[len(samples) // 2], "probe_us": probe,
                                  "probe_after_us": probe_after, "mem_us": mem, "dev_us": dev_us,
                                  "sm_mhz": g0["sm_mhz"], "sm_mhz_after": g1["sm_mhz"], "reasons": g0["reasons"],
                                  "reasons_after": g1["reasons"], "core": pinner.core,
                                  **host.evidence(before, after)}) + "\n")
            n += 1


def auc(pos: list, neg: list) -> float:
    """P(a slow chunk's value > a fast chunk's), ties half: the area under the ROC curve."""
    if not pos or not neg:
        return float("nan")
    import numpy as np

    neg_sorted = np.sort(neg)
    below = np.searchsorted(neg_sorted, pos, side="left")
    ties = np.searchsorted(neg_sorted, pos, side="right") - below
    return float((below + ties / 2).sum() / (len(pos) * len(neg)))


def _summary(paths) -> None:
    import numpy as np

    rows = [json.loads(line) for p in paths for line in open(p)]
    by = defaultdict(list)
    for r in rows:
        by[(r["pid"], r["variant"])].append(r)
    fast = {k: float(np.quantile([r["median_ms"] for r in rs], 0.1)) for k, rs in by.items()}
    for r in rows:
        r["ratio"] = r["median_ms"] / fast[(r["pid"], r["variant"])]
    slow = [r for r in rows if r["ratio"] > SLOW]
    ok = [r for r in rows if r["ratio"] <= SLOW]
    print(f"{len(rows)} chunks from {len({r['pid'] for r in rows})} processes; {len(slow)} ({len(slow) / len(rows):.0%}) "
          f"over {SLOW}x of their process's fast level")
    print("probe                        AUC(slow vs not)  median in slow  median in not")
    for key in ("probe_us", "probe_after_us", "mem_us", "dev_us", "sm_mhz", "sm_mhz_after"):
        pos = [r[key] for r in slow if r.get(key) is not None]
        neg = [r[key] for r in ok if r.get(key) is not None]
        if not pos or not neg:
            print(f"  {key:26s} not recorded")
            continue
        print(f"  {key:26s} {auc(pos, neg):.3f}            {np.median(pos):10.1f}      {np.median(neg):10.1f}")
    reasons = defaultdict(lambda: [0, 0])
    for r in rows:
        reasons[r.get("reasons")][r["ratio"] > SLOW] += 1
    print("clock-event reasons before the chunk (bitmask: chunks not slow, slow):",
          ", ".join(f"{k}: {v[0]}, {v[1]}" for k, v in sorted(reasons.items(), key=lambda kv: str(kv[0]))))
    print("fast level per process (ms; 10% quantile of chunk medians) and slow share:")
    for v in VARIANTS:
        levels = {pid: fast[(pid, var)] for pid, var in fast if var == v}
        shares = {pid: np.mean([r["ratio"] > SLOW for r in by[(pid, v)]]) for pid in levels}
        vals = np.array(list(levels.values()))
        spread = float(np.std(np.log(vals), ddof=1)) if vals.size > 1 else float("nan")
        print(f"  {v}: " + ", ".join(f"pid {pid} {lv:.4f} ({shares[pid]:.0%} slow)" for pid, lv in levels.items())
              + f"; SD of log levels {spread:.1%}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--seconds", type=float, default=30.0)
    r.add_argument("--check-on-cpu", action="store_true")
    s = sub.add_parser("summary")
    s.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "run":
        _run(args)
    else:
        _summary(args.files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
