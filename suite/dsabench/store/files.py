"""Low-level writes of run files: whole or not at all, one file mode, and a full disk named as such."""

from __future__ import annotations

import errno
import os
import secrets
import stat
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


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new name in `directory` durable: until the directory itself is synced, a
    power loss can leave the old name (or none) though the file's data was synced."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, rename over it (mode FILE_MODE & ~umask),
    then fsync the directory, so that the rename too survives a power loss.

    On failure the temporary file is removed and `path` is as it was (or, when only the directory's
    sync failed, already the new file).
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
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreWriteError(path, exc) from None


# What a reader of run files takes at most: far above what a run writes (a manifest of a few KiB
# per worker; a record of a few KiB for ~500 samples), far below what would exhaust memory.
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_CASES_BYTES = 1 * 2**30  # cases.jsonl: a run of 10,000 cases x 20 processes at ~5 KiB a record
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))  # fmt: skip


def read_regular(path: Path, what: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`, or an InputError in one line saying what
    `path` is instead (missing, a directory, a FIFO, a device, a symbolic-link loop, too large).

    The file is opened without blocking (a FIFO's open would wait for a writer) and checked on the
    open descriptor, so what is read is what was checked; at most max_bytes + 1 bytes are read,
    so a file that grows (or /dev/zero behind a symlink) never fills memory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; expected {what}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{path}: is a symbolic link loop; expected {what}") from None
        if exc.errno == errno.EISDIR:
            raise InputError(f"{path}: is a directory; expected {what}") from None
        raise InputError(f"{path}: cannot be read ({exc.strerror}); expected {what}") from None
    try:
        st = os.fstat(fd)
        for test, kind in _KINDS:
            if test(st.st_mode):
                raise InputError(f"{path}: is {kind}; expected {what} (a regular file)")
        if st.st_size > max_bytes:
            raise InputError(f"{path}: is {st.st_size} bytes; expected {what}, at most {max_bytes} bytes")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(max_bytes + 1 - size, 2**24))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}); expected {what}") from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise InputError(f"{path}: is over {max_bytes} bytes; expected {what}, at most {max_bytes} bytes")
    return b"".join(chunks)
