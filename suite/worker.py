"""One case in a worker process: inputs -> forward -> check -> timing -> phases -> memory -> trace.

Each step that can fail maps to a record status: InvalidCase -> `invalid`, Unsupported ->
`unsupported`, CaptureFailed -> `capture_failed`, out-of-memory -> `oom`, anything else ->
`crashed` with the exception text. After a failed capture or an out-of-memory error the CUDA
context may be broken, so the record asks the runner to replace this worker.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .backends.base import Backend, Marker
from .cases import Case
from .errors import CaptureFailed, InvalidCase, Unsupported
from .inputs import make_host_inputs
from .measure import Protocol
from .records import PHASE_NAMES, Record

ORACLE_MAX_SCORES = 2_000_000  # T * H * topk above which --check skips the float64 oracle (too slow)


@dataclass(frozen=True)
class WorkerOptions:
    run_id: str
    run_dir: str
    protocol: Protocol
    check: bool = False
    profile_iters: int = 5
    phase_iters: int = 3
    nvtx_in_timed: bool = False
    trace: bool = True


@dataclass
class Outcome:
    status: str = "ok"
    message: str = ""
    recycle: bool = False
    data: dict = field(default_factory=dict)


class PhaseTimer(Marker):
    """Synchronizes at each phase's edges and keeps host time per phase (and memory growth).

    Used only in its own pass: the syncs it adds would distort a latency sample.
    """

    def __init__(self, inner: Marker, sync, memory) -> None:
        super().__init__(None, False)
        self._inner, self._sync, self._memory = inner, sync, memory
        self.times: dict[str, float] = {}
        self.allocated: dict[str, int] = {}

    def __call__(self, name: str):
        import contextlib  # noqa: PLC0415

        @contextlib.contextmanager
        def cm():
            self._sync()
            before = self._memory.allocated() if self._memory else 0
            t0 = time.perf_counter()
            with self._inner(name):
                yield
            self._sync()
            self.times[name] = self.times.get(name, 0.0) + (time.perf_counter() - t0) * 1e3
            if self._memory:
                self.allocated[name] = self._memory.allocated() - before

        return cm()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_case(backend: Backend, case: Case, opts: WorkerOptions, log=None) -> Record:
    """Measure one case; never raises for a case-level failure, the record carries it."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    out = Outcome()
    try:
        _measure_case(backend, case, opts, out, log)
    except InvalidCase as exc:
        out.status, out.message = "invalid", str(exc)
    except Unsupported as exc:
        out.status, out.message = "unsupported", str(exc)
    except CaptureFailed as exc:
        out.status, out.message, out.recycle = "capture_failed", str(exc), True
    except Exception as exc:  # noqa: BLE001 - every failure becomes a record
        if backend.is_out_of_memory(exc):
            out.status, out.message, out.recycle = "oom", f"{type(exc).__name__}: {exc}".strip()[:2000], True
        else:
            tb = traceback.format_exc(limit=6)
            out.status, out.message, out.recycle = "crashed", f"{type(exc).__name__}: {exc}\n{tb}"[:4000], True
    d = out.data
    return Record(
        run_id=opts.run_id,
        case_id=case.id,
        config_id=case.config_id,
        group_id=case.group_id,
        params=case.params(),
        status=out.status,
        message=out.message,
        backend=backend.name,
        device=backend.device_identity(),
        timing=d.get("timing"),
        phases_ms=d.get("phases_ms", {}),
        trace=d.get("trace"),
        memory=d.get("memory"),
        output=d.get("output"),
        started_at=started,
        wall_s=round(time.perf_counter() - t0, 3),
        worker={"pid": os.getpid(), "recycle": out.recycle},
    )


def _measure_case(backend: Backend, case: Case, opts: WorkerOptions, out: Outcome, log) -> None:
    avail = backend.availability()
    if case.graph and not avail.graph.usable:
        raise Unsupported(f"graph=on: {avail.graph.reason}")
    if case.variant.layout == "view" and case.cache_heads != 1 and case.has_decode:
        from .backends.common import view_refusal  # noqa: PLC0415

        raise InvalidCase(view_refusal([case.num_blocks, case.cache_heads, case.block_size, 656]))

    host = make_host_inputs(case)
    state = backend.prepare(case, host)
    background = backend.cache_numpy(state) if opts.check else None
    variant = case.variant
    timed_mark = backend.marker(True) if opts.nvtx_in_timed else _null()

    def forward():
        return backend.forward(state, variant, timed_mark)

    result = forward()
    backend.synchronize()
    output = {"digest": _digest(backend.output_bytes(result)), "shape": list(result.shape), "dtype": "bfloat16"}
    if opts.check and case.num_tokens * case.heads * case.topk <= ORACLE_MAX_SCORES:
        from . import oracle  # noqa: PLC0415

        ref = oracle.forward(case, host, background)
        output["oracle_rel_error"] = float(oracle.relative_error(backend.output_numpy(result), ref))
        output["oracle_bound"] = oracle.REL_ERROR_BOUND
    if case.has_decode:
        output["layout_copy_bytes"] = backend.layout_copy_bytes(state, variant)
    out.data["output"] = output
    del result

    step = backend.capture(forward) if case.graph else forward
    out.data["timing"] = _timing(backend, step, opts.protocol, log)

    out.data["phases_ms"] = _phase_pass(backend, state, variant, opts.phase_iters)
    out.data["memory"] = _memory_pass(backend, state, variant)
    if opts.trace and opts.profile_iters > 0:
        path = Path(opts.run_dir) / "traces" / f"{case.id}.{backend.name}.trace.json.gz"
        profiled_step = step if case.graph else (lambda: backend.forward(state, variant, backend.marker(True)))
        backend.record_trace(profiled_step, opts.profile_iters, path)
        from .trace import aggregate, load_events  # noqa: PLC0415

        agg = aggregate(load_events(path))
        agg["file"] = str(path.relative_to(opts.run_dir))
        out.data["trace"] = agg


def _null():
    from .backends.base import NULL_MARKER  # noqa: PLC0415

    return NULL_MARKER


def _timing(backend: Backend, step, protocol: Protocol, log):
    from .measure import measure  # noqa: PLC0415

    return measure(step, backend.clock(), backend.synchronize, protocol, flush=backend.flush_l2, log=log)


def _phase_pass(backend: Backend, state, variant, iters: int) -> dict[str, list[float]]:
    """Per-phase host time with a synchronize at every phase edge, `iters` forwards."""
    samples: dict[str, list[float]] = {}
    for _ in range(iters):
        timer = PhaseTimer(_null(), backend.synchronize, None)
        backend.forward(state, variant, timer)
        for name in PHASE_NAMES:
            if name in timer.times:
                samples.setdefault(name, []).append(timer.times[name])
    return samples


def _memory_pass(backend: Backend, state, variant) -> dict | None:
    """Peak bytes one forward allocates above what is live before it, and the layout's share."""
    probe = backend.memory()
    if probe is None:
        return None
    backend.synchronize()
    before = probe.allocated()
    probe.reset_peak()
    timer = PhaseTimer(_null(), backend.synchronize, probe)
    result = backend.forward(state, variant, timer)
    backend.synchronize()
    peak = probe.peak()
    del result
    return {
        "peak_bytes_above_inputs": int(peak - before),
        "layout_alloc_bytes": int(timer.allocated.get("layout", 0)),
        "inputs_bytes": int(getattr(state, "inputs_bytes", 0)),
    }


def worker_main(conn: Any, backend_name: str, device_env: dict, opts: WorkerOptions) -> None:
    """Entry point of a worker process: receive cases, send records, until told to stop."""
    os.environ.update(device_env)
    from .backends.base import get_backend  # noqa: PLC0415

    try:
        backend = get_backend(backend_name)
        conn.send({"hello": {"device": backend.device_identity(), "availability": dataclasses.asdict(backend.availability())}})
    except Exception as exc:  # noqa: BLE001
        conn.send({"fatal": f"{type(exc).__name__}: {exc}"})
        return
    while True:
        msg = conn.recv()
        if msg is None:
            return
        case = case_from_params(msg["case"])
        record = run_case(backend, case, opts)
        conn.send({"record": record.to_json()})


def case_from_params(params: dict) -> Case:
    from .variants import Variant  # noqa: PLC0415

    fields = {f.name for f in dataclasses.fields(Case)}
    kwargs = {k: v for k, v in params.items() if k in fields and k != "variant"}
    return Case(variant=Variant(params["scale_mode"], params["layout_mode"]), **kwargs)
