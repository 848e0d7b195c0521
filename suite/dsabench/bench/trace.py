"""Chrome traces from Paddle's and torch's profilers, read into one table and aggregated per iteration.

Both profilers write Chrome-trace JSON, but with different category names, argument keys, time
bases and thread ids. `load_events` hides those differences so that `aggregate` is written once.

Formats (see tests/data/README.md for the sources):
  Paddle (chrometracing_logger.cc): `cat` is a TracerEventType name; names carry a duration suffix
    (`matmul dygraph[1.234 ms]`); host `tid` is a string `"<tid>(Python)"` or `"<tid>(C++)"` for
    the same OS thread; `ts` is whole microseconds, and `args.start_time`/`args.end_time`
    (`"12.345 us"`, from the first host event) are the precise times; device rows have
    pid = device id and tid = stream id; correlation is `args["correlation id"]`; runtime names
    keep CUPTI's version suffix (`cudaMemcpy_v3020`).
  torch (kineto output_json.cpp): `cat` is a kineto ActivityType name (`kernel`, `gpu_memcpy`,
    `cuda_runtime`, `cpu_op`, `user_annotation`, ...); `ts`/`dur` are microseconds with ns
    decimals; correlation is `args.correlation`; memcpy names say the direction
    (`Memcpy HtoD (Pageable -> Device)`).
Flow arrows (`ph` s/f, Paddle `async`/torch `ac2g`) and metadata (`ph` M) are dropped: the
correlation ids on the events carry the same link.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from dsabench.errors import InputError
from dsabench.workload.phases import PHASE_NAMES

ITER_RANGE = "dsabench.iter"

COLUMNS = ("name", "kind", "ts_us", "dur_us", "end_us", "pid", "tid", "on_device", "bytes",
           "direction", "correlation", "source")
KINDS = ("kernel", "memcpy", "memset", "runtime", "op", "range", "other")
DIRECTIONS = ("HtoD", "DtoH", "DtoD", "HtoH", "")
DEVICE_KINDS = ("kernel", "memcpy", "memset")
_DTYPES = {"name": object, "kind": object, "ts_us": "float64", "dur_us": "float64",
           "end_us": "float64", "pid": object, "tid": object, "on_device": bool,
           "bytes": "float64", "direction": object, "correlation": "int64", "source": object}

# Paddle TracerEventType names (paddle/phi/api/profiler/trace_event.h) -> kind. UserDefined is
# a C++ RecordEvent (Paddle also tags its own `<op> pybind_imperative_func` markers with it);
# PythonUserDefined is paddle.profiler.RecordEvent. ProfileStep/Forward/Backward/Optimization/
# Dataloader are framework-made spans, so "other".
_PADDLE_KIND = {
    "Kernel": "kernel", "Memcpy": "memcpy", "Memset": "memset", "CudaRuntime": "runtime",
    "Operator": "op", "OperatorInner": "op", "DygraphKernelLaunch": "op",
    "StaticKernelLaunch": "op", "PythonOp": "op", "Communication": "op",
    "UserDefined": "range", "PythonUserDefined": "range",
    "ProfileStep": "other", "Forward": "other", "Backward": "other", "Optimization": "other",
    "Dataloader": "other",
}
_PADDLE_DEVICE_CATS = {"Kernel", "Memcpy", "Memset"}

# kineto ActivityType names (libkineto/include/ActivityType.h) -> kind.
_TORCH_KIND = {
    "kernel": "kernel", "gpu_memcpy": "memcpy", "gpu_memset": "memset",
    "cuda_runtime": "runtime", "cuda_driver": "runtime", "cpu_op": "op",
    "user_annotation": "range", "gpu_user_annotation": "range",
}
_TORCH_DEVICE_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "gpu_user_annotation", "cuda_sync",
                      "cuda_event"}
_TORCH_ONLY_CATS = set(_TORCH_KIND) | {"python_function", "cpu_instant_event", "overhead",
                                       "cuda_sync", "Trace"}

_PADDLE_DUR_SUFFIX = re.compile(r"\[\s*-?[0-9.]+(?:e[-+]?\d+)?\s*(?:ms|us|ns|s)\]$")
_API_VERSION = re.compile(r"_v\d{4,}$")
_TID_SUFFIX = re.compile(r"\((?:Python|C\+\+)\)$")
_MEMCPY_KIND = re.compile(r"(?:MEMCPY_|Memcpy )([A-Za-z]to[A-Za-z])")
_SYNC_CALL = re.compile(
    r"^(?:(?:cuda(?:Stream|Device|Event|Thread)|cu(?:Stream|Ctx|Event))Synchronize(?:_ptsz)?"
    r"|cudaMemcpy(?!.*Async)\w*|cuMemcpy(?!.*Async)\w*)$")
_EPS_US = 0.002  # ranges and their contents are rounded separately (to ns or to float32)


# ---------------------------------------------------------------- reading


def load_events(path) -> pd.DataFrame:
    """Read a Paddle or torch chrome trace (gzipped or not) into the columns of `COLUMNS`."""
    path = Path(path)
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        raise InputError(f"{path}: no 'traceEvents' list; not a Paddle or torch chrome trace")
    events = [e for e in doc["traceEvents"] if isinstance(e, dict)]
    source = _detect_source(doc, events)
    if source is None:
        raise InputError(f"{path}: unknown trace format (neither Paddle's chrometracing_logger "
                         "nor torch/kineto categories found)")
    rows = _paddle_rows(events, path) if source == "paddle" else _torch_rows(events, path)
    return _frame(rows, source)


def write_gzip(src: Path, dst: Path) -> Path:
    """Gzip `src` into `dst` (Perfetto and chrome://tracing open gzipped JSON directly).

    Written beside `dst` and renamed over it, so a full disk leaves no truncated trace.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    try:
        with open(src, "rb") as fin, gzip.open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dst


def _read_json(path: Path):
    """Parse JSON, gunzipping first when the file starts with the gzip magic bytes."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read trace ({e.strerror or e})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise InputError(f"{path}: broken gzip data ({e})") from None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not JSON ({e})") from None


def _detect_source(doc: dict, events: list) -> str | None:
    """Paddle's header has span_index (span_indx before 1.0.2) and ExtraInfo; kineto's has
    baseTimeNanoseconds/traceName. Failing those, the category names decide."""
    if {"span_index", "span_indx", "ExtraInfo"} & doc.keys():
        return "paddle"
    if {"baseTimeNanoseconds", "traceName", "trace_id"} & doc.keys():
        return "torch"
    cats = {e.get("cat") for e in events}
    if cats & set(_PADDLE_KIND):
        return "paddle"
    if cats & _TORCH_ONLY_CATS:
        return "torch"
    return None


def _frame(rows: list[dict], source: str) -> pd.DataFrame:
    """Build the table with fixed columns and dtypes, whatever the source and even when empty."""
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["source"] = source
    df = df.astype(_DTYPES)
    return df.sort_values(["ts_us", "end_us"], ascending=[True, False], kind="stable").reset_index(drop=True)


def _row(name, kind, ts, dur, end, pid, tid, on_device, nbytes, direction, corr) -> dict:
    return {"name": name, "kind": kind, "ts_us": ts, "dur_us": dur, "end_us": end,
            "pid": str(pid), "tid": str(tid), "on_device": on_device, "bytes": nbytes,
            "direction": direction, "correlation": corr}


def _timed(events: list, path: Path) -> list:
    """Complete ('X') and instant ('i'/'I') events; flows, counters and metadata carry no work."""
    out = []
    for i, e in enumerate(events):
        if e.get("ph") not in ("X", "i", "I"):
            continue
        if not isinstance(e.get("ts"), (int, float)) or not isinstance(e.get("name"), str):
            raise InputError(f"{path}: event {i} ({e.get('name')!r}) has no numeric ts or no name")
        out.append(e)
    return out


# Paddle -------------------------------------------------------------------


def _paddle_rows(events: list, path: Path) -> list[dict]:
    timed = _timed(events, path)
    base = _paddle_base(timed)
    return [_paddle_row(e, base) for e in timed]


def _rel_us(value) -> float | None:
    """Paddle's `"12.345 us"` start/end strings; None when absent or wrapped (uint64 underflow
    for device events that start before the first host event)."""
    if not isinstance(value, str) or not value.endswith(" us"):
        return None
    try:
        v = float(value[:-3])
    except ValueError:
        return None
    return v if abs(v) < 1e12 else None


def _paddle_base(timed: list) -> float:
    """Absolute time of the relative origin: `ts` is truncated to whole us, so the largest
    ts - start_time is the tightest estimate. Used only for events lacking start_time."""
    diffs = [e["ts"] - r for e in timed if (r := _rel_us((e.get("args") or {}).get("start_time"))) is not None]
    return max(diffs) if diffs else 0.0


def _paddle_row(e: dict, base: float) -> dict:
    """One Paddle event. Times are relative (args.start_time/end_time): absolute `ts` is whole
    microseconds and ~1.8e15, where float64 has no sub-microsecond precision left."""
    cat = e.get("cat", "")
    kind = _PADDLE_KIND.get(cat, "other")
    args = e.get("args") or {}
    name = _PADDLE_DUR_SUFFIX.sub("", e["name"])
    if kind == "runtime":
        name = _API_VERSION.sub("", name)
    dur = float(e.get("dur", 0.0) or 0.0)
    start = _rel_us(args.get("start_time"))
    start = float(e["ts"]) - base if start is None else start
    end = _rel_us(args.get("end_time"))
    end = start + dur if end is None else end
    tid = _TID_SUFFIX.sub("", str(e.get("tid", "")))
    return _row(name, kind, start, dur, end, e.get("pid", ""), tid, cat in _PADDLE_DEVICE_CATS,
                _bytes(args), _direction(name) if kind == "memcpy" else "",
                _corr(args.get("correlation id")))


# torch --------------------------------------------------------------------


def _torch_rows(events: list, path: Path) -> list[dict]:
    return [_torch_row(e) for e in _timed(events, path)]


def _torch_row(e: dict) -> dict:
    """One kineto event; `ts` is already relative to baseTimeNanoseconds in recent torch."""
    cat = e.get("cat", "")
    kind = _TORCH_KIND.get(cat, "other")
    if kind == "range" and e["name"].startswith("ProfilerStep#"):
        kind = "other"  # the profiler's own step span, like Paddle's ProfileStep
    args = e.get("args") or {}
    name = _API_VERSION.sub("", e["name"]) if kind == "runtime" else e["name"]
    ts = float(e["ts"])
    dur = float(e.get("dur", 0.0) or 0.0)
    corr = _corr(args.get("correlation")) if cat not in ("cpu_op", "user_annotation") else -1
    return _row(name, kind, ts, dur, ts + dur, e.get("pid", ""), e.get("tid", ""),
                cat in _TORCH_DEVICE_CATS, _bytes(args),
                _direction(name) if kind == "memcpy" else "", corr)


# shared -------------------------------------------------------------------


def _bytes(args: dict) -> float:
    v = args.get("bytes")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan


def _corr(v) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else -1


def _direction(name: str) -> str:
    """HtoD/DtoH/DtoD/HtoH from the memcpy name; CUDA arrays (A) are device memory and
    peer-to-peer (PtoP) copies are device-to-device."""
    m = _MEMCPY_KIND.search(name)
    if not m:
        return ""
    kind = m.group(1)
    if kind == "PtoP":
        return "DtoD"
    src, dst = ("D" if c == "A" else c for c in (kind[0], kind[-1]))
    out = f"{src}to{dst}"
    return out if out in DIRECTIONS else ""


def is_sync_call(name: str) -> bool:
    """Runtime/driver calls that block the host until the device catches up."""
    return bool(_SYNC_CALL.match(re.sub(r"_v\d+$", "", name)))


# ---------------------------------------------------------------- aggregating


def aggregate(events: pd.DataFrame) -> dict:
    """Per-iteration totals of a profiled pass whose forwards are each wrapped in ITER_RANGE.

    Device work (kernels, memcpys, memsets) is placed through the runtime call that launched it:
    its correlation id names a runtime event, and the innermost `dsabench.iter` and phase ranges
    on that host thread whose span holds the call's start give its iteration and phase. Device
    work whose launch is not in the trace, or was made on a thread with no iteration ranges,
    counts toward totals if it starts inside the window of the iterations, and toward no phase.
    CUDA Graph replays launch everything from one cudaGraphLaunch outside any phase range, so
    their device work shows in the totals only.
    """
    host = events[~events["on_device"]]
    iters = host[(host["kind"] == "range") & (host["name"] == ITER_RANGE)]
    n = len(iters)
    if n == 0:
        raise InputError(f"trace has no '{ITER_RANGE}' ranges; it was not recorded by a dsabench "
                         "profiled pass (record_trace)")
    phases = host[(host["kind"] == "range") & host["name"].isin(PHASE_NAMES)]
    phases = phases[_enclosing(phases, iters, labels=np.arange(n)) >= 0]
    runtime = host[host["kind"] == "runtime"]
    rt_iter = pd.Series(_in_iteration(runtime, iters), index=runtime.index)
    rt_phase = pd.Series(_enclosing_names(runtime, phases), index=runtime.index)

    device = _device_work(events, runtime, rt_iter, rt_phase, iters)
    syncs = runtime[(rt_iter >= 0) & runtime["name"].map(is_sync_call)]
    return {
        "iterations": n,
        "kernel_ms": _ms(device[device["kind"] == "kernel"], n),
        "kernel_count": float((device["kind"] == "kernel").sum()) / n,
        "phase_kernel_ms": _per_phase(device, phases, n),
        "phase_host_ms": {p: float(phases.loc[phases["name"] == p, "dur_us"].sum()) / 1e3 / n
                          for p in _present(phases)},
        "memcpy": {d: _transfer(device[(device["kind"] == "memcpy") & (device["direction"] == d)], n)
                   for d in ("HtoD", "DtoH", "DtoD")},
        "memset": _transfer(device[device["kind"] == "memset"], n),
        "sync_calls": float(len(syncs)) / n,
        "sync_call_names": {k: float(v) / n for k, v in sorted(syncs["name"].value_counts().items())},
        "layout_copy": _layout_copy(device[device["phase"] == "layout"], n),
        "device_events": bool((events["on_device"] & events["kind"].isin(DEVICE_KINDS)).any()),
    }


def _device_work(events, runtime, rt_iter, rt_phase, iters) -> pd.DataFrame:
    """Device kernels/copies/sets inside the iterations, each with the phase of its launch."""
    dev = events[events["on_device"] & events["kind"].isin(DEVICE_KINDS)].copy()
    launches = runtime[runtime["correlation"] >= 0]
    launches = launches[~launches["correlation"].duplicated()]
    by_corr = pd.Series(launches.index, index=launches["correlation"].to_numpy())
    launch = dev["correlation"].map(by_corr)
    matched = launch.notna()
    launch_idx = launch[matched].astype("int64")
    in_iter = pd.Series(False, index=dev.index)
    in_iter[matched] = rt_iter.reindex(launch_idx).to_numpy() >= 0
    lo, hi = iters["ts_us"].min(), iters["end_us"].max()
    in_iter[~matched] = dev.loc[~matched, "ts_us"].between(lo, hi).to_numpy()
    dev["phase"] = None
    dev.loc[matched, "phase"] = rt_phase.reindex(launch_idx).to_numpy()
    return dev[in_iter]


def _in_iteration(runtime: pd.DataFrame, iters: pd.DataFrame) -> np.ndarray:
    """Iteration of each runtime call, -1 if outside them all. A call on a thread that has no
    iteration ranges (a profiler that failed to map CUPTI's thread id) is judged by time alone."""
    out = _enclosing(runtime, iters, labels=np.arange(len(iters)))
    keys = runtime["pid"] + "/" + runtime["tid"]
    orphan = ~keys.isin(set(iters["pid"] + "/" + iters["tid"])).to_numpy()
    window = runtime["ts_us"].between(iters["ts_us"].min(), iters["end_us"].max()).to_numpy()
    out[orphan & window] = 0
    return out


def _enclosing(points: pd.DataFrame, ranges: pd.DataFrame, labels) -> np.ndarray:
    """Label of the innermost range on the same (pid, tid) whose span holds each point's start,
    -1 where none. Ranges are applied outermost first (by start, longest first on ties), so
    inner ranges overwrite their parents."""
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0 or len(ranges) == 0:
        return out
    labels = np.asarray(labels)
    pkeys = (points["pid"] + "/" + points["tid"]).to_numpy()
    rkeys = (ranges["pid"] + "/" + ranges["tid"]).to_numpy()
    t = points["ts_us"].to_numpy()
    order = np.lexsort((-ranges["end_us"].to_numpy(), ranges["ts_us"].to_numpy()))
    for key in np.unique(rkeys):
        pos = np.flatnonzero(pkeys == key)
        if len(pos) == 0:
            continue
        pos = pos[np.argsort(t[pos], kind="stable")]
        tk = t[pos]
        for r in order[rkeys[order] == key]:
            lo = np.searchsorted(tk, ranges["ts_us"].iat[r] - _EPS_US, "left")
            hi = np.searchsorted(tk, ranges["end_us"].iat[r] + _EPS_US, "right")
            out[pos[lo:hi]] = labels[r]
    return out


def _enclosing_names(points: pd.DataFrame, ranges: pd.DataFrame) -> np.ndarray:
    """Name of the innermost enclosing range (None where none)."""
    idx = _enclosing(points, ranges, labels=np.arange(len(ranges)))
    names = ranges["name"].to_numpy()
    return np.array([names[i] if i >= 0 else None for i in idx], dtype=object)


def _present(phases: pd.DataFrame) -> list[str]:
    """Phases recorded in the trace, in PHASE_NAMES order (absent phases did not run)."""
    seen = set(phases["name"])
    return [p for p in PHASE_NAMES if p in seen]


def _ms(df: pd.DataFrame, n: int) -> float:
    return float(df["dur_us"].sum()) / 1e3 / n


def _per_phase(device: pd.DataFrame, phases: pd.DataFrame, n: int) -> dict:
    """Device time (kernels, copies and sets) launched from each recorded phase."""
    return {p: _ms(device[device["phase"] == p], n) for p in _present(phases)}


def _transfer(df: pd.DataFrame, n: int) -> dict:
    return {"count": float(len(df)) / n, "bytes": float(df["bytes"].fillna(0).sum()) / n,
            "ms": _ms(df, n)}


def _layout_copy(df: pd.DataFrame, n: int) -> dict:
    """What the layout phase costs on the device: the KV-cache `.contiguous()` copy, whether it
    runs as a copy kernel or as a DtoD memcpy."""
    return {"kernel_count": float(len(df)) / n, "kernel_ms": _ms(df, n),
            "bytes": float(df["bytes"].fillna(0).sum()) / n,
            "kernel_names": sorted(set(df["name"]))}
