"""Does a profiled pass slow the timings a worker takes after it? The suite's own eager forward of
one decode case, host-timed (synchronized) before and after `record_trace`, in a fresh process per
setting of TEARDOWN_CUPTI (PyTorch's profiler, Kineto, keeps CUPTI attached after a trace unless
it is 1), then once more after a CUDA Graph is captured, replayed and traced, to see that a trace
after a capture still works with the teardown.

    python3 scripts/cupti_after_trace.py            # both settings, one line of JSON each
    python3 scripts/cupti_after_trace.py --one 0|1|unset
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASE = "decode.b64.c4096.p0.n65536.bs64.ch1.h128.k2048.s0.hot.none-contiguous.eager"


def host_ms(step, sync, n: int = 50, rounds: int = 7) -> float:
    """Median over rounds of the mean wall time of n synchronized-at-the-end forwards."""
    times = []
    for _ in range(rounds):
        sync()
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        sync()
        times.append((time.perf_counter() - t0) / n * 1e3)
    return statistics.median(times)


def one(setting: str) -> dict:
    if setting != "unset":
        os.environ["TEARDOWN_CUPTI"] = setting
    from dsabench.bench.backends.registry import get_backend
    from dsabench.bench.kernels.select import resolve
    from dsabench.workload.inputs import make_host_inputs
    from dsabench.workload.scenarios import load_named

    case = next(c for c in load_named("nightly").cases if c.id == CASE)
    backend = get_backend("torch", "gpu")
    backend.use_kernel(resolve("auto", "torch", True))
    state = backend.prepare(case, make_host_inputs(case))
    step = lambda: backend.forward(state, case.variant)  # noqa: E731
    out = {"TEARDOWN_CUPTI": setting, "case": CASE, "kernel": backend.kernel}
    for _ in range(20):
        step()
    out["before_trace_ms"] = host_ms(step, backend.synchronize)
    with tempfile.TemporaryDirectory() as tmp:
        backend.record_trace(step, 5, Path(tmp) / "a.trace.json.gz")
        out["after_trace_ms"] = host_ms(step, backend.synchronize)
        replay, _ = backend.capture(step)
        backend.record_trace(replay, 5, Path(tmp) / "b.trace.json.gz")
        out["after_graph_trace_ms"] = host_ms(step, backend.synchronize)
        backend.record_trace(step, 5, Path(tmp) / "c.trace.json.gz")
        out["after_third_trace_ms"] = host_ms(step, backend.synchronize)
    out["slowdown_after_trace"] = out["after_trace_ms"] / out["before_trace_ms"] - 1
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(one(argv[1])), flush=True)
        return 0
    rc = 0
    for setting in ("unset", "1"):
        p = subprocess.run([sys.executable, __file__, "--one", setting], capture_output=True, text=True, timeout=300)
        print(p.stdout.strip() or f"TEARDOWN_CUPTI={setting}: exit {p.returncode}: {p.stderr.strip()[-800:]}", flush=True)
        rc |= p.returncode
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
