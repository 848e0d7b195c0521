"""Run directories on disk: the one module that writes and reads manifest.json and cases.jsonl.

A run directory holds `manifest.json` (written atomically) and `cases.jsonl` (one record appended
per finished case with a single write and an fsync, so a killed run leaves every finished case
readable and at worst one truncated last line, which loading reports and skips). One process
writes a run directory at a time: `begin_run` and `resume_run` hold an exclusive lock on it.
Loading decodes into the types of `store.schema`, so damage anywhere is one InputError naming
the file, the line, the key and what was expected. JSON Lines is the source of truth.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Mapping

from dsabench.errors import InputError
from dsabench.store.repeats import merge_repeats
from dsabench.store.codec import builtins, convert, decode_manifest, decode_record, encode
from dsabench.store.files import (FILE_MODE, MAX_CASES_BYTES, MAX_MANIFEST_BYTES, StoreWriteError, read_regular,
                                  write_all as _write_all, write_atomic as _write_atomic)
from dsabench.store.lock import LOCK, RunLock, lock_run_dir
from dsabench.store.schema import (  # noqa: F401 - the writer's types, for `from dsabench.store import rundir as store`
    SCHEMA_VERSION, STATUSES, Attempt, Manifest, ProtocolSettings, Record, RunOptions, WorkerInfo, machine, record_key,
    run_id_problem,
)

__all__ = [
    "CASES", "LOGS", "MANIFEST", "TRACES", "SCHEMA_VERSION", "STATUSES", "LoadedRun", "Manifest", "ProtocolSettings",
    "Record", "RunLock", "RunOptions", "StoreWriteError", "add_attempt", "add_worker", "append_record", "begin_run",
    "create_run_dir", "drop_partial_tail", "merge_repeats", "finished_case_ids", "finished_keys", "load_manifest", "load_records", "load_run",
    "machine", "read_manifest", "read_records", "resume_run", "run_id_problem", "write_manifest",
]  # fmt: skip

MANIFEST = "manifest.json"
CASES = "cases.jsonl"
TRACES = "traces"
LOGS = "logs"  # each worker's own stdout and stderr (framework log lines, warnings), out of the progress display


def _manifest(manifest: Manifest | Mapping) -> Manifest:
    """The writer's manifest, checked against the schema before a byte is written."""
    doc = builtins(manifest) if isinstance(manifest, Manifest) else dict(manifest)
    return decode_manifest(doc, "manifest to write")


def write_manifest(run_dir: Path, manifest: Manifest | Mapping) -> None:
    _write_atomic(Path(run_dir) / MANIFEST, encode(_manifest(manifest)))


def add_worker(run_dir: Path, manifest: Manifest, hello: Mapping) -> WorkerInfo:
    """Record a started worker's hello in the manifest and rewrite it (atomically); the first
    worker that settled a protocol for its device gives the run its protocol."""
    worker = convert(dict(hello), WorkerInfo, f"{Path(run_dir) / MANIFEST}: worker hello")
    manifest.workers.append(worker)
    if manifest.protocol is None and worker.protocol is not None:
        manifest.protocol = worker.protocol
    write_manifest(run_dir, manifest)
    return worker


def add_attempt(run_dir: Path, manifest: Manifest, attempt: Mapping) -> None:
    """Append an invocation's wall time and worker start-ups to the manifest (atomically)."""
    manifest.attempts.append(convert(dict(attempt), Attempt, f"{Path(run_dir) / MANIFEST}: attempt"))
    write_manifest(run_dir, manifest)


def drop_partial_tail(run_dir: Path) -> bool:
    """Cut a partial last line (a run killed mid-write) so the next append starts a fresh line.

    Returns whether anything was cut. Without this, the next record would be glued onto the
    fragment and the file would stop loading at that line.
    """
    path = Path(run_dir) / CASES
    if not path.exists():
        return False
    if not path.is_file():  # a FIFO or a device: opening it to write could block, and it holds no run
        read_regular(path, "a file of JSON lines, one record a line", MAX_CASES_BYTES)  # says what it is
    if path.stat().st_size == 0:
        return False
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return False
        f.seek(0)
        keep = f.read().rfind(b"\n") + 1
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return True


def append_record(run_dir: Path, record: Record | Mapping) -> None:
    """Append one record (checked against the schema) as one line: one write(2) on an O_APPEND
    descriptor, then fsync.

    When the write fails (a full disk: ENOSPC, EDQUOT, or EFBIG under a file size limit) the
    file is cut back to its last whole line, so every finished case stays and --resume can
    carry on; the StoreWriteError names the file.
    """
    doc = builtins(record) if isinstance(record, Record) else dict(record)
    line = encode(decode_record(doc, "record to write")) + b"\n"
    path = Path(run_dir) / CASES
    try:
        drop_partial_tail(run_dir)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise StoreWriteError(path, exc) from None
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, line)
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)  # shrinking needs no space; --resume drops a tail that stays
            except OSError:
                pass
            raise StoreWriteError(path, exc, f"could not append the record of case {doc.get('case_id')!r}") from None
    finally:
        os.close(fd)


def begin_run(path: Path, manifest: Manifest | Mapping) -> RunLock:
    """Make a new run directory with its manifest and return its writer's lock, held.

    Refuses a directory that already holds a run, or one another process is writing. If the
    manifest cannot be written, what this call made is removed again: nothing half-written.
    """
    path = Path(path)
    checked = _manifest(manifest)
    _refuse_a_run(path)  # before the lock: a refused run leaves the other run's lock file as it was
    made = _make_dirs(path)
    try:
        lock = lock_run_dir(path)
    except BaseException:
        remove_made(made)  # the lock file is another writer's (or nobody's): left alone
        raise
    lock.made = tuple(made)
    try:
        _refuse_a_run(path)  # made meanwhile by another process
        try:
            (path / TRACES).mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreWriteError(path / TRACES, exc, "could not be created") from None
        _write_atomic(path / MANIFEST, encode(checked))
    except BaseException:
        lock.release()
        if not (path / MANIFEST).exists():
            _remove_quietly((path / TRACES).rmdir, (path / LOCK).unlink)  # ours: made by this call
            remove_made(made)
        raise
    return lock


def _refuse_a_run(path: Path) -> None:
    if os.path.lexists(path / MANIFEST):
        raise InputError(f"{path}: already holds a run ({MANIFEST} exists); use --resume {path} to finish it")


def abandon_run(lock: RunLock) -> None:
    """Remove what `begin_run` made for a run whose workers never started (nothing measured): its
    directory (or, in one that was there, its files) and the parents made for it, so a refusal
    after worker start-up leaves the disk as it was."""
    lock.release()
    run_dir = lock.path.parent
    if run_dir in lock.made:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        shutil.rmtree(run_dir / LOGS, ignore_errors=True)
        _remove_quietly((run_dir / MANIFEST).unlink, (run_dir / TRACES).rmdir,
                        *(((run_dir / LOCK).unlink,) if lock.created else ()))
    remove_made([d for d in lock.made if d != run_dir])


def log_names(run_dir: Path) -> set[str] | None:
    """The worker logs of a run directory now (None: no logs/ yet), for `remove_new_logs`."""
    logs = Path(run_dir) / LOGS
    return {p.name for p in logs.iterdir()} if logs.is_dir() else None


def remove_new_logs(run_dir: Path, before: set[str] | None) -> None:
    """Remove the worker logs written since `log_names` (and logs/ if it was not there): what a
    resume whose workers never started wrote."""
    logs = Path(run_dir) / LOGS
    if before is None:
        shutil.rmtree(logs, ignore_errors=True)
        return
    for p in logs.glob("*"):
        if p.name not in before:
            _remove_quietly(p.unlink)


def resume_run(path: Path) -> tuple[RunLock, Manifest]:
    """Lock an existing run directory for finishing it, and its manifest (validated). The lock is
    not claimed (`RunLock.claim`): a resume refused before its workers start changes nothing."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise InputError(f"{path}: not a run directory ({MANIFEST} missing)")
    lock = lock_run_dir(path, claim=False)
    try:
        return lock, load_manifest(path)
    except BaseException:
        lock.release()
        raise


def create_run_dir(path: Path, manifest: Manifest | Mapping) -> Path:
    """`begin_run`, lock released at once: a run directory written in one go (tests, tools)."""
    begin_run(path, manifest).release()
    return Path(path)


def _make_dirs(path: Path) -> list[Path]:
    """mkdir -p that remembers what it made (deepest last), as a StoreWriteError on failure."""
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreWriteError(path, exc, "cannot be created as a run directory") from None
    if not path.is_dir():
        raise InputError(f"{path}: is not a directory; expected a run directory")
    return list(reversed(missing))


def _remove_quietly(*removals) -> None:
    for remove in removals:
        try:
            remove()
        except OSError:
            pass  # not there, or not empty: then it is not ours to remove


def remove_made(made: list[Path]) -> None:
    """Remove directories this process made (listed shallowest first), deepest first, while they are
    empty: a parent of one that stays is not empty either."""
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            break


# ------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class LoadedRun:
    """One run directory as loaded: typed manifest and records, and what loading had to skip.

    `manifest` and `records` are the same data as plain JSON (dicts), for readers that index by key.
    """

    path: Path
    typed_manifest: Manifest
    typed_records: tuple[Record, ...]
    warnings: tuple[str, ...]

    @cached_property
    def manifest(self) -> dict:
        return self.typed_manifest.to_json()

    @cached_property
    def records(self) -> tuple[dict, ...]:
        return tuple(r.to_json() for r in self.typed_records)


def load_manifest(run_dir: Path) -> Manifest:
    path = Path(run_dir) / MANIFEST
    if not os.path.lexists(path):
        raise InputError(f"{run_dir}: not a run directory ({MANIFEST} missing)")
    return decode_manifest(read_regular(path, "a run manifest (a JSON object)", MAX_MANIFEST_BYTES), str(path))


def read_manifest(run_dir: Path) -> dict:
    """The manifest as plain JSON, after validation and upgrade."""
    return load_manifest(run_dir).to_json()


def load_records(run_dir: Path) -> tuple[list[Record], list[str]]:
    """All records of a run, validated; a truncated last line (a killed run) is skipped with a warning.

    A bad line anywhere else is an error: that is a corrupt file, not an interrupted one. A case
    recorded twice (two writers before runs were locked) keeps its first record, and says so.
    """
    path = Path(run_dir) / CASES
    if not os.path.lexists(path):
        return [], [f"{path}: no cases recorded yet"]
    data = read_regular(path, "a file of JSON lines, one record a line", MAX_CASES_BYTES)
    lines = data.split(b"\n")
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    unterminated = not data.endswith(b"\n")  # a record's single write ends with its newline
    records: list[Record] = []
    warnings: list[str] = []
    first_line: dict[str, int] = {}
    for i, raw in enumerate(lines[: last + 1], start=1):
        if not raw.strip():
            continue
        try:
            record = decode_record(raw, f"{path}:{i}")
        except InputError:
            if i == last + 1 and unterminated and _truncated(raw):
                warnings.append(f"{path}:{i}: last line is truncated (run killed while writing?); skipped it")
                continue
            raise
        key = _key(record)
        if key in first_line:
            again = f"case {key[0]!r}" + (f" (repeat {record.repeat})" if record.repeat else "")
            warnings.append(f"{path}:{i}: {again} recorded again; kept the first record "
                            f"(line {first_line[key]}) and ignored this one")  # fmt: skip
            continue
        first_line[key] = i
        records.append(record)
    return records, warnings


def _truncated(raw: bytes) -> bool:
    """Whether a line is a cut-off JSON text (rather than a whole one that is wrong)."""
    try:
        json.loads(raw)
    except json.JSONDecodeError:
        return True
    except ValueError:
        return False
    return False


def read_records(run_dir: Path) -> tuple[list[dict], list[str]]:
    """`load_records` as plain JSON dicts."""
    records, warnings = load_records(run_dir)
    return [r.to_json() for r in records], warnings


def load_run(run_dir: Path) -> LoadedRun:
    manifest = load_manifest(run_dir)
    records, warnings = load_records(run_dir)
    return LoadedRun(Path(run_dir), manifest, tuple(records), tuple(warnings))


def _key(record) -> tuple:
    """What makes a record unique in a run: its case (impl, kernel on a kernel axis), and which
    process pass measured it."""
    return (record_key(record.case_id, record.impl, record.kernel if record.kernel_axis else None), record.repeat)


def finished_case_ids(run_dir: Path) -> set[str]:
    """Ids of cases with a record already (any repeat)."""
    records, _ = load_records(run_dir)
    return {r.case_id for r in records}


def keys_with_status(run_dir: Path, statuses: tuple[str, ...]) -> frozenset:
    """(record key, repeat) of the records whose status is one of `statuses` (`--retry-failed`)."""
    records, _ = load_records(run_dir)
    return frozenset(_key(r) for r in records if r.status in statuses)


def finished_keys(run_dir: Path) -> frozenset:
    """(record key, repeat) of every record already written: what `--resume` skips (the key is
    `schema.record_key`: the case id, the impl unless it is the mirror, the kernel on a kernel axis)."""
    records, _ = load_records(run_dir)
    return frozenset(_key(r) for r in records)

