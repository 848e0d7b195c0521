"""Drives cases through worker processes and appends each record as soon as it is done.

One worker process per device (`--devices 0,1` sets CUDA_VISIBLE_DEVICES per worker; no
devices means one worker on the default device). A worker whose process dies (segfault,
killed) or whose record says its CUDA context may be broken (failed capture, out of memory,
crash) is replaced before the next case; the case is recorded with status `crashed` and the
exit signal. A worker that cannot be replaced records the case it was for as `crashed` with
the reason and leaves the rest of the queue to the other workers; if none is left, the run
stops and says how many cases `--resume` would finish. A record that cannot be written (a
full disk) stops the run: every record written before it stays. Only this process writes
`cases.jsonl`, one line per case, so an interrupted run keeps every finished case, and
`--resume` skips them.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dsabench.workload.cases import Case
from dsabench.store.schema import Record, record_key
from dsabench.store import rundir as store
from dsabench.bench.scratch import remove_scratch
from dsabench.bench.schedule import RESTART, WAIT, Planned, WorkQueue, config_of, planned, schedule, work_items
from dsabench.bench.worker import WorkerOptions
from dsabench.bench.worker_process import worker_main

HELLO_TIMEOUT_S = 600.0  # a cold framework import plus CUDA context creation


class WorkersFailed(RuntimeError):
    """No worker could start (backend missing, device absent): nothing could be measured."""


@dataclass
class RunStats:
    """How a run ended. `unfinished` cases got no record: `--resume` measures them."""

    done: int = 0
    by_status: dict = field(default_factory=dict)
    interrupted: bool = False
    workers: list = field(default_factory=list)
    write_error: str = ""  # the record or manifest that could not be written, and why
    lost_workers: list = field(default_factory=list)  # a worker that could not start or restart, and why
    unfinished: int = 0
    starts: list = field(default_factory=list)  # {device, why, seconds} of every worker process started
    wall_s: float = 0.0

    @property
    def incomplete(self) -> bool:
        return bool(self.write_error) or self.unfinished > 0


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name} ({exitcode})"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def device_env(device: str | None) -> tuple[dict, str | None]:
    """(environment, backend device) of a worker: a GPU index or UUID pins CUDA_VISIBLE_DEVICES and
    demands a GPU (no silent fall-back to the CPU); `cpu:N` is a CPU worker with GPUs hidden;
    None leaves the backend to pick its default device."""
    if device is None:
        return {}, None
    if device.startswith("cpu:"):
        return {"CUDA_VISIBLE_DEVICES": ""}, "cpu"
    return {"CUDA_VISIBLE_DEVICES": device}, "gpu"


class WorkerHandle:
    """A worker process bound to one device; restarted when it dies or may be poisoned."""

    def __init__(self, backend: str, device: str | None, opts: WorkerOptions, cpus: tuple[int, ...] | None = None) -> None:
        self.backend, self.device, self.opts, self.cpus = backend, device, opts, cpus
        self.proc = None
        self.conn = None
        self.hello: dict | None = None
        self.started_s = 0.0  # perf_counter at the last start
        self.took_s = 0.0  # how long the last start took, to its hello
        self.label = f"device {device}" if device is not None else "the default device"

    def start(self) -> dict:
        self.started_s = time.perf_counter()
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        env, kind = device_env(self.device)
        self.proc = ctx.Process(target=worker_main, args=(child, self.backend, env, self.opts, kind, self.cpus),
                                daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        if not parent.poll(HELLO_TIMEOUT_S):
            self.stop()
            raise RuntimeError(f"the worker for {self.label} did not start within {HELLO_TIMEOUT_S:.0f} s")
        try:
            msg = parent.recv()
        except EOFError:
            self.proc.join(timeout=5)  # reaped, so that its exit code or signal can be named
            code = self.proc.exitcode
            raise RuntimeError(f"the worker for {self.label} died while starting ({_signal_name(code)})") from None
        if "fatal" in msg:
            self.stop()
            raise RuntimeError(f"the worker for {self.label} could not start the {self.backend} backend: {msg['fatal']}")
        self.hello = msg["hello"]
        self.took_s = time.perf_counter() - self.started_s
        return self.hello

    def run(self, item: tuple[Planned, ...], timeout_s: float, repeat: int = 0) -> tuple[list[dict] | None, str]:
        """(records, '') or (None, why the worker died). The worker must be running."""
        try:
            self.conn.send({"cases": [c.params() for c, *_ in item], "impls": [impl for _, impl, _ in item],
                            "kernels": [kernel for *_, kernel in item], "repeat": repeat})
            if not self.conn.poll(timeout_s):
                self.kill()
                return None, f"timed out after {timeout_s:.0f} s; worker killed"
            return self.conn.recv()["records"], ""
        except (EOFError, BrokenPipeError, ConnectionResetError):
            proc = self.proc  # None when the main thread killed it (Ctrl-C)
            if proc is None:
                return None, "worker process killed"
            proc.join(timeout=5)
            self.proc = None
            return None, f"worker process died ({_signal_name(proc.exitcode)})"

    def kill(self) -> None:
        proc, self.proc = self.proc, None  # the main thread may kill while the driving thread stops
        if proc is not None:
            proc.kill()
            proc.join(timeout=5)

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.is_alive():
            try:
                self.conn.send(None)
                proc.join(timeout=10)
            except (BrokenPipeError, OSError):
                pass
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        self.proc = None


def crashed_record(case: Case, opts: WorkerOptions, backend: str, device: dict, why: str,
                   kernel: str | None = None, impl: str = "mirror", axis_kernel: str = "") -> dict:
    """`kernel`: what the worker resolved (its hello); None before any worker said: the kernel asked for.
    `axis_kernel`: the case's kernel on the run's kernel axis ('' for a run of one kernel)."""
    return dict(Record(
        run_id=opts.run_id, case_id=case.id, config_id=case.config_id, group_id=case.group_id,
        params=case.params(), status="crashed", message=why, backend=backend, device=device,
        worker={"recycle": True}, impl=impl, kernel_axis=bool(axis_kernel),
    ).to_json(), kernel=axis_kernel or kernel or opts.kernel)


def _write_error(path: Path, exc: BaseException) -> str:
    detail = getattr(exc, "strerror", None) or str(exc)  # OSError, or the store's StoreWriteError
    return f"could not write {path}: {detail}"


def run_cases(
    cases,
    run_dir: Path,
    backend: str,
    devices: tuple[str | None, ...],
    opts: WorkerOptions,
    on_record: Callable[[dict, int, int], None],
    on_worker: Callable[[dict], None] | None = None,
    case_timeout_s: float = 1800.0,
    interleave: bool = True,
    repeats: int = 1,
    done: frozenset = frozenset(),
) -> RunStats:
    """Run `cases` (Case, (Case, impl label) or (Case, impl label, kernel): schedule.planned) over one worker per device;
    `on_record(record, done, total, eta_s)` after each append (eta_s: WorkQueue.eta_s).

    repeats: each case is measured in that many different worker processes (WorkQueue says which
    device takes what, and when a device needs a fresh process); repeat r of a case is handed out
    after repeat r - 1, so its processes are spread over the run; its records carry `repeat`.
    done: (record key, repeat) pairs already recorded (`--resume`), skipped.

    Raises WorkersFailed only when no worker started at all; every other failure is in the stats.
    """
    stats = RunStats()
    traces = Path(run_dir) / store.TRACES
    remove_scratch(traces)  # what a worker killed in an earlier attempt at this run left behind
    items: list[tuple[int, tuple]] = []
    for rep in range(repeats):
        left = tuple(p for p in planned(cases) if (record_key(p[0].id, p[1], p[2]), rep) not in done)
        items += [(rep, item) for item in schedule(work_items(left, interleave))]
    total = sum(len(item) for _, item in items)
    todo = WorkQueue(items)
    on_config: dict[str | None, str] = {}  # device -> the configuration its worker is on
    lock = threading.Lock()
    stop = threading.Event()
    handles: list[WorkerHandle] = []

    def write_failed(path: Path, exc: BaseException) -> None:
        if not stats.write_error:
            stats.write_error = _write_error(path, exc)
        stop.set()

    def emit(records: list[dict], device: str | None, rep: int) -> bool:
        """Append the records in order; False (and the run stops) when one cannot be written."""
        for record in records:
            record.setdefault("worker", {})["device_env"] = device
            record["repeat"] = rep
            with lock:
                if stop.is_set():
                    return False
                try:
                    store.append_record(run_dir, record)
                except Exception as exc:  # noqa: BLE001 - a full disk is reported as one, not as a bad backend
                    write_failed(Path(run_dir) / store.CASES, exc)
                    return False
                stats.done += 1
                stats.by_status[record["status"]] = stats.by_status.get(record["status"], 0) + 1
                on_record(record, stats.done, total, todo.eta_s())
        return True

    def lost(item, device, ident: dict, why: str, kernel: str | None, rep: int) -> None:
        todo.settled(item)
        with lock:
            stats.lost_workers.append(why)
        emit([crashed_record(c, opts, backend, ident, f"not measured: {why}", kernel, impl, k) for c, impl, k in item],
             device, rep)

    def started(handle: WorkerHandle, why: str) -> None:
        with lock:
            stats.starts.append({"device": handle.device, "why": why, "seconds": round(handle.took_s, 3)})

    def start(handle: WorkerHandle, why: str) -> str:
        """'' when the device's fresh process is up, else why it could not start. The caller has
        told the queue (todo.join) that the device's next process is a fresh one."""
        try:
            hello = handle.start()
        except Exception as exc:  # noqa: BLE001
            return str(exc)
        started(handle, why)
        if why == "first":
            with lock:
                stats.workers.append({"device_env": handle.device, **hello})
                if on_worker:
                    try:
                        on_worker(hello)
                    except Exception as exc:  # noqa: BLE001
                        write_failed(Path(run_dir) / store.MANIFEST, exc)
        return ""

    def retire(handle: WorkerHandle, how) -> None:
        pid = handle.proc.pid if handle.proc is not None else None
        how()
        if pid is not None:
            remove_scratch(traces, pid)

    def drive(device: str | None) -> None:
        handle = WorkerHandle(backend, device, opts, worker_cpus.get(device))
        with lock:
            handles.append(handle)
        try:
            todo.join(device)
            failed = start(handle, "first")
            if failed:
                with lock:
                    stats.lost_workers.append(failed)
                return
            last = None  # the configuration this device measured last
            while not stop.is_set():
                if handle.proc is None or not handle.proc.is_alive():
                    todo.join(device)  # its next process is a fresh one (this one died, or was retired)
                    last = None  # and holds no configuration's inputs
                with lock:
                    on_config.pop(device, None)
                    busy = set(on_config.values())
                taken = todo.take(device, last, busy, start_s=handle.took_s, wait_s=0.2)
                if taken is None:
                    return
                if taken == WAIT:
                    continue
                if taken == RESTART:  # this process has measured every item left: a fresh one (WorkQueue)
                    if stop.is_set():
                        return
                    retire(handle, handle.stop)
                    todo.join(device)
                    last = None
                    failed = start(handle, "new pass")
                    if failed:
                        with lock:
                            stats.lost_workers.append(f"could not restart: {failed}")
                        return
                    continue
                rep, item = taken
                with lock:
                    on_config[device] = config_of(item)
                if handle.proc is None or not handle.proc.is_alive():
                    failed = start(handle, "replaced")
                    if failed:
                        lost(item, device, (handle.hello or {}).get("device", {}),
                             f"could not restart: {failed}", (handle.hello or {}).get("kernel"), rep)
                        return
                pid = handle.proc.pid
                t_item = time.perf_counter()
                records, why = handle.run(item, case_timeout_s * len(item), rep)
                recycle = records is None or any(r.get("worker", {}).get("recycle") for r in records)
                if not recycle:  # a crash or a time-out says nothing of how long work takes
                    todo.finished(item, time.perf_counter() - t_item)
                if recycle:
                    retire(handle, handle.kill)  # the next item gets a fresh process and CUDA context
                if stop.is_set():
                    return  # interrupted: a case cut short is not a crash; --resume measures it
                if records is None:
                    ident = (handle.hello or {}).get("device", {})
                    records = [crashed_record(c, opts, backend, ident, why, (handle.hello or {}).get("kernel"), impl, k)
                               for c, impl, k in item]
                    for r in records:
                        r["worker"]["pid"] = pid
                todo.settled(item)
                if not emit(records, device, rep):
                    return
                last = config_of(item)
        finally:
            todo.leave(device)
            handle.stop()

    t_run = time.perf_counter()
    if total == 0:  # nothing left (a resume of a finished run): no worker start-up to pay
        return stats
    worker_cpus, restore = _pin_runner(opts, devices)
    try:
        _drive_all(drive, devices, stats, stop, handles, traces)
    finally:
        restore()
    if not stats.workers and not stats.interrupted and not stats.write_error:
        raise WorkersFailed("; ".join(stats.lost_workers))
    stats.unfinished = total - stats.done
    stats.wall_s = round(time.perf_counter() - t_run, 3)
    return stats


def _pin_runner(opts: WorkerOptions, devices) -> tuple[dict, Callable[[], None]]:
    """Under --pin probe: this process's threads on the runner's core (`pin.plan`); each device's
    worker candidate cores; and how to give this process its CPUs back. Unpinned: nothing."""
    if opts.pin != "probe":
        return {}, lambda: None
    import os  # noqa: PLC0415

    from dsabench.bench import pin  # noqa: PLC0415

    allowed = os.sched_getaffinity(0)
    mine, theirs = pin.plan(allowed, len(devices))
    pin.set_process_affinity(mine)  # the workers start here, then move to their own cores
    return dict(zip(devices, theirs)), lambda: pin.set_process_affinity(allowed)


def _drive_all(drive, devices, stats: RunStats, stop: threading.Event, handles: list, traces: Path) -> None:
    """One driving thread per device until all are done; Ctrl-C kills every worker."""
    threads = [threading.Thread(target=drive, args=(d,), daemon=True) for d in devices]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
            if stop.is_set():  # a write failed: the other workers' cases in flight cannot be kept
                _kill_all(handles, traces)
    except KeyboardInterrupt:
        stop.set()
        stats.interrupted = True
        _kill_all(handles, traces)  # a worker mid-case is killed: its case is simply not recorded
        for t in threads:
            t.join(timeout=2)


def _kill_all(handles: list[WorkerHandle], traces: Path) -> None:
    for h in list(handles):
        pid = h.proc.pid if h.proc is not None else None
        h.kill()
        if pid is not None:
            remove_scratch(traces, pid)


PROGRESS_WIDTH = 120  # present.fit.WIDTH, the width every table and sentence keeps


def progress_printer(stream=sys.stderr) -> Callable[[dict, int, int, float | None], None]:
    """One line per finished case: count, status, median, id, the time so far and the time left by
    the run's own cost model (schedule.item_cost at the rate the items timed so far took); no time
    left before an item has been timed (a first case's average would count the worker's start-up).
    A line that would pass PROGRESS_WIDTH puts the id, whole, on an indented line below."""
    t0 = time.perf_counter()

    def show(record: dict, done: int, total: int, eta_s: float | None = None) -> None:
        timing = record.get("timing") or {}
        samples = timing.get("samples_ms") or []
        if samples:
            figure = f"{statistics.median(samples):10.4f} ms"  # the median the tables show (mean of the middle two)
        else:
            figure = f"{'-':>13}"
        width = len(str(total))
        bar_n = int(20 * done / max(total, 1))
        bar = "#" * bar_n + "." * (20 - bar_n)
        elapsed = time.perf_counter() - t0
        left = "" if eta_s is None else f", eta {eta_s:.0f}s"
        impl = record.get("impl") or "mirror"
        shown = record["case_id"] + ("" if impl == "mirror" else f"  [{impl}]")
        shown += f"  [{record.get('kernel')}]" if record.get("kernel_axis") else ""
        head = f"[{bar}] {done:>{width}}/{total} {record['status']:<14} {figure}"
        line = f"{head}  {shown}  ({elapsed:.0f}s{left})"
        if len(line) > PROGRESS_WIDTH:  # a CI log's width: the id on a line of its own, whole
            line = f"{head}  ({elapsed:.0f}s{left})\n    {shown}"
        print(line, file=stream, flush=True)

    return show
