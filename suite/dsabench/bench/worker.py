"""One case in a worker process: inputs -> forward -> check -> timing -> phases -> memory -> trace.

Each step that can fail maps to a record status: InvalidCase -> `invalid`, Unsupported ->
`unsupported`, CaptureFailed -> `capture_failed`, out-of-memory -> `oom`, anything else ->
`crashed` with the exception text; an output with a NaN or inf element -> `nonfinite` with
the count and first index (`output_check`). After an out-of-memory error or a crash the CUDA context
may be broken, so the record asks the runner to replace this worker; after a failed capture only
when the backend's device probe finds the context broken (`worker.unhealthy` says what it found).
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

from dsabench.bench.backends.base import NULL_MARKER, Backend, nvtx_marker
from dsabench.bench.passes import memory_pass, phase_pass
from dsabench.workload.cases import Case
from dsabench.workload.dims import DEFAULT_DIMS
from dsabench.errors import CaptureFailed, InvalidCase, Unsupported
from dsabench.workload.inputs import make_host_inputs
from dsabench.bench.output_check import nonfinite_report
from dsabench.bench.protocol import Protocol, StepFailed, protocol_for
from dsabench.store.schema import NO_CHECK, Record

ORACLE_MAX_SCORES = 2_000_000  # T * H * topk above which --check skips the float64 oracle (too slow)


@dataclass(frozen=True)
class WorkerOptions:
    """What every case of a run shares. `protocol` None: the worker takes the GPU or CPU protocol
    from the device its backend actually runs on, with `protocol_overrides` (the flags) on top."""

    run_id: str
    run_dir: str
    protocol: Protocol | None
    check: bool = False
    profile_iters: int = 5
    phase_iters: int = 3
    nvtx_in_timed: bool = False
    trace: bool = True
    protocol_overrides: dict = field(default_factory=dict)
    repeats: int = 1  # processes per case: each gets 1/repeats of the protocol's time and sample caps
    inject_delay: float = 0.0  # calibrate: F x the forward's time added to every forward
    kernel: str = "auto"  # attention kernel asked for; each worker resolves it for its device (kernels/select);
    # 'A,B,...': a kernel axis, each case measured with each kernel side by side (kernels/select.axis)
    impls: tuple = ()  # impls.plan.ImplRun of the run; empty: the mirror alone
    pin: str = "off"  # --pin: 'probe' pins each worker to a probed core of its own (bench/pin.py)
    repeat: int = 0  # the worker-process pass of the item being measured (set per item by the worker)

    def for_device(self, gpu: bool) -> "WorkerOptions":
        """These options with the protocol settled for the worker's own device."""
        if self.protocol is not None:
            return self
        protocol = protocol_for(gpu, **self.protocol_overrides)
        if self.repeats > 1:  # R processes share the case's budget: the run takes about as long
            protocol = dataclasses.replace(
                protocol, max_time_s=protocol.max_time_s / self.repeats,
                max_samples=max(protocol.min_samples, -(-protocol.max_samples // self.repeats)))
        return dataclasses.replace(self, protocol=protocol)


@dataclass
class Outcome:
    status: str = "ok"
    message: str = ""
    recycle: bool = False
    unhealthy: str | None = None  # after a failed capture: what the device probe found ('' healthy)
    data: dict = field(default_factory=dict)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _nonfinite(backend: Backend, out, data: bytes) -> dict | None:
    """nonfinite_report, skipped when the backend's device reduction says every element is finite."""
    return None if backend.all_finite(out) else nonfinite_report(data, out.shape)


def _oracle_fits(case: Case) -> bool:
    return case.num_tokens * case.heads * case.topk <= ORACLE_MAX_SCORES


def _oracle_limit(case: Case) -> str:
    n = case.num_tokens * case.heads * case.topk
    return f"too large for the float64 oracle: tokens*heads*topk = {n:,} > {ORACLE_MAX_SCORES:,}"


def _fail(out: Outcome, backend: Backend, exc: BaseException) -> None:
    """Map an exception to a record status; after capture, OOM or a crash, replace the worker."""
    if isinstance(exc, InvalidCase):
        out.status, out.message = "invalid", str(exc)
    elif isinstance(exc, Unsupported):
        out.status, out.message = "unsupported", str(exc)
    elif isinstance(exc, CaptureFailed):
        # replaced only when the device no longer works: a restart costs seconds per failed capture
        out.status, out.message = "capture_failed", str(exc)
        out.unhealthy = backend.unhealthy()
        out.recycle = bool(out.unhealthy)
    elif backend.is_out_of_memory(exc):
        out.status, out.message, out.recycle = "oom", f"{type(exc).__name__}: {exc}".strip()[:2000], True
    else:
        tb = traceback.format_exc(limit=6)
        out.status, out.message, out.recycle = "crashed", f"{type(exc).__name__}: {exc}\n{tb}"[:4000], True


class _CaseRun:
    """One case's way through the stages; a failing stage ends it with a status, not an exception."""

    def __init__(self, backend: Backend, case: Case, opts: WorkerOptions, impl=None, kernel_axis: bool = False) -> None:
        from dsabench.bench.impls.plan import MIRROR_RUN  # noqa: PLC0415

        self.backend, self.case, self.opts = backend, case, opts
        self.impl = impl or MIRROR_RUN
        self.kernel_axis = kernel_axis  # one of the run's kernels side by side: the kernel keys the record
        self.attention_ran: dict | None = None
        self.state = None
        self.out = Outcome()
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.t0 = time.perf_counter()
        self.step = None
        self.stages: dict[str, float] = {}  # wall seconds per stage; a shared stage split evenly

    def spent(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + seconds

    @property
    def alive(self) -> bool:
        return self.out.status == "ok"

    def stage(self, name: str, fn, *args) -> None:
        if not self.alive:
            return
        t0 = time.perf_counter()
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a record
            _fail(self.out, self.backend, exc)
        finally:
            self.spent(name, time.perf_counter() - t0)

    def precheck(self) -> None:
        case = self.case
        if case.graph and not self.backend.availability().graph.usable:
            raise Unsupported(f"graph=on: {self.backend.availability().graph.reason}")
        # a FastDeploy commit's own code decides (its assert is recorded `invalid` as this is)
        if case.variant.layout == "view" and case.cache_heads != 1 and case.has_decode and self.impl.is_mirror:
            from dsabench.bench.backends.common import view_refusal  # noqa: PLC0415

            raise InvalidCase(view_refusal([case.num_blocks, case.cache_heads, case.block_size,
                                            DEFAULT_DIMS.record_bytes]))
        why = self.backend.kernel_refusal(case)
        if why:  # the kernel would raise mid-forward (FlashMLA's checks): a finding about the kernel, not a crash
            raise Unsupported(f"kernel {self.backend.kernel}: {why}")

    def check_output(self, state, host, background) -> None:
        backend, case, variant = self.backend, self.case, self.case.variant
        mark = nvtx_marker() if self.opts.nvtx_in_timed else NULL_MARKER

        def forward():
            return backend.forward(state, variant, mark)

        result = forward()
        backend.synchronize()
        self.attention_ran = backend.attention_ran(state)  # the checked forward's calls, before another kernel's
        data = backend.output_bytes(result)
        output = {"digest": _digest(data), "shape": list(result.shape), "dtype": "bfloat16"}
        bad = _nonfinite(backend, result, data)
        if self.opts.check and bad is None and _oracle_fits(case):
            from dsabench.reference import oracle  # noqa: PLC0415

            ref = oracle.forward(case, host, background)
            output["oracle_rel_error"] = float(oracle.relative_error(backend.output_numpy(result), ref))
            output["oracle_bound"] = oracle.REL_ERROR_BOUND
        elif self.opts.check:
            output["oracle_skipped"] = "the output is not finite" if bad else _oracle_limit(case)
        else:
            output["oracle_skipped"] = NO_CHECK
        if case.has_decode:
            output["layout_copy_bytes"] = backend.layout_copy_bytes(state, variant)
        self.out.data["output"] = output
        del result, data
        if case.graph and bad is None:
            t0 = time.perf_counter()
            try:
                replay, static_out = backend.capture(forward)
                replay()
                backend.synchronize()
            finally:  # capture's own share of the check stage
                self.spent("capture", time.perf_counter() - t0)
                self.spent("check", t0 - time.perf_counter())
            # what the graph computes is what is checked: its output replaces the eager one
            output["eager_digest"] = output["digest"]
            data = backend.output_bytes(static_out)
            output["digest"] = _digest(data)
            bad = _nonfinite(backend, static_out, data)
            self.step = replay
        else:
            self.step = forward
        if bad is not None:  # wrong whatever the other variants give: recorded, not timed
            output["nonfinite"] = bad
            self.out.status, self.out.message = "nonfinite", bad["message"]
        if self.inject and bad is None:
            self._inject()
        if self.opts.nvtx_in_timed:
            self.step = _nvtx_iterations(self.step)

    @property
    def inject(self) -> float:
        """The known slowdown this case's forward gets, F x its own time: the injected mirror's own
        (`mirror+inject=F`, this impl only), else the run's (`--inject-delay`, every forward)."""
        return self.impl.inject if self.impl.inject is not None else self.opts.inject_delay

    def _inject(self) -> None:
        """calibrate's known slowdown: F x this step's own time, added to every call of it, of the kind
        that adds its size to this forward (`inject`), and the slowdown it really adds, measured."""
        from dsabench.bench import inject  # noqa: PLC0415

        sync = self.backend.synchronize
        base = inject.step_ms(self.step, sync)
        gpu = getattr(self.backend, "gpu", False)
        kind, delay, delay_ms, fit = inject.sized_delay(self.backend.name, gpu, self.case.graph, self.step, sync,
                                                        base, self.inject)
        delayed = inject.with_delay(self.step, delay)
        size = inject.measured_size(self.step, delayed, sync, base)
        self.step = delayed
        self.out.data.setdefault("output", {})["inject"] = {
            "fraction": self.inject, "kind": kind, "delay_ms": delay_ms, "step_ms": base, **fit, **size}

    def time_alone(self) -> None:
        self.out.data["timing"] = _timing(self.backend, self.step, self.opts.protocol)

    def after_timing(self, state) -> None:
        """The untimed passes: phases, memory, and the profiled pass (first worker pass only)."""
        self.stage("phases", self._phases, state)
        self.stage("memory", self._memory, state)
        # A graph replay is one launch: it cannot be split by phase, and its memory is the graph's
        # pool made at capture. Both figures come from eager forwards of the same variant, and the
        # record says so, so that no chart labels them "CUDA Graph".
        self.out.data["sources"] = {"timing": "graph" if self.case.graph else "eager",
                                    "phases_ms": "eager", "memory": "eager"}
        if self.opts.trace and self.opts.profile_iters > 0:
            self.stage("trace", self._trace, state)

    def _phases(self, state) -> None:
        self.out.data["phases_ms"] = phase_pass(self.backend, state, self.case.variant, self.opts.phase_iters)

    def _memory(self, state) -> None:
        self.out.data["memory"] = memory_pass(self.backend, state, self.case.variant)

    def _trace(self, state) -> None:
        backend, case, variant, opts = self.backend, self.case, self.case.variant, self.opts
        from dsabench.bench.impls.backends import trace_suffix  # noqa: PLC0415

        kernel = f".{backend.kernel}" if self.kernel_axis else ""  # the kernels of an axis trace the same case
        path = Path(opts.run_dir) / "traces" / f"{case.id}{trace_suffix(self.impl.label)}{kernel}.{backend.name}.trace.json.gz"
        profiled = self.step if case.graph else (lambda: backend.forward(state, variant, backend.marker(True)))
        try:
            backend.record_trace(profiled, opts.profile_iters, path)
        except OSError as exc:  # a full disk loses the trace, not the case's measurements
            self.out.message = f"trace not written: {path}: {exc.strerror or exc}"
            return
        from dsabench.bench.trace import aggregate, load_events  # noqa: PLC0415

        agg = aggregate(load_events(path))
        agg["file"] = str(path.relative_to(opts.run_dir))
        self.out.data["trace"] = agg

    def _worker_info(self) -> dict:
        info = {"pid": os.getpid(), "recycle": self.out.recycle,
                "stages_s": {k: round(v, 4) for k, v in self.stages.items()}}
        if self.out.unhealthy is not None:
            info["unhealthy"] = self.out.unhealthy
        return info

    def record(self) -> Record:
        from dsabench.bench.impls.backends import describe  # noqa: PLC0415

        case, d = self.case, self.out.data
        return Record(
            run_id=self.opts.run_id,
            case_id=case.id,
            config_id=case.config_id,
            group_id=case.group_id,
            params=case.params(),
            status=self.out.status,
            message=self.out.message,
            backend=self.backend.name,
            device=self.backend.device_identity(),
            timing=d.get("timing"),
            phases_ms=d.get("phases_ms", {}),
            trace=d.get("trace"),
            memory=d.get("memory"),
            output=d.get("output"),
            sources=d.get("sources", {}),
            started_at=self.started,
            wall_s=round(time.perf_counter() - self.t0, 3),
            worker=self._worker_info(),
            impl=self.impl.label,
            impl_info={**describe(self.impl, self.backend, self.state),
                       **({"attention_ran": self.attention_ran} if self.attention_ran is not None else {})},
            kernel=self.backend.kernel,  # the attention that ran (a FastDeploy commit's own ops say which)
            kernel_axis=self.kernel_axis,
        )


def run_group(backend, cases: list[Case], opts: WorkerOptions, impls: list[str] | None = None,
              kernels: list[str] | None = None) -> list[Record]:
    """Measure the variants (impls, kernels) of one configuration (same inputs) with their timing interleaved.

    The inputs are built once and shared: the variants differ only in the lines #7253 changed, so
    the same bytes go in. With more than one case the timed samples are taken in rounds across the
    variants (`protocol.measure_interleaved`), so slow drift of the host or device is shared
    instead of deciding which variant looks faster. Graph cases come one at a time (a failed
    capture may poison the process for the next one).

    `backend` is one Backend (the mirror), or (impl label, kernel) -> Backend with `impls` and
    `kernels` naming each case's impl and kernel ('' when the run has one kernel, resolved by
    each backend): every impl gets its own state built from the same seeded host inputs, shared
    by its kernels (they read the same cache), and the oracle's background is the first state's
    cache, taken before any forward.
    """
    from dsabench.bench.impls.backends import by_label  # noqa: PLC0415

    backends = backend if isinstance(backend, dict) else {("mirror", ""): backend}
    labels = list(impls) if impls else ["mirror"] * len(cases)
    ks = list(kernels) if kernels else [""] * len(cases)
    known = by_label(opts.impls)
    runs = [_CaseRun(backends[(lb, k)], c, opts, known.get(lb), bool(k)) for c, lb, k in zip(cases, labels, ks)]
    for r in runs:
        r.stage("check", r.precheck)
    live = [r for r in runs if r.alive]
    background = host = None
    if live:
        first = live[0].case
        t0 = time.perf_counter()
        try:
            host = _host_inputs(first)
        except Exception as exc:  # noqa: BLE001
            for r in live:
                _fail(r.out, r.backend, exc)
        _share(live, "inputs", t0)
        live = [r for r in live if r.alive]
    for label in dict.fromkeys(r.impl.label for r in live):
        mine = [r for r in live if r.impl.label == label]
        t0 = time.perf_counter()
        try:
            state = mine[0].backend.prepare(first, host)
            if background is None and opts.check and _oracle_fits(first):
                background = mine[0].backend.cache_numpy(state)
        except Exception as exc:  # noqa: BLE001 - this impl's cases fail; the others go on
            for r in mine:
                _fail(r.out, r.backend, exc)
            continue
        finally:
            _share(mine, "inputs", t0)
        for r in mine:
            r.state = state
    live = [r for r in live if r.alive]
    for r in live:
        r.stage("check", r.check_output, r.state, host, background)
    live = [r for r in live if r.alive]
    if len(live) == 1:
        live[0].stage("timing", live[0].time_alone)
    elif live:
        t0 = time.perf_counter()
        _time_interleaved(live[0].backend, live, opts)  # impls of a run share one device
        _share(live, "timing", t0)
    for r in live:
        r.after_timing(r.state)
    return [r.record() for r in runs]


_LAST_INPUTS: list = []  # [(config id, HostInputs)]: the last case's inputs in this process


def _host_inputs(case: Case):
    """The case's seeded host inputs, reused when the previous item had the same configuration: the
    graph variants of a configuration come one item each, and the inputs depend on the
    configuration only (seeded, the same bytes every time), so building them once per process
    instead of once per variant is what keeps a nightly within its budget."""
    if _LAST_INPUTS and _LAST_INPUTS[0][0] == case.config_id:
        return _LAST_INPUTS[0][1]
    _LAST_INPUTS.clear()  # the previous inputs go before the next are built: one set in memory
    host = make_host_inputs(case)
    _LAST_INPUTS.append((case.config_id, host))
    return host


def _share(runs: list[_CaseRun], name: str, t0: float) -> None:
    """The wall time since t0 of a stage the runs shared, split evenly: a run's stages then add up
    to what the worker spent, and the run's breakdown counts each second once."""
    each = (time.perf_counter() - t0) / max(len(runs), 1)
    for r in runs:
        r.spent(name, each)


def _time_interleaved(backend: Backend, live: list[_CaseRun], opts: WorkerOptions) -> None:
    """Interleaved timing; a variant whose work raises leaves the rotation with its status.

    `measure_interleaved` names the step whose warm-up, probe or chunk raised (`StepFailed`),
    so the timed forwards run unwrapped. A variant failing after a sibling failed in the same
    process says so: a device error can be sticky and then belongs to the sibling.
    """
    from dsabench.bench.protocol import measure_interleaved  # noqa: PLC0415

    first_failure = ""
    while live:
        try:
            timings = measure_interleaved([r.step for r in live], backend.clock(), backend.synchronize,
                                          opts.protocol, flush=backend.flush_l2, seed=_round_seed(live, opts))
        except StepFailed as failed:
            culprit = live[failed.index]
            _fail(culprit.out, culprit.backend, failed.__cause__)
            if first_failure:
                culprit.out.message = (f"raised after {first_failure} failed in the same worker (a device error "
                                       f"may be sticky): {culprit.out.message}")
            else:
                first_failure = culprit.case.id
            live = [r for r in live if r is not culprit]
            continue
        for r, timing in zip(live, timings):
            r.out.data["timing"] = timing
        return


def _round_seed(live: list[_CaseRun], opts: WorkerOptions) -> int:
    """The seed of the order within each round: the run, the group and the pass, so that the same
    run is the same order again but no two processes of a case (nor two runs) share one sequence
    of orders, which a fixed seed gave every group of every run."""
    import zlib  # noqa: PLC0415

    return zlib.crc32(f"{opts.run_id}/{live[0].case.group_id}/{opts.repeat}".encode())


def _nvtx_iterations(step):
    """`step` inside an NVTX range `dsabench.iter` (domain `dsabench`) per call: `--nvtx` only."""
    from dsabench.bench.trace import ITER_RANGE  # noqa: PLC0415

    mark = nvtx_marker()

    def marked():
        with mark(ITER_RANGE):
            return step()

    return marked


def _timing(backend: Backend, step, protocol: Protocol):
    from dsabench.bench.protocol import measure  # noqa: PLC0415

    return measure(step, backend.clock(), backend.synchronize, protocol, flush=backend.flush_l2)
