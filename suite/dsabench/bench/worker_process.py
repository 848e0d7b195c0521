"""A worker process: start-up (device, kernel, ceilings, the core it is pinned to), then one work
item after another until told to stop (`worker.run_group` measures an item)."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from dsabench.bench.worker import WorkerOptions, run_group
from dsabench.workload.cases import Case


def worker_main(conn: Any, backend_name: str, device_env: dict, opts: WorkerOptions, device: str | None = None,
                cpus: tuple[int, ...] | None = None) -> None:
    """Entry point of a worker process: receive cases, send records, until told to stop.

    Ctrl-C reaches the whole process group; the worker ignores it and lets the main process
    decide (it kills workers and records nothing for the cases they were on). `cpus`: this
    worker's candidate cores under `--pin probe` (`bench/pin.py`), None unpinned.
    """
    import signal  # noqa: PLC0415

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(device_env)
    # PyTorch's profiler (Kineto) keeps CUPTI attached after a trace unless told to tear it down,
    # and every later kernel launch of the process pays for it: an eager forward timed after a trace
    # took 2x as long on an H200 (scripts/cupti_after_trace.py). Paddle's profiler is not Kineto.
    os.environ["TEARDOWN_CUPTI"] = "1"
    pinner = _pin_before_import(cpus)
    _log_to_file(opts.run_dir)
    from dsabench.bench.impls.backends import build, by_label, describe  # noqa: PLC0415
    from dsabench.bench.kernels.select import axis, resolve  # noqa: PLC0415

    try:
        kernels = axis(opts.kernel)  # () for one kernel; else each case once per kernel, side by side
        backends = build(backend_name, device, opts.impls, kernels)
        backend = next(iter(backends.values()))
        identity = backend.device_identity()
        # the protocol follows the device this worker really runs on, not a guess made before it started
        gpu = identity.get("kind") == "gpu"
        opts = opts.for_device(gpu)
        from dsabench.bench.ceilings import measure_ceilings  # noqa: PLC0415

        for (_, kernel), b in backends.items():  # each backend runs its kernel, as usable here (select.resolve)
            b.use_kernel(resolve(kernel or opts.kernel, b.name, gpu))
        by_impl = {lb: b for (lb, _), b in reversed(list(backends.items()))}  # label -> its first kernel's backend
        pin = _pin_after_import(pinner)
        conn.send({"hello": {"device": identity, "availability": dataclasses.asdict(backend.availability()),
                             "protocol": dataclasses.asdict(opts.protocol), "pid": os.getpid(),
                             "profiler_teardown": os.environ["TEARDOWN_CUPTI"],
                             "kernel": ",".join(dict.fromkeys(b.kernel for b in backends.values())),
                             "ceilings": measure_ceilings(backend.name) if gpu else None,
                             "impls": {lb: describe(impl, by_impl[lb]) for lb, impl in by_label(opts.impls).items()},
                             "pin": pin}})
    except Exception as exc:  # noqa: BLE001
        conn.send({"fatal": f"{type(exc).__name__}: {exc}"})
        return
    first = True
    while True:
        msg = conn.recv()
        if msg is None:
            return
        cases = [case_from_params(p) for p in msg["cases"]]
        pin = pinner.repin() if pinner is not None and not first else pin  # the start-up probe serves the first item
        first = False
        # the profiled pass shows what runs, which is the same in every process: the first pass traces
        mine = dataclasses.replace(opts, repeat=msg.get("repeat", 0), trace=opts.trace and not msg.get("repeat"))
        records = run_group(backends, cases, mine, msg.get("impls"), msg.get("kernels"))
        out = []
        for r in records:
            doc = r.to_json()
            if pin is not None:
                doc["worker"] = {**doc["worker"], "pin": {"core": pin["core"], "probe_us": pin["probe_us"]}}
            out.append(doc)
        conn.send({"records": out})


def _pin_before_import(cpus):
    """Under --pin: one thread for OpenMP and the BLAS libraries (read when a framework loads, so
    before any import of one), and the first probe of the candidate cores; None unpinned."""
    if cpus is None:
        return None
    from dsabench.bench.pin import THREAD_ENV, Pinner  # noqa: PLC0415

    os.environ.update(THREAD_ENV)
    pinner = Pinner(cpus)
    pinner.repin()
    return pinner


def _pin_after_import(pinner) -> dict | None:
    """The framework's own thread pool to one thread, its helper threads (made while it loaded)
    off the timing thread's core; what the worker's pinning found, for the manifest."""
    if pinner is None:
        return None
    from dsabench.bench.pin import one_framework_thread  # noqa: PLC0415

    one_framework_thread()
    return pinner.repin()


def _log_to_file(run_dir: str) -> None:
    """Send this process's stdout and stderr (Paddle's glog lines, framework warnings) to
    RUN_DIR/logs/worker-PID.log, so the run's progress display shows only progress; a worker
    that cannot open the file keeps the terminal."""
    from dsabench.store.rundir import LOGS  # noqa: PLC0415

    try:
        logs = Path(run_dir) / LOGS
        logs.mkdir(exist_ok=True)
        fd = os.open(logs / f"worker-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def case_from_params(params: dict) -> Case:
    from dsabench.workload.variants import Variant  # noqa: PLC0415

    fields = {f.name for f in dataclasses.fields(Case)}
    kwargs = {k: v for k, v in params.items() if k in fields and k != "variant"}
    return Case(variant=Variant(params["scale_mode"], params["layout_mode"]), **kwargs)
