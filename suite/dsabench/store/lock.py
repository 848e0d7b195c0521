"""One writer per run directory: an exclusive flock held for the life of a run or a resume.

Two `dsabench run` processes writing one directory doubled its records; the second writer now
gets one line naming the holder and exit 2. The lock file is `.lock` inside the run directory;
the kernel releases the lock when the holder exits, however it exits, so it never goes stale.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from dsabench.errors import InputError
from dsabench.store.files import StoreWriteError

LOCK = ".lock"


class RunLock:
    """The held lock; `release()` (or the holder's exit) frees it. `made`: the directories the run's
    creation made (its own and missing parents, shallowest first), so a refused run can remove them."""

    def __init__(self, path: Path, fd: int, made: tuple[Path, ...] = (), created: bool = False):
        self.path, self._fd, self.made, self.created = path, fd, made, created  # created: this lock made the file

    def claim(self) -> None:
        """Write this process's id into the lock file, for the message a second writer gets. Done
        once the run really starts, so a refused one leaves the file as it was."""
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        except (OSError, TypeError):
            pass  # the pid is only for that message

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()  # a holder that returns without release() (the run verb) frees it here
        except Exception:  # noqa: BLE001 - interpreter shutdown: the kernel frees it at exit anyway
            pass


def lock_run_dir(run_dir: Path, claim: bool = True) -> RunLock:
    """Take the run directory's writer lock without waiting; InputError when another process holds it.
    claim=False leaves the file's content alone until `RunLock.claim()` (a resume that may be refused)."""
    path = Path(run_dir) / LOCK
    created = True
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            created = False
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreWriteError(path, exc, "could not be created (the run directory's writer lock)") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _holder(fd)
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise InputError(
                f"{run_dir}: another dsabench process{holder} is writing this run; wait for it to finish "
                "(one writer per run directory)"
            ) from None
        raise InputError(f"{path}: cannot lock the run directory ({exc.strerror})") from None
    lock = RunLock(path, fd, created=created)
    if claim:
        lock.claim()
    return lock


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
