"""Where the measured forward comes from: the suite's own mirror, or FastDeploy's code at a commit.

`parse_impl` reads the spelling the CLI flag `--impl` and a scenario file's `impl` key take:
`mirror` (the default) or `fastdeploy:PATH[@COMMIT]`. Framework-free: the CLI and the scenario
loader may import it without pulling in Paddle.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsabench.errors import InputError

IMPL_KINDS = ("mirror", "fastdeploy")
ALLOWED = "'mirror' or 'fastdeploy:PATH[@COMMIT]'"


@dataclass(frozen=True)
class ImplSpec:
    """One implementation to measure: `kind` and, for FastDeploy, the tree and commit asked for."""

    kind: str
    path: str = ""
    commit: str = ""

    @property
    def label(self) -> str:
        """The spelling the user gave, normalised: how records and reports name the impl."""
        if self.kind == "mirror":
            return "mirror"
        return f"fastdeploy:{self.path}" + (f"@{self.commit}" if self.commit else "")


MIRROR = ImplSpec("mirror")


def parse_impl(text: str, where: str = "--impl") -> ImplSpec:
    """'mirror' | 'fastdeploy:PATH[@COMMIT]' -> ImplSpec; anything else is one InputError line.

    The commit is split at the last '@', so a PATH may itself hold an '@'.
    """
    raw = text.strip()
    if raw == "mirror":
        return MIRROR
    kind, sep, rest = raw.partition(":")
    if kind != "fastdeploy" or not sep:
        raise InputError(f"{where}: impl {text!r}; expected {ALLOWED}")
    path, at, commit = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if not path:
        raise InputError(f"{where}: impl {text!r} names no PATH; expected {ALLOWED}")
    if at and not commit:
        raise InputError(f"{where}: impl {text!r} ends in '@' with no COMMIT; expected {ALLOWED}")
    return ImplSpec("fastdeploy", path, commit)
