"""`run --resume RUN --retry-failed`: set failed records aside so that their cases are measured again.

A crashed worker marks every case it had in hand `crashed`, including the other variants of an
interleaved group that may never have run; `--resume` alone skips every case with a record.
Setting those records aside (moved, never deleted, to `cases.retried.jsonl`) lets the resumed
run measure them again while `cases.jsonl` keeps one record per case.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dsabench.store.files import MAX_CASES_BYTES, read_regular
from dsabench.store.rundir import CASES, drop_partial_tail

RETRIED = "cases.retried.jsonl"
RETRY_STATUSES = ("crashed",)  # a worker died, timed out or could not restart: worth another try


def set_aside(run_dir: Path, statuses: tuple[str, ...] = RETRY_STATUSES) -> list[str]:
    """Move the records whose status is in `statuses` from `cases.jsonl` to `cases.retried.jsonl`;
    returns their case ids. The set-aside lines are appended (and synced) before `cases.jsonl` is
    replaced by a rename, so an interruption at any point loses no record."""
    run_dir = Path(run_dir)
    path = run_dir / CASES
    if not path.exists():
        return []
    drop_partial_tail(run_dir)
    keep, moved, ids = [], [], []
    for line in read_regular(path, "a file of JSON lines, one record a line", MAX_CASES_BYTES).splitlines(keepends=True):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            keep.append(line)  # not ours to judge here: the loader names the line
            continue
        if isinstance(record, dict) and record.get("status") in statuses:
            moved.append(line)
            ids.append(str(record.get("case_id")))
        else:
            keep.append(line)
    if not moved:
        return []
    _append_synced(run_dir / RETRIED, b"".join(moved))
    tmp = run_dir / f".{CASES}.retry-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(b"".join(keep))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ids


def _append_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
