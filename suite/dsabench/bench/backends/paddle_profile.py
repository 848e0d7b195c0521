"""Record a Paddle profiler chrome trace of a step function, one `dsabench.iter` range per call.

The trace is what Paddle's own tooling (and Perfetto) reads; `dsabench.bench.trace.load_events` turns it
into the framework-neutral table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from dsabench.errors import Unsupported
from dsabench.bench.scratch import scratch_dir
from dsabench.bench.trace import ITER_RANGE, write_gzip


def record_trace(step: Callable[[], None], iters: int, path: Path, gpu: bool) -> Path:
    """Run `step` `iters` times under paddle.profiler and write the gzipped chrome trace to `path`.

    With `gpu`, CUPTI device activity is recorded too, and the device is synchronized before the
    profiler stops so the last iteration's kernels are in the trace.
    """
    import paddle
    import paddle.profiler as pp

    if gpu and not paddle.device.is_compiled_with_cuda():
        raise Unsupported("paddle: GPU tracing needs a CUDA build of Paddle (paddlepaddle-gpu)")
    targets = [pp.ProfilerTarget.CPU] + ([pp.ProfilerTarget.GPU] if gpu else [])
    # A no-op on_trace_ready: the default one writes ./profiler_log/; we export ourselves.
    prof = pp.Profiler(targets=targets, on_trace_ready=_keep_result)
    prof.start()
    try:
        for _ in range(iters):
            with pp.RecordEvent(ITER_RANGE):
                step()
        if gpu:
            paddle.device.synchronize()
    finally:
        prof.stop()
    with scratch_dir(path) as tmp:
        raw = Path(tmp) / "trace.paddle_trace.json"
        prof.export(str(raw), "json")
        return write_gzip(raw, Path(path))


def _keep_result(prof) -> None:
    """Leave the result on the Profiler for `export`."""
