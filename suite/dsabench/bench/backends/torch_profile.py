"""Record a torch profiler (kineto) chrome trace of a step function, one `dsabench.iter` range per call.

Same contract as `paddle_profile.record_trace`, so both backends' traces go through
`dsabench.bench.trace.load_events` alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from dsabench.errors import Unsupported
from dsabench.bench.scratch import scratch_dir
from dsabench.bench.trace import ITER_RANGE, write_gzip


def record_trace(step: Callable[[], None], iters: int, path: Path, gpu: bool) -> Path:
    """Run `step` `iters` times under torch.profiler and write the gzipped chrome trace to `path`.

    With `gpu`, CUDA activity (kernels, memcpys, runtime calls) is recorded too, and the device
    is synchronized before the profiler stops so the last iteration's kernels are in the trace.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    if gpu and not torch.cuda.is_available():
        raise Unsupported("torch: GPU tracing needs CUDA, and torch.cuda.is_available() is False")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities) as prof:
        for _ in range(iters):
            with record_function(ITER_RANGE):
                step()
        if gpu:
            torch.cuda.synchronize()
    with scratch_dir(path) as tmp:
        raw = Path(tmp) / "trace.pt.trace.json"
        prof.export_chrome_trace(str(raw))
        return write_gzip(raw, Path(path))
