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
    GOOD up to BAD, oldest first. GOOD must lie on BAD's first-parent chain: one that came in
    through a merge's other side is refused, since `GOOD..BAD --first-parent` would also walk the
    mainline commits from before that merge, none of which holds GOOD (`_merge_of`)."""
    good_sha, bad_sha = resolve_commit(repo, good, f"{label} GOOD"), resolve_commit(repo, bad, f"{label} BAD")
    if good_sha == bad_sha:
        raise InputError(f"{label}: GOOD {good!r} and BAD {bad!r} are the same commit {good_sha[:12]}; expected GOOD "
                         "to be an older commit than BAD")
    if _git(repo, "merge-base", "--is-ancestor", good_sha, bad_sha).returncode != 0:
        raise InputError(f"{label}: GOOD {good!r} ({good_sha[:12]}) is not an ancestor of BAD {bad!r} "
                         f"({bad_sha[:12]}); expected GOOD older than BAD on one history")
    res = _git(repo, "log", "--first-parent", "--reverse", "--diff-merges=first-parent", "--no-renames", "--name-only",
               "--format=%x01%H%x02%P%x02%s", f"{good_sha}..{bad_sha}")
    if res.returncode != 0:
        raise InputError(f"{label}: git log {good_sha[:12]}..{bad_sha[:12]} failed: {res.stderr.strip()[:200]}")
    out, first_parent_of_oldest = [], None
    for block in res.stdout.split("\x01")[1:]:
        head, _, names = block.partition("\n")
        sha, parents, subject = (head.split("\x02", 2) + ["", ""])[:3]
        if first_parent_of_oldest is None:
            first_parent_of_oldest = (parents.split() or [""])[0]
        out.append((sha.strip(), subject.strip(), tuple(n for n in names.splitlines() if n.strip())))
    if first_parent_of_oldest != good_sha:  # on the chain, the oldest commit after GOOD has GOOD as its first parent
        sha, subject = _merge_of(repo, good_sha, [c[:2] for c in out])
        raise InputError(f"{label}: GOOD {good!r} ({good_sha[:12]}) is not on BAD {bad!r}'s first-parent chain: it came "
                         f"in with merge {sha[:12]} {subject!r}, and the chain before that merge never held it; "
                         "expected a GOOD on the chain (that merge, if it is good, or a first-parent commit after it)")
    return out


def _merge_of(repo: Path, good_sha: str, chain: list[tuple[str, str]]) -> tuple[str, str]:
    """(sha, subject) of the oldest commit of `chain` (first-parent, oldest first, ending at BAD,
    which holds GOOD) that holds GOOD: the merge that brought it in. Holding GOOD only ever starts
    along the chain, so a binary search finds it."""
    lo, hi = 0, len(chain) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _git(repo, "merge-base", "--is-ancestor", good_sha, chain[mid][0]).returncode == 0:
            hi = mid
        else:
            lo = mid + 1
    return chain[lo]


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
