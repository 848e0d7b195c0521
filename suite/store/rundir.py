"""Run directories on disk: manifest, JSON Lines of records, loading into pandas.

A run directory holds `manifest.json` (written once, atomically) and `cases.jsonl` (one record
appended per finished case with a single write and an fsync, so a killed run leaves every
finished case readable and at worst one truncated last line, which loading reports and skips).
JSON Lines is the source of truth; Parquet is an export.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dsabench.errors import InputError
from dsabench.store.schema import SCHEMA_VERSION, STATUSES, record_key

MANIFEST = "manifest.json"
CASES = "cases.jsonl"
TRACES = "traces"


def write_json_atomic(path: Path, obj) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def drop_partial_tail(run_dir: Path) -> bool:
    """Cut a partial last line (a run killed mid-write) so the next append starts a fresh line.

    Returns whether anything was cut. Without this, the next record would be glued onto the
    fragment and the file would stop loading at that line.
    """
    path = Path(run_dir) / CASES
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return False
        f.seek(0)
        content = f.read()
        keep = content.rfind(b"\n") + 1
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return True


def append_record(run_dir: Path, record: dict) -> None:
    """Append one record as one line with one write(2) on an O_APPEND descriptor, then fsync."""
    line = (json.dumps(record, sort_keys=True, default=str, allow_nan=True) + "\n").encode()
    drop_partial_tail(run_dir)
    fd = os.open(Path(run_dir) / CASES, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def create_run_dir(path: Path, manifest: dict) -> Path:
    """Make a new run directory with its manifest; refuses to reuse a directory that has one."""
    path = Path(path)
    if (path / MANIFEST).exists():
        raise InputError(f"{path}: already holds a run ({MANIFEST} exists); use --resume {path} to finish it")
    path.mkdir(parents=True, exist_ok=True)
    (path / TRACES).mkdir(exist_ok=True)
    write_json_atomic(path / MANIFEST, manifest)
    return path


@dataclass(frozen=True)
class LoadedRun:
    path: Path
    manifest: dict
    records: tuple[dict, ...]
    warnings: tuple[str, ...]


def read_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise InputError(f"{run_dir}: not a run directory ({MANIFEST} missing)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    version = manifest.get("schema")
    if not isinstance(version, int):
        raise InputError(f"{path}: key 'schema' is {version!r}; expected an integer schema version")
    if version > SCHEMA_VERSION:
        raise InputError(
            f"{path}: key 'schema' is {version}; this dsabench reads versions up to {SCHEMA_VERSION} (upgrade dsabench)"
        )
    return manifest


def upgrade_record(record: dict, path: Path, line_no: int) -> dict:
    """Bring a record of an older schema to the current one; the one place versions meet.

    Version 1 is the first; later versions add their steps here.
    """
    version = record.get("schema")
    if not isinstance(version, int) or version < 1:
        raise InputError(f"{path}:{line_no}: key 'schema' is {version!r}; expected an integer >= 1")
    if version > SCHEMA_VERSION:
        raise InputError(
            f"{path}:{line_no}: key 'schema' is {version}; this dsabench reads versions up to {SCHEMA_VERSION}"
        )
    for key in ("case_id", "status", "params"):
        if key not in record:
            raise InputError(f"{path}:{line_no}: missing key {key!r}")
    if record["status"] not in STATUSES:
        raise InputError(f"{path}:{line_no}: key 'status' is {record['status']!r}; expected one of {list(STATUSES)}")
    return record


def read_records(run_dir: Path) -> tuple[list[dict], list[str]]:
    """All records of a run; a truncated last line (a killed run) is skipped with a warning.

    A bad line anywhere else is an error: that is a corrupt file, not an interrupted one.
    """
    path = Path(run_dir) / CASES
    if not path.exists():
        return [], [f"{path}: no cases recorded yet"]
    lines = path.read_bytes().split(b"\n")
    records, warnings = [], []
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    for i, raw in enumerate(lines[: last + 1], start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            unterminated = lines[-1] != b""  # a record's single write ends with its newline
            if i == last + 1 and unterminated:
                warnings.append(f"{path}:{i}: last line is truncated (run killed while writing?); skipped it")
                continue
            raise InputError(f"{path}:{i}: not valid JSON ({exc})") from None
        records.append(upgrade_record(record, path, i))
    return records, warnings


def load_run(run_dir: Path) -> LoadedRun:
    manifest = read_manifest(run_dir)
    records, warnings = read_records(run_dir)
    return LoadedRun(Path(run_dir), manifest, tuple(records), tuple(warnings))


def finished_case_ids(run_dir: Path) -> set[str]:
    """Keys (`schema.record_key`: case id, and impl unless mirror) of records already written:
    what `--resume` skips."""
    records, _ = read_records(run_dir)
    return {record_key(r["case_id"], r.get("impl")) for r in records}
