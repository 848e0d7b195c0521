"""PATH[@COMMIT] -> a FastDeploy source tree on disk, with the commit's SHA and subject.

Without a commit the tree at PATH is used as it is (its HEAD and whether it has local changes
are recorded when it is a git checkout). With a commit, `git worktree add --detach` puts that
commit in a cache directory; leaving the context removes the worktree again (and prunes git's
record of it), also when the run fails. Framework-free.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from dsabench.errors import InputError

BACKEND_FILE = "fastdeploy/model_executor/layers/attention/dsa_attention_backend.py"
_SEQ = itertools.count()  # the same commit may be checked out twice in one process


@dataclass(frozen=True)
class Checkout:
    """A FastDeploy tree ready to import from: `root` holds the `fastdeploy` package."""

    root: Path
    path: str  # PATH as given
    commit: str  # COMMIT as given ('' for the tree as it is)
    sha: str  # full SHA of the commit measured ('' when PATH is not a git checkout)
    subject: str  # its commit subject
    dirty: bool  # local changes on top of `sha` (only when no commit was asked for)
    worktree: bool  # True when `root` is a temporary worktree of `commit`

    def describe(self) -> dict:
        return {
            "path": self.path,
            "commit": self.commit,
            "sha": self.sha,
            "subject": self.subject,
            "dirty": self.dirty,
            "worktree": self.worktree,
        }


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


def _toplevel(path: Path) -> Path | None:
    res = _git(path, "rev-parse", "--show-toplevel")
    return Path(res.stdout.strip()) if res.returncode == 0 else None


def _require_tree(root: Path, label: str) -> None:
    if not (root / BACKEND_FILE).is_file():
        raise InputError(
            f"{label}: not a FastDeploy tree with the DSA backend: {BACKEND_FILE} is missing "
            f"(expected PATH to be the repository root that holds the 'fastdeploy' package)"
        )


def _subject(repo: Path, sha: str) -> str:
    res = _git(repo, "log", "-1", "--format=%s", sha)
    return res.stdout.strip() if res.returncode == 0 else ""


def resolve_commit(repo: Path, commit: str, label: str) -> str:
    """COMMIT (a SHA, a prefix, a branch or tag) -> the full SHA, or one InputError line."""
    res = _git(repo, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    if res.returncode != 0 or not res.stdout.strip():
        raise InputError(f"{label}: unknown commit {commit!r} in the git repository at {repo}")
    return res.stdout.strip()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dsabench" / "fastdeploy-worktrees"


@contextmanager
def checkout(path: str, commit: str = "", cache_dir: Path | None = None) -> Iterator[Checkout]:
    """The tree of fastdeploy:PATH[@COMMIT] for the duration of the context."""
    label = f"fastdeploy:{path}" + (f"@{commit}" if commit else "")
    given = Path(path).expanduser()
    if not given.is_dir():
        raise InputError(f"{label}: PATH {path!r} is not a directory")
    given = given.resolve()
    repo = _toplevel(given)
    if not commit:
        _require_tree(given, label)
        sha = subject = ""
        dirty = False
        if repo is not None:
            sha = _git(repo, "rev-parse", "HEAD").stdout.strip()
            subject = _subject(repo, sha) if sha else ""
            dirty = bool(_git(repo, "status", "--porcelain", "--untracked-files=no").stdout.strip())
        yield Checkout(given, path, "", sha, subject, dirty, False)
        return
    if repo is None:
        raise InputError(f"{label}: PATH {path!r} is not in a git repository, so @{commit} cannot be checked out")
    sha = resolve_commit(repo, commit, label)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(str(repo).encode()).hexdigest()[:8]
    target = cache / f"{tag}-{sha[:12]}-{os.getpid()}-{next(_SEQ)}"
    if target.exists():  # left behind by a killed run of this pid: replace it
        _remove(repo, target)
    res = _git(repo, "worktree", "add", "--detach", str(target), sha)
    if res.returncode != 0:
        raise InputError(f"{label}: git worktree add failed: {_first_line(res.stderr)}")
    try:
        sub = given.relative_to(repo)
        root = target / sub
        _require_tree(root, f"{label} (commit {sha[:12]})")
        yield Checkout(root, path, commit, sha, _subject(repo, sha), False, True)
    finally:
        _remove(repo, target)


def _remove(repo: Path, target: Path) -> None:
    _git(repo, "worktree", "remove", "--force", str(target))
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    _git(repo, "worktree", "prune")
