"""A FastDeploy history for bisection tests: the fixture tree (tests/data/fastdeploy_fixture) in a
fresh git repository, then twelve commits on top of it (plus two that touch only README.md).

    0  GOOD   the fixture: tensor scale, the cache transposed into a copy (one copy per forward)
    1         a docstring
    2  FASTER PR #7253's rewrite: the cache viewed, not copied
    3..6      harmless edits of files the plug-in loads (README-only commits in between)
    7  CULPRIT the layout line copies the cache COPIES times
    8  CRASH  forward_mixed reads a meta field the plug-in does not supply: every case crashes
    9  IMPORT the crash gone, a module that does not exist imported: the commit does not load
    10 MISSING dsa_attention_backend.py renamed away: not a FastDeploy tree
    11        renamed back
    12 BAD    a comment

`WALK` names each walked commit's role by its place (1..12). Only the CLI's own behaviour is
under test; the copies make the culprit's cost on the CPU a multiple of GOOD's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from test_fastdeploy_impl import AFTER, BACKEND, FIXTURE, _git

COPIES = 4
VIEW = "        decode_cache = latent_cache.view(new_shape)\n"
PLANTED = ("        for _ in range(%d):  # the cache transposed into a copy, again and again\n"
           "            decode_cache = latent_cache.transpose([0, 2, 1, 3]).contiguous()\n" % COPIES)
CRASH = "        signal_mode = forward_meta.kv_signal_mode\n"
MISSING_IMPORT = "from fastdeploy.model_executor.layers.attention.dsa_utils import pack_latent  # noqa: F401\n"
CULPRIT, FASTER, CRASHES, NO_IMPORT, NO_FILE = 7, 2, 8, 9, 10
LAST = 12
CONFIG = "fastdeploy/config.py"
UTILS = "fastdeploy/model_executor/layers/attention/utils.py"


def _edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{rel}: {old!r} not found once"
    path.write_text(text.replace(old, new))


def _append(repo: Path, rel: str, line: str) -> None:
    path = repo / rel
    path.write_text(path.read_text() + line)


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", message)
    return _git(repo, "rev-parse", "HEAD")


def build(where: Path) -> tuple[Path, list[str]]:
    """(repository, SHAs of commits 0..12 of the walk, GOOD first)."""
    repo = where / "FastDeploy"
    shutil.copytree(FIXTURE, repo)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "bench@example.invalid")
    _git(repo, "config", "user.name", "bench")
    (repo / "README.md").write_text("FastDeploy fixture\n")
    shas = [_commit(repo, "GOOD: tensor scale, transposed copy of the cache")]
    _edit(repo, BACKEND, '"""Fixture: the DSA attention backend', '"""Fixture: the DSA attention backend (DeepSeek-V3.2)')
    shas.append(_commit(repo, "Name the model in the docstring"))
    for old, new in AFTER:
        _edit(repo, BACKEND, old, new)
    shas.append(_commit(repo, "Use a view of the cache instead of a transposed copy (#7253)"))
    _append(repo, "README.md", "Not walked: touches no file the plug-in loads.\n")
    _commit(repo, "README: a line")
    _append(repo, CONFIG, "# config: a harmless comment\n")
    shas.append(_commit(repo, "Comment the config"))
    _append(repo, BACKEND, "# backend: a harmless comment\n")
    shas.append(_commit(repo, "Comment the backend"))
    _append(repo, UTILS, "# utils: a harmless comment\n")
    shas.append(_commit(repo, "Comment the utils"))
    _append(repo, BACKEND, "# backend: another harmless comment\n")
    shas.append(_commit(repo, "Comment the backend again"))
    _edit(repo, BACKEND, VIEW, PLANTED)
    shas.append(_commit(repo, "Copy the cache before decode"))
    _edit(repo, BACKEND, "        latent_cache = forward_meta.caches", CRASH + "        latent_cache = forward_meta.caches")
    shas.append(_commit(repo, "Read the signal mode"))
    _edit(repo, BACKEND, CRASH, "")
    _edit(repo, BACKEND, "import paddle\n", "import paddle\n" + MISSING_IMPORT)
    shas.append(_commit(repo, "Pack the latent cache with a helper"))
    _append(repo, "README.md", "Another line.\n")
    _commit(repo, "README: another line")
    _edit(repo, BACKEND, MISSING_IMPORT, "")
    backend = repo / BACKEND
    backend.rename(backend.with_name("dsa_backend.py"))
    shas.append(_commit(repo, "Rename the backend module"))
    backend.with_name("dsa_backend.py").rename(backend)
    shas.append(_commit(repo, "Rename the backend module back"))
    _append(repo, BACKEND, "# backend: a last comment\n")
    shas.append(_commit(repo, "BAD: a last comment"))
    assert len(shas) == LAST + 1
    return repo, shas
