"""What the host evidence costs per chunk (bench/host.py), all of it outside the timed region.

    python3 scripts/host_overhead.py [--n 2000]

Times, each N times on this machine: the probe (host.probe_us), the snapshot before and after a
chunk (HostReader.before/after: /proc preads, the thread CPU clock, sched_getcpu) and turning
them into the chunk's figures (evidence), and prints median and p90 in microseconds with the
share of the shortest chunk each protocol takes (CPU: 2 samples of >= 5 ms; GPU: 10 of >= 1 ms).
A benchmark: its figures belong to the machine it ran on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suite"))

import numpy as np  # noqa: E402

from dsabench.bench import host  # noqa: E402
from dsabench.bench.protocol import CPU_PROTOCOL, GPU_PROTOCOL  # noqa: E402


def timed(fn, n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t0) * 1e6
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    n = ap.parse_args(argv).n
    reader = host.HostReader()
    try:
        snap = reader.before()
        parts = {
            "probe (best of 3)": timed(host.probe_us, n),
            "snapshot before": timed(reader.before, n),
            "snapshot after": timed(reader.after, n),
            "evidence": timed(lambda: reader.evidence(snap, snap), n),
        }
    finally:
        reader.close()
    total = sum(np.median(v) for v in parts.values())
    for name, v in parts.items():
        print(f"{name:18s} median {np.median(v):8.1f} us  p90 {np.percentile(v, 90):8.1f} us")
    cpu_chunk_ms = CPU_PROTOCOL.per_round(CPU_PROTOCOL.min_sample_ms) * CPU_PROTOCOL.min_sample_ms
    gpu_chunk_ms = GPU_PROTOCOL.chunk * GPU_PROTOCOL.min_sample_ms
    print(f"per chunk {total:.1f} us (sum of medians), outside the timed region: {total / 1e3 / cpu_chunk_ms:.1%} of "
          f"the shortest CPU chunk ({cpu_chunk_ms:.0f} ms), {total / 1e3 / gpu_chunk_ms:.1%} of the shortest GPU "
          f"chunk ({gpu_chunk_ms:.0f} ms); inside it: nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
