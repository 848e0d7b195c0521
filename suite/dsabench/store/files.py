"""Low-level writes of run files: whole or not at all, one file mode, and a full disk named as such."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from dsabench.errors import InputError

FILE_MODE = 0o644  # manifest.json and cases.jsonl alike; the process umask still applies
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # EFBIG: a file size limit (RLIMIT_FSIZE)


class StoreWriteError(InputError):
    """A run file could not be written (full disk, read-only or missing directory); names the file."""

    def __init__(self, path: Path, exc: OSError, what: str = "could not be written"):
        why = exc.strerror or str(exc)
        if exc.errno in DISK_FULL:
            why += "; the disk (or this process's file size limit) is full"
        super().__init__(f"{path}: {what} ({why})")
        self.path, self.errno, self.strerror = Path(path), exc.errno, exc.strerror  # as an OSError would say it


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it (mode FILE_MODE & ~umask).

    On failure the temporary file is removed and `path` is as it was.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreWriteError(path, exc) from None
