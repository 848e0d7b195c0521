"""Build a small FastDeploy history around PR #7253 from FastDeploy's real dsa_attention_backend.py,
for `dsabench bisect --improvement` to find the commit that made the forward faster.

    python3 scripts/bisect_real_history.py BEFORE.py AFTER.py OUT_DIR

BEFORE.py is the file at FastDeploy 3d3e282b, AFTER.py at 08db3779 (e.g. `git -C FastDeploy show
3d3e282b:fastdeploy/model_executor/layers/attention/dsa_attention_backend.py > BEFORE.py`). The
history (OUT_DIR/FastDeploy, oldest first): BEFORE as committed; AFTER's rope_3d line; AFTER's blank
lines after the constructor; a comment edit; PR #7253 (AFTER's scale line and its decode block, the
view of the cache instead of the transposed copy); the comment edit undone; a README-only commit
(not walked); a docstring edit and its undoing. The last commit's file is AFTER byte for byte
(checked). Every changed line is taken from the two files given, none is spelled here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BACKEND = "fastdeploy/model_executor/layers/attention/dsa_attention_backend.py"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _one(pattern: str, text: str, what: str) -> re.Match:
    found = list(re.finditer(pattern, text, flags=re.S))
    if len(found) != 1:
        sys.exit(f"{what}: found {len(found)} times; expected once (is this FastDeploy's dsa_attention_backend.py?)")
    return found[0]


def build(before: str, after: str, out: Path) -> list[str]:
    """The history's subjects, oldest first."""
    repo = out / "FastDeploy"
    path = repo / BACKEND
    path.parent.mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "bench@example.invalid")
    _git(repo, "config", "user.name", "bench")
    subjects = []

    def commit(text: str, subject: str) -> None:
        path.write_text(text, encoding="utf-8")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", subject)
        subjects.append(subject)

    (repo / "README.md").write_text("FastDeploy's dsa_attention_backend.py at several commits, for a bisection\n")
    text = before
    commit(text, "dsa_attention_backend.py as at FastDeploy 3d3e282b")
    rope = r"        self\.rope_3d: bool = [^\n]*\n"
    text = text.replace(_one(rope, text, "BEFORE's rope_3d line").group(0), _one(rope, after, "AFTER's rope_3d line").group(0))
    commit(text, "Read rope_3d from the model config (as at 08db3779)")
    blank = r'cast\("int32"\)\n+    def _cast'
    text = text.replace(_one(blank, text, "BEFORE's constructor end").group(0), _one(blank, after, "AFTER's").group(0))
    commit(text, "Blank lines after the constructor (as at 08db3779)")
    commit(text.replace("  # casual\n", "  # causal\n"), "Comment: causal")
    text = text.replace("  # casual\n", "  # causal\n")
    scale = r"        (k_range = [^\n]*\n        )?scale = paddle\.abs\(compressed_kv\)\.max\(\) / [^\n]*\n"
    decode = r"            tile_scheduler_metadata, _ = flash_mla\.get_mla_metadata\(\)\n.*?                latent_cache[^\n]*\n"
    for pattern, what in ((scale, "the scale line"), (decode, "the decode call's cache argument")):
        text = text.replace(_one(pattern, text, f"BEFORE's {what}").group(0), _one(pattern, after, f"AFTER's {what}").group(0))
    commit(text, "PR #7253: scale by the scalar 200.0; view the cache instead of a transposed copy")
    text = text.replace("  # causal\n", "  # casual\n")
    commit(text, "Comment: casual, as upstream")
    with open(repo / "README.md", "a") as fh:
        fh.write("Not walked: touches no file the plug-in loads.\n")
    commit(text, "README: a line")
    doc = '    """ """\n    if scale <= 1:'
    commit(text.replace(doc, '    """yarn mscale"""\n    if scale <= 1:'), "Docstring of yarn_get_mscale")
    commit(text, "Docstring of yarn_get_mscale as upstream")
    if text != after:
        sys.exit("the history's last file differs from AFTER: the two files are not 3d3e282b's and 08db3779's")
    return subjects


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    out = Path(sys.argv[3])
    if (out / "FastDeploy").exists():
        sys.exit(f"{out / 'FastDeploy'} exists; expected a new directory")
    names = build(Path(sys.argv[1]).read_text(encoding="utf-8"), Path(sys.argv[2]).read_text(encoding="utf-8"), out)
    print(f"{out / 'FastDeploy'}: {len(names)} commits, GOOD = HEAD~{len(names) - 1}, BAD = HEAD")
