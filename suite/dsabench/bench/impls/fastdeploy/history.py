"""A FastDeploy repository's history for a bisection: the first-parent commits between two
commits, which of them touch the files the plug-in loads, and a commit's subject and diff stat.

The files the plug-in loads (`loaded_files`) are `dsa_attention_backend.py`, the `__init__.py`
of each package above it, and the modules it imports (`standins.DEPENDENCIES`, each as `x.py`
or `x/__init__.py`). A commit touching none of them runs the same Python code in the plug-in, so
a bisection walks only the others unless asked for all. FastDeploy's compiled ops are not among
them: a worktree at a commit is not built, so the plug-in runs the suite's ops there
(docs/fastdeploy.md). Framework-free.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from dsabench.bench.impls.fastdeploy.checkout import BACKEND_FILE, _git, resolve_commit
from dsabench.bench.impls.fastdeploy.standins import DEPENDENCIES
from dsabench.errors import InputError


def loaded_files() -> tuple[str, ...]:
    """Paths, relative to the tree's root, whose change can change what the plug-in runs."""
    backend = PurePosixPath(BACKEND_FILE)
    packages = [str(p / "__init__.py") for p in reversed(backend.parents) if str(p) != "."]
    modules = []
    for name in DEPENDENCIES:
        base = PurePosixPath(*name.split("."))
        modules += [f"{base}.py", str(base / "__init__.py")]
    return tuple(dict.fromkeys([BACKEND_FILE, *packages, *modules]))


def repository(path: str, label: str) -> tuple[Path, str]:
    """(the git toplevel holding PATH, PATH's place inside it as a posix prefix, '' at the top)."""
    given = Path(path).expanduser()
    if not given.is_dir():
        raise InputError(f"{label}: PATH {path!r} is not a directory")
    res = _git(given, "rev-parse", "--show-toplevel")
    if res.returncode != 0:
        raise InputError(f"{label}: PATH {path!r} is not in a git repository; a bisection walks its commits")
    top = Path(res.stdout.strip()).resolve()
    sub = given.resolve().relative_to(top).as_posix()
    return top, "" if sub == "." else sub + "/"


def first_parent(repo: Path, good: str, bad: str, label: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(sha, subject, files changed against the first parent) of each first-parent commit after
    GOOD up to BAD, oldest first."""
    good_sha, bad_sha = resolve_commit(repo, good, f"{label} GOOD"), resolve_commit(repo, bad, f"{label} BAD")
    if good_sha == bad_sha:
        raise InputError(f"{label}: GOOD {good!r} and BAD {bad!r} are the same commit {good_sha[:12]}; expected GOOD "
                         "to be an older commit than BAD")
    if _git(repo, "merge-base", "--is-ancestor", good_sha, bad_sha).returncode != 0:
        raise InputError(f"{label}: GOOD {good!r} ({good_sha[:12]}) is not an ancestor of BAD {bad!r} "
                         f"({bad_sha[:12]}); expected GOOD older than BAD on one history")
    res = _git(repo, "log", "--first-parent", "--reverse", "--diff-merges=first-parent", "--no-renames", "--name-only",
               "--format=%x01%H%x02%s", f"{good_sha}..{bad_sha}")
    if res.returncode != 0:
        raise InputError(f"{label}: git log {good_sha[:12]}..{bad_sha[:12]} failed: {res.stderr.strip()[:200]}")
    out = []
    for block in res.stdout.split("\x01")[1:]:
        head, _, names = block.partition("\n")
        sha, _, subject = head.partition("\x02")
        out.append((sha.strip(), subject.strip(), tuple(n for n in names.splitlines() if n.strip())))
    return out


def walked(commits, prefix: str, all_commits: bool) -> list[tuple[str, str]]:
    """(sha, subject) of the commits a bisection walks: those that touch a loaded file (under the
    tree's `prefix` in the repository), or all of them."""
    files = {prefix + f for f in loaded_files()}
    return [(sha, subject) for sha, subject, names in commits if all_commits or files.intersection(names)]


def subject(repo: Path, sha: str) -> str:
    return _git(repo, "log", "-1", "--format=%s", sha).stdout.strip()


def diff_stat(repo: Path, sha: str) -> str:
    """`git diff --stat` of the commit against its first parent (every file, not only the loaded ones)."""
    res = _git(repo, "diff", "--stat=100", f"{sha}^1", sha)
    if res.returncode != 0:  # a root commit
        res = _git(repo, "show", "--stat=100", "--format=", sha)
    return res.stdout.rstrip()
