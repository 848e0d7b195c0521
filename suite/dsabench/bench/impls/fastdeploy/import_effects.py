"""What importing a FastDeploy tree does to the process: contained while it runs, recorded after.

FastDeploy's `fastdeploy/__init__.py` sets GLOG_minloglevel and AISTUDIO_LOG and, when
PROMETHEUS_MULTIPROC_DIR is unset, makes /tmp/fd_prom_<uuid> and points the variable at it. Left
alone, a benchmark that loads a checkout would hand those settings to every worker it starts and
leave one directory in /tmp per load. Within `contained`, PROMETHEUS_MULTIPROC_DIR points at a
scratch directory of ours (so the package makes none of its own; a value the user set is left as
it is), and afterwards every variable the import set, changed or removed is put back and the
scratch directory is removed with whatever the import put there. `ImportEffects.describe()` says
what happened, for the record's `impl_info`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PROMETHEUS = "PROMETHEUS_MULTIPROC_DIR"


@dataclass
class ImportEffects:
    """Environment variables the import changed (name -> [value before, value it set]; None: unset),
    all restored; the scratch PROMETHEUS_MULTIPROC_DIR it was given (removed, with what it made
    there); Paddle's torch proxy if the import enabled it (the loader undoes it unless FastDeploy's
own ops, which use it, were chosen)."""

    env: dict[str, list[str | None]] = field(default_factory=dict)
    prometheus_dir_given: bool = False
    prometheus_dir_entries: int = 0
    torch_proxy: str = "not enabled"  # | "undone" | "kept: FastDeploy's ops use it"

    def describe(self) -> dict:
        return {"env_restored": {k: {"before": v[0], "import_set": v[1]} for k, v in sorted(self.env.items())},
                "prometheus_scratch_dir_removed": self.prometheus_dir_given, "prometheus_dir_entries": self.prometheus_dir_entries,
                "torch_proxy": self.torch_proxy}


def _restore(before: dict[str, str], names: list[str]) -> None:
    for name in names:
        if name in before:
            os.environ[name] = before[name]
        else:
            os.environ.pop(name, None)


@contextmanager
def contained(effects: ImportEffects) -> Iterator[ImportEffects]:
    """Run an import of FastDeploy's packages; fill `effects` and undo them on the way out."""
    before = dict(os.environ)
    scratch = None
    if before.get(PROMETHEUS, "") == "":  # FastDeploy's own test: it makes a directory only then
        scratch = Path(tempfile.mkdtemp(prefix="dsabench-fd-import-"))
        os.environ[PROMETHEUS] = str(scratch)
    try:
        yield effects
    finally:
        after = dict(os.environ)
        if scratch is not None and after.get(PROMETHEUS) == str(scratch):  # ours, not the import's
            after = {k: v for k, v in after.items() if k != PROMETHEUS} | (
                {PROMETHEUS: before[PROMETHEUS]} if PROMETHEUS in before else {})
        changed = {k: [before.get(k), after.get(k)] for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        effects.env.update(changed)
        _restore(before, [*changed, PROMETHEUS])
        if scratch is not None:
            effects.prometheus_dir_given = True
            effects.prometheus_dir_entries += sum(1 for _ in scratch.rglob("*"))
            shutil.rmtree(scratch, ignore_errors=True)
