"""The rows of one loaded run, kept between invocations: a year of nightly runs is 81,000 records
whose decoding and row building cost ~15 s of CPU on every `history`, `compare --history` and
`dashboard`, though all but the newest run are the same files as the night before.

An entry is one run directory's rows as `store.frames` built them, pickled, in a per-user cache
directory (never beside the run: a pickle is code, and run directories come from other machines).
It is used only while it is certainly the same input and the same code:

- the key holds the directory as given and as resolved, and `os.stat` of `manifest.json` and
  `cases.jsonl` (device, inode, mode, size, modification and change times in ns), taken before
  the files are read; a file rewritten, appended to, replaced or touched is a miss; a run whose
  files changed in the last 3 s is not cached (a file's times tick coarsely: `_settled`);
- the entry's directory is named after a hash of the store's sources (which decode, validate and
  shape the rows), Python's version and msgspec's, so other code never reads it.

A miss loads the run as before and replaces the entry; an entry that cannot be read is a miss; a
cache that cannot be written is skipped without a word (the verbs read, and must work on a
read-only disk). Entries are written whole (a temporary file, then a rename). Version
directories unused for PRUNE_DAYS are removed when an entry is written.

DSABENCH_CACHE_DIR sets the directory (default $XDG_CACHE_HOME/dsabench, else ~/.cache/dsabench);
DSABENCH_CACHE_DIR=off turns the cache off.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import msgspec

ENV = "DSABENCH_CACHE_DIR"
OFF = "off"
FILES = ("manifest.json", "cases.jsonl")  # what store.rundir.load_run reads of a run directory
PRUNE_DAYS = 14
RACY_NS = 3_000_000_000  # a run whose files changed this recently is not cached (`_settled`)
_STORE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of what shapes an entry: the store's sources (decoding, validation, upgrade, rows),
    the package's error messages, and the Python and msgspec versions."""
    h = hashlib.sha256(f"{sys.version}|{msgspec.__version__}".encode())
    for path in sorted(_STORE.glob("*.py")) + [_STORE.parent / "errors.py"]:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def cache_root() -> Path | None:
    """The cache directory, or None when DSABENCH_CACHE_DIR=off."""
    value = os.environ.get(ENV)
    if value is not None and value.strip().lower() == OFF:
        return None
    if value:
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dsabench"


def stat_key(run_dir: Path) -> tuple:
    """What identifies the files of run_dir as read now (None for a file that is absent): device,
    inode, mode, size, modification and change time (ns)."""
    out = []
    for name in FILES:
        try:
            st = os.stat(run_dir / name)
        except OSError:
            out.append(None)
            continue
        out.append((st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def _entry(run_dir: Path, root: Path) -> Path:
    ident = f"{os.fspath(run_dir)}\0{os.path.realpath(run_dir)}".encode()
    return root / "frames" / code_version() / (hashlib.sha256(ident).hexdigest()[:32] + ".pickle")


def get(run_dir: Path) -> tuple[tuple, object | None]:
    """(key of run_dir now, its cached rows or None). Take the key before reading the run: what
    is stored under it must be what was read after it."""
    key = (time.time_ns(), stat_key(run_dir))
    root = cache_root()
    if root is None:
        return key, None
    try:
        with open(_entry(run_dir, root), "rb") as f:
            if pickle.load(f) != key[1]:
                return key, None
            return key, pickle.load(f)
    except Exception:  # absent, unreadable, truncated or from another pickle: a miss, rebuilt from the run
        return key, None


def _settled(key: tuple) -> bool:
    """Every file of the key last changed RACY_NS or more before the key was taken. A file's times
    tick coarsely (a few ms; 2 s on FAT): one rewritten at the same size within the tick of its
    last change keeps its times, so a run changed that recently is not cached (as git treats a
    file as racily clean)."""
    taken, stats = key
    return stats[0] is not None and all(st is None or max(st[4], st[5]) <= taken - RACY_NS for st in stats)


def put(run_dir: Path, key: tuple, value: object) -> None:
    """Store value as run_dir's rows under key (from `get`, taken before the run was read)."""
    root = cache_root()
    if root is None or not _settled(key):
        return
    path = _entry(run_dir, root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(key[1], f, protocol=pickle.HIGHEST_PROTOCOL)
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception:  # read-only, full, or rows pickle cannot write: the verb reads; the cache is only a shortcut
        return
    _prune(path.parent.parent, path.parent.name)


_pruned: set[Path] = set()


def _prune(frames_dir: Path, current: str) -> None:
    """Remove other code versions' directories left unused for PRUNE_DAYS (once a process)."""
    if frames_dir in _pruned:
        return
    _pruned.add(frames_dir)
    cutoff = time.time() - PRUNE_DAYS * 86400
    try:
        for d in frames_dir.iterdir():
            if d.name != current and d.is_dir() and d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
    except OSError:
        pass
