"""How the rows of two runs are matched in `compare A B`: by record key (`schema.key_of`: case id,
impl unless the mirror, kernel on a kernel axis), except that a run holding one FastDeploy commit
is matched as FastDeploy's code, whatever the commit. A nightly of FastDeploy's HEAD measures a
new commit every night; keyed by commit, two nights would share no case, and a gate that judged
nothing would pass. A run of several commits keeps each commit's key (which of tonight's two is
yesterday's one is not for the suite to guess)."""

from __future__ import annotations

from typing import Iterable

from dsabench.store.schema import axis_kernel, is_fastdeploy, key_of, record_key


def keyed(rows: Iterable[dict]) -> dict[str, dict]:
    """Rows by the key they are matched by across runs."""
    rows = list(rows)
    commits = {r["impl"] for r in rows if is_fastdeploy(r.get("impl"))}
    one = commits.pop() if len(commits) == 1 else None

    def key(r: dict) -> str:
        if one is not None and r.get("impl") == one:
            return record_key(r["case_id"], "fastdeploy", axis_kernel(r))
        return key_of(r)

    return {key(r): r for r in rows}
