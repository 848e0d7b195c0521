"""What a host's CPU can say about its own speed (issue 22): the counters it offers, and a timeline of
the host speed probe on chosen CPUs with the thread's cycles, instructions and reference cycles over
each probe where it has hardware counters.

    python3 scripts/host_cpu_check.py [--cpus 3,15] [--seconds 4] [--every-ms 20]

Per CPU the thread is pinned there alone and the probe (bench/host.probe_us) runs every --every-ms.
Each probe is compared to the CPU's fastest (its 2% quantile): a slow probe under a lower clock
reads clock_share (cycles over reference cycles) below the fast probes' and the same instructions per
cycle; under a busy sibling the same clock_share and fewer instructions per cycle. Benchmark
figures for a reader, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suite"))

from dsabench.bench import pmu  # noqa: E402
from dsabench.bench.host import PROBE_LOOPS, probe_work  # noqa: E402

SLOW = 1.3  # host_steady.PROBE_SLOW: the chunk rule's line


def describe_host() -> list[str]:
    lines = []
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
        wanted = ("hypervisor", "arch_perfmon", "constant_tsc", "nonstop_tsc", "aperfmperf", "hwp")
        lines.append("cpu flags: " + " ".join(f"{w}={'yes' if f' {w}' in flags else 'no'}" for w in wanted))
    except (OSError, StopIteration):
        lines.append("cpu flags: unreadable")
    events = Path("/sys/bus/event_source/devices")
    lines.append("perf event sources: " + (" ".join(sorted(p.name for p in events.iterdir())) if events.exists() else "none"))
    try:
        lines.append("perf_event_paranoid: " + Path("/proc/sys/kernel/perf_event_paranoid").read_text().strip())
    except OSError:
        lines.append("perf_event_paranoid: unreadable")
    for name, kind in {**pmu.CHUNK_COUNTERS, "task_clock": pmu.SW_TASK_CLOCK}.items():
        fd = pmu.open_counter(kind)
        lines.append(f"counter {name}: {'yes' if fd is not None else 'refused'}")
        if fd is not None:
            os.close(fd)
    freq = Path("/sys/devices/system/cpu/cpu0/cpufreq")
    lines.append("cpufreq: " + (" ".join(f"{p.name}={p.read_text().strip()}" for p in sorted(freq.glob("scaling_*freq")))
                                if freq.exists() else "none (the guest sees no frequency control)"))
    return lines


def timeline(cpu: int, seconds: float, every_ms: float) -> list[dict]:
    os.sched_setaffinity(0, {cpu})
    counters = pmu.Counters()
    rows, end = [], time.perf_counter() + seconds
    try:
        while time.perf_counter() < end:
            before, t0 = counters.read(), time.perf_counter()
            probe_work(PROBE_LOOPS)
            t1, after = time.perf_counter(), counters.read()
            rows.append({"t": t0, "us": (t1 - t0) * 1e6, **pmu.rates(pmu.Counters.delta(before, after))})
            time.sleep(every_ms / 1e3)
    finally:
        counters.close()
    return rows


def stretches(flags) -> list[int]:
    """Lengths of the runs of consecutive True flags."""
    out, run = [], 0
    for f in flags:
        if f:
            run += 1
        elif run:
            out.append(run)
            run = 0
    return out + ([run] if run else [])


def summarize(cpu: int, rows: list[dict], every_ms: float) -> list[str]:
    us = np.array([r["us"] for r in rows])
    ref = float(np.quantile(us, 0.02))
    slow = us > SLOW * ref
    out = [f"cpu {cpu}: {len(rows)} probes, fastest {ref:.1f} us, median {np.median(us) / ref:.2f}x, "
           f"{slow.mean():.0%} over {SLOW}x"]
    for key in ("clock_share", "ipc"):
        vals = np.array([r[key] if r[key] is not None else np.nan for r in rows], dtype=float)
        if np.isnan(vals).all():
            out.append(f"  {key}: not counted on this host")
            continue
        fast_v, slow_v = vals[~slow], vals[slow]
        fmt = lambda v: f"{np.nanmedian(v):.3f}" if v.size and not np.isnan(v).all() else "-"  # noqa: E731
        corr = np.corrcoef(np.log(us[~np.isnan(vals)]), vals[~np.isnan(vals)])[0, 1]
        out.append(f"  {key}: fast probes {fmt(fast_v)}, slow probes {fmt(slow_v)}; correlation with log probe time {corr:+.2f}")
    runs = stretches(slow)
    if runs:  # a probe every every_ms plus its own time: the lengths are a floor
        out.append(f"  slow stretches: {len(runs)}, median {np.median(runs) * every_ms:.0f} ms, "
                   f"longest {max(runs) * every_ms:.0f} ms")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", default="")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--every-ms", type=float, default=20.0)
    args = ap.parse_args(argv)
    allowed = sorted(os.sched_getaffinity(0))
    cpus = [int(c) for c in args.cpus.split(",") if c] or allowed[-2:]
    for line in describe_host():
        print(line)
    for cpu in cpus:
        if cpu not in allowed:
            print(f"cpu {cpu}: not allowed here ({allowed})")
            continue
        for line in summarize(cpu, timeline(cpu, args.seconds, args.every_ms), args.every_ms):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
