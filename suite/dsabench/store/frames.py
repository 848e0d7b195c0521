"""Run directories -> one tidy pandas DataFrame, one row per case per run.

Shards of one run (same run_id, separate directories) load together into the same run_id; a
case recorded twice within one run_id keeps its first record, and a warning names both places. Raw samples travel in the
`samples_ms` column (a list per row) so every statistic downstream is recomputed from them;
`median_ms` and `n_samples` are a convenience cache of the same list. Trace, memory and output
aggregates are flattened into columns where a record has them (NaN elsewhere).
"""

from __future__ import annotations

import gc
import json
import math
import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import msgspec
import numpy as np
import pandas as pd

from dsabench.errors import InputError
from dsabench.store import forked, frame_cache
from dsabench.store.rundir import MANIFEST, load_run
from dsabench.store.run_plans import RunPlan, run_plans
from dsabench.store.repeats import merge_repeats
from dsabench.store.schema import key_of, measured_commit

# Columns every frame has, in this order, even when empty. Params of the Case follow the
# identity columns; other per-record fields follow them; flattened trace/memory columns last.
ID_COLUMNS = ("run_id", "case_id", "group_id", "config_id")
PARAM_COLUMNS = (
    "scenario", "phase", "batch", "context_len", "prefill_len", "num_blocks", "block_size",
    "cache_heads", "heads", "topk", "variant", "scale_mode", "layout_mode", "graph", "seed", "mode",
)  # fmt: skip
RECORD_COLUMNS = (
    "status", "message", "backend", "device_name", "device_index", "device_uuid", "host_gpus", "commit",
    "created_at", "shard", "run_dir", "samples_ms", "median_ms", "n_samples", "clock",
    "iters_per_sample", "stop_reason", "wall_s", "kernel", "kernel_axis", "process_samples", "process_chunks",
    "chunk_size",
    "repeats",
    "impl", "impl_sha", "impl_subject", "impl_ops",
)  # fmt: skip
# (column, path into the record): the per-iteration trace aggregates and memory figures.
FLAT_COLUMNS = (
    ("trace_iterations", ("trace", "iterations")),
    ("kernel_ms", ("trace", "kernel_ms")),
    ("kernel_count", ("trace", "kernel_count")),
    ("htod_count", ("trace", "memcpy", "HtoD", "count")),
    ("htod_bytes", ("trace", "memcpy", "HtoD", "bytes")),
    ("htod_ms", ("trace", "memcpy", "HtoD", "ms")),
    ("dtoh_count", ("trace", "memcpy", "DtoH", "count")),
    ("dtoh_bytes", ("trace", "memcpy", "DtoH", "bytes")),
    ("dtoh_ms", ("trace", "memcpy", "DtoH", "ms")),
    ("dtod_count", ("trace", "memcpy", "DtoD", "count")),
    ("dtod_bytes", ("trace", "memcpy", "DtoD", "bytes")),
    ("dtod_ms", ("trace", "memcpy", "DtoD", "ms")),
    ("memset_count", ("trace", "memset", "count")),
    ("memset_bytes", ("trace", "memset", "bytes")),
    ("memset_ms", ("trace", "memset", "ms")),
    ("sync_calls", ("trace", "sync_calls")),
    ("layout_copy_kernel_count", ("trace", "layout_copy", "kernel_count")),
    ("layout_copy_ms", ("trace", "layout_copy", "kernel_ms")),
    ("layout_copy_bytes", ("trace", "layout_copy", "bytes")),
    ("peak_bytes", ("memory", "peak_bytes_above_inputs")),
    ("layout_alloc_bytes", ("memory", "layout_alloc_bytes")),
    ("inputs_bytes", ("memory", "inputs_bytes")),
    ("oracle_rel_error", ("output", "oracle_rel_error")),
    ("output_digest", ("output", "digest")),
    ("layout_copied_bytes", ("output", "layout_copy_bytes")),  # measured by data pointer, any device
)
# Per-phase figures get one column each, named after the phase: kernel_ms_<phase> from
# trace.phase_kernel_ms, host_ms_<phase> from trace.phase_host_ms, phase_ms_<phase> (median
# of the record's phases_ms samples).
COLUMNS = ID_COLUMNS + PARAM_COLUMNS + RECORD_COLUMNS + tuple(name for name, _ in FLAT_COLUMNS)


@dataclass(frozen=True)
class Frame:
    """Loaded runs: the table, each run's manifest, and what loading had to skip.

    manifests maps run_id to the manifest of its first shard (by path); run_dirs maps run_id to
    every directory that held it; plans maps run_id to what it planned beside what it holds
    (`store.run_plans`). frozen=True stops reassigning fields; it does not make the DataFrame or the
    dicts immutable, so treat them as read-only.
    """

    df: pd.DataFrame
    manifests: Mapping[str, dict] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    run_dirs: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)
    plans: Mapping[str, RunPlan] = field(default_factory=dict)

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(self.manifests)


def _dig(obj, path: Sequence[str]):
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _items(obj) -> list:
    """A free-form aggregate's (key, value) pairs; anything but an object has none."""
    return list(obj.items()) if isinstance(obj, dict) else []


def _num(value) -> float:
    """Numbers as float, anything else (missing, None, text) as NaN."""
    if isinstance(value, bool) or value is None:
        return math.nan if value is None else float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return math.nan


def _median(values: list[float]) -> float:
    """The median of a short list (mean of the middle two for even n, as numpy's): statistics'
    pure-Python median, which on a record's few dozen samples is ~20x faster than np.median,
    and loading a year of nightly runs calls it half a million times. Non-finite samples keep
    numpy's answer."""
    if all(math.isfinite(v) for v in values):
        return float(statistics.median(values))
    return float(np.median(values))


manifest_commit = measured_commit  # the one lookup lives in store.schema; this name stays for callers


def _shard_label(shard) -> str | None:
    """[K, N] as "K/N": one scalar per cell."""
    return f"{shard[0]}/{shard[1]}" if shard else None


def _host_gpus(manifest: dict) -> str | None:
    """The GPU ids the run's host showed (manifest env.gpus), sorted and comma-joined; None without."""
    gpus = ((manifest.get("env") or {}).get("gpus")) or []
    ids = sorted(g["uuid"] for g in gpus if isinstance(g, dict) and isinstance(g.get("uuid"), str) and g["uuid"])
    return ",".join(ids) or None


def _row(record: dict, manifest: dict, run_dir: Path, commit: str | None) -> dict:
    run_id = manifest.get("run_id")
    params = record.get("params") or {}
    device = record.get("device") or {}
    timing = record.get("timing") or None
    row: dict = {
        "run_id": run_id,
        "case_id": record["case_id"],
        "group_id": record.get("group_id"),
        "config_id": record.get("config_id"),
    }
    for key in PARAM_COLUMNS:
        row[key] = params.get(key)
    for key, value in params.items():
        if key not in PARAM_COLUMNS:
            row[key if key not in COLUMNS else f"param_{key}"] = value
    samples = [float(s) for s in (timing or {}).get("samples_ms") or []]
    row.update(
        status=record["status"],
        message=record.get("message", ""),
        backend=record.get("backend") or manifest.get("backend"),
        device_name=device.get("name"),
        device_index=device.get("index"),
        device_uuid=device.get("uuid"),
        host_gpus=_host_gpus(manifest),  # the machine: every GPU its manifest saw, so two runs of one host match
        commit=commit,
        created_at=manifest.get("created_at"),
        shard=_shard_label(manifest.get("shard")),
        run_dir=str(run_dir),
        samples_ms=samples,
        median_ms=_median(samples) if samples else math.nan,
        n_samples=len(samples),
        clock=(timing or {}).get("clock"),
        iters_per_sample=_num((timing or {}).get("iters_per_sample")),
        stop_reason=(timing or {}).get("stop_reason"),
        wall_s=_num(record.get("wall_s")),
        kernel=record.get("kernel") or "reference",  # attention kernel; records before the option: the reference ops
        kernel_axis=bool(record.get("kernel_axis")),  # one of several kernels measured side by side in the run
        process_samples=record.get("process_samples") or ([samples] if samples else []),  # per worker process
        # per worker process: {"key": [repeat, pid], "chunks": [...]} (chunks empty before schema 3, rebuilt
        # by analysis.host_steady from chunk_size, the protocol's samples per chunk)
        process_chunks=record.get("process_chunks") or ([_own_chunks(record, timing)] if samples else []),
        chunk_size=(manifest.get("protocol") or {}).get("chunk"),
        repeats=int(record.get("repeats") or 1),
        impl=record.get("impl") or "mirror",
        impl_sha=(record.get("impl_info") or {}).get("sha"),
        impl_subject=(record.get("impl_info") or {}).get("subject"),
        impl_ops=(record.get("impl_info") or {}).get("ops"),
    )
    for name, path in FLAT_COLUMNS:
        value = _dig(record, path)
        row[name] = value if name == "output_digest" else _num(value)
    for phase, ms in _items(_dig(record, ("trace", "phase_kernel_ms"))):
        row[f"kernel_ms_{phase}"] = _num(ms)
    for phase, ms in _items(_dig(record, ("trace", "phase_host_ms"))):
        row[f"host_ms_{phase}"] = _num(ms)
    for phase, values in (record.get("phases_ms") or {}).items():
        finite = [float(v) for v in values or [] if isinstance(v, (int, float)) and math.isfinite(v)]
        row[f"phase_ms_{phase}"] = _median(finite) if finite else math.nan
    return row


def _own_chunks(record: dict, timing: dict) -> dict:
    """A single record's process_chunks entry (merge_repeats makes them for merged cases)."""
    return {"key": [record.get("repeat", 0), (record.get("worker") or {}).get("pid")],
            "chunks": list(timing.get("chunks") or [])}


def _check_run_id(record: dict, manifest: dict, run_dir: Path, index: int) -> None:
    rid = record.get("run_id")
    if rid is not None and rid != manifest.get("run_id"):
        raise InputError(
            f"{run_dir}: record {index} (case {record['case_id']!r}) has run_id {rid!r}, "
            f"but {MANIFEST} says {manifest.get('run_id')!r}; a run directory holds one run"
        )


class _Columns:
    """Rows gathered column by column, with repeated short strings interned: a year of nightly
    runs is 81,000 rows, and one dict a row held ~3x the memory of the frame it becomes.
    Missing cells are NaN, as pd.DataFrame(list_of_dicts) fills them."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {}
        self.n = 0

    def append(self, row: dict) -> None:
        n, cols = self.n, self.cols
        for key, value in row.items():
            col = cols.get(key)
            if col is None:
                col = cols[key] = [math.nan] * n
            col.append(sys.intern(value) if type(value) is str and len(value) < 256 else value)
        self.n = n + 1
        if len(row) != len(cols):  # a column this row has no value for (keys of one row are distinct)
            for col in cols.values():
                if len(col) == n:
                    col.append(math.nan)

    @classmethod
    def joined(cls, parts: list[dict], keeps: list[list[bool]]) -> "_Columns":
        """The rows of parts (each {"cols", "n"}) in order, those whose keep is False left out."""
        out = cls()
        for part, keep in zip(parts, keeps):
            n, cols = sum(keep), part["cols"]
            for name, col in cols.items():
                if name not in out.cols:
                    out.cols[name] = [math.nan] * out.n
                out.cols[name].extend(col if n == part["n"] else [v for v, k in zip(col, keep) if k])
            out.n += n
            for col in out.cols.values():
                if len(col) < out.n:
                    col.extend([math.nan] * (out.n - len(col)))
        return out

    def frame(self) -> pd.DataFrame:
        """COLUMNS first (each present even when no row has it), then the rest; each list is
        freed as soon as its column is built."""
        names = list(COLUMNS) + [c for c in self.cols if c not in COLUMNS]
        data = {}
        for name in names:
            if name in self.cols:
                data[name] = pd.Series(self.cols.pop(name), index=pd.RangeIndex(self.n))
            elif name in ("samples_ms", "output_digest", "process_samples", "process_chunks"):
                data[name] = pd.Series([None] * self.n, dtype=object)
            else:
                data[name] = pd.Series(math.nan, index=pd.RangeIndex(self.n))
        return pd.DataFrame(data, copy=False)


def load_frame(paths: Sequence[Path]) -> Frame:
    """Load run directories (any number, shards of one run included) into one Frame.

    Each path must be a run directory (holding manifest.json); `expand_run_paths` turns a
    results directory into its runs first. The same directory given twice loads once. A case id
    that appears twice under one run_id (two shards ran it, or a file was concatenated) keeps
    the record loaded first (paths in the order given) and Frame.warnings names both places.
    Newer schemas and damaged files are refused by store; a truncated last line is skipped and
    reported in Frame.warnings. A run whose files are unchanged since an earlier load comes from
    the cache of its rows (store.frame_cache), the same frame without decoding it again.
    """
    paused = gc.isenabled()
    gc.disable()  # millions of small containers, none of them cyclic: collections cost 40% of loading
    try:
        return _load_frame(paths)
    finally:
        if paused:
            gc.enable()


# Runs at or above this many to build (not in the cache) load in forked worker processes
# (store.forked): a year of nightly runs (81,000 records) is CPU-bound decoding and row building,
# which splits by run; fewer load in this process (a worker's fork and the transfer of its rows
# cost ~0.1 s).
PARALLEL_MIN_RUNS = 24


def _load_frame(paths: Sequence[Path]) -> Frame:
    unique: list[Path] = []
    done: set[Path] = set()
    for path in map(Path, paths):
        key = path.resolve()
        if key not in done:
            done.add(key)
            unique.append(path)
    # each run's rows from the cache where its files are unchanged (store.frame_cache), the rest built
    looked = [frame_cache.get(path) for path in unique]
    parts = [part for _, part in looked]
    todo = [i for i, part in enumerate(parts) if part is None]
    step = max(1, -(-len(todo) // (4 * forked.MAX_WORKERS)))  # contiguous slices in order, a few a worker
    slices = [todo[i:i + step] for i in range(0, len(todo), step)] if len(todo) >= PARALLEL_MIN_RUNS else [todo]
    built = forked.fork_map(lambda s: [_run_part(unique[i]) for i in s], slices, min_items=2)
    for s, runs in zip(slices, built):
        for i, part in zip(s, runs):
            parts[i] = part
            frame_cache.put(unique[i], looked[i][0], part)
    return _merge_parts(parts)


def _run_part(path: Path) -> dict:
    """One run's rows as columns, and what merging needs: its id, manifest, warnings and each
    row's (record key, case id)."""
    rows = _Columns()
    run = load_run(path)
    commit = measured_commit(run.typed_manifest)
    idents = []
    # records as plain data straight from the typed ones (tuples for arrays; NaN stays NaN, which
    # every cell reads as the JSON form's None): ~2.5x faster than the JSON round trip of `records`
    for i, record in enumerate(merge_repeats([msgspec.to_builtins(r) for r in run.typed_records]), start=1):
        _check_run_id(record, run.manifest, path, i)
        idents.append((key_of(record), record["case_id"]))
        rows.append(_row(record, run.manifest, path, commit))
    return {"cols": rows.cols, "n": rows.n, "runs": [(path, run.typed_manifest.run_id, run.manifest, run.warnings,
                                                       idents)]}


def _merge_parts(parts: list[dict]) -> Frame:
    """One Frame of parts in path order: a case recorded twice under one run_id keeps the row
    loaded first, and a warning names both places."""
    manifests: dict[str, dict] = {}
    run_dirs: dict[str, list[Path]] = {}
    warnings: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    keeps = []
    for part in parts:
        keep = []
        for path, run_id, manifest, run_warnings, idents in part["runs"]:
            manifests.setdefault(run_id, manifest)
            run_dirs.setdefault(run_id, []).append(path)
            warnings.extend(run_warnings)
            for i, (key, case_id) in enumerate(idents, start=1):
                where = f"{path} (record {i})"
                ident = (run_id, key)
                if ident in seen:
                    warnings.append(f"run {run_id!r}: case {case_id!r} appears twice: in {seen[ident]} and in "
                                    f"{where}; kept the one in {seen[ident]}")
                    keep.append(False)
                    continue
                seen[ident] = where
                keep.append(True)
        keeps.append(keep)
    df = _Columns.joined(parts, keeps).frame()
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, errors="coerce", format="ISO8601")
    df = df.sort_values(["created_at", "run_id", "case_id"], kind="stable").reset_index(drop=True)
    plans = run_plans([(path, run_id, manifest, [k for k, _ in idents]) for part in parts
                       for path, run_id, manifest, _, idents in part["runs"]])
    return Frame(df, manifests, tuple(warnings), {k: tuple(v) for k, v in run_dirs.items()}, plans)


def expand_run_paths(paths: Sequence[Path]) -> list[Path]:
    """Run directories named by `paths`: each is a run (has manifest.json) or a directory whose
    subdirectories, searched recursively in sorted order, hold runs (a results directory, or one
    holding the shards of a run). A path with neither is an InputError.
    """
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if os.path.lexists(path / MANIFEST):  # a run, whatever its manifest is (loading says what is wrong)
            out.append(path)
            continue
        if not path.is_dir():
            raise InputError(f"{path}: no such directory; expected a run directory or a directory of runs")
        found = sorted(p.parent for p in path.rglob(MANIFEST))
        if not found:
            raise InputError(f"{path}: holds no run ({MANIFEST} neither in it nor below it)")
        out.extend(found)
    return out


def load_runs(paths: Sequence[Path]) -> Frame:
    """`load_frame` over `expand_run_paths(paths)`: what the CLI verbs call."""
    return load_frame(expand_run_paths(paths))


def export_parquet(frame: Frame, path: Path) -> Path:
    """Write the frame to Parquet (samples as a list column). Needs pyarrow, an optional
    dependency: without it this raises InputError saying how to install it.
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InputError(
            f"{path}: writing Parquet needs pyarrow, which is not installed; run `pip install pyarrow`"
        ) from None
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise InputError(f"{path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected the path of a Parquet file to write")
    df = frame.df.copy()
    df["samples_ms"] = df["samples_ms"].map(lambda s: [float(v) for v in s] if isinstance(s, (list, tuple)) else [])
    # nested records with optional fields: one JSON text per row rather than a struct type to infer
    df["process_chunks"] = df["process_chunks"].map(lambda c: json.dumps(c if isinstance(c, list) else []))
    try:
        df.to_parquet(path, engine="pyarrow", index=False)
    except OSError as exc:
        if path.is_file():
            path.unlink()  # a half-written Parquet file is worse than none
        raise InputError(f"{path}: could not be written ({exc.strerror or exc})") from None
    return path
