"""Where the measured forward comes from: the suite's own mirror, or FastDeploy's code at a commit.

`parse_impl` reads the spelling the CLI flag `--impl` and a scenario file's `impl` key take:
`mirror` (the default), `fastdeploy:PATH[@COMMIT]`, or `mirror+inject=F`: the mirror with a known
slowdown of F x its own forward added to every forward (`bench.inject`), measured beside the
plain mirror in the same rounds of the same processes. That is how a paired comparison (`compare
--impls`) is calibrated: `mirror` vs `mirror+inject=0` is an A/A pair of identical code under two
labels, `mirror` vs `mirror+inject=0.25` a +25% slowdown whose pairing cancels what the host does
to both. Framework-free: the CLI and the scenario loader may import it without pulling in Paddle.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from dsabench.errors import InputError
from dsabench.store.schema import INJECT_PREFIX

IMPL_KINDS = ("mirror", "fastdeploy")
ALLOWED = "'mirror', 'mirror+inject=F' (F from 0 to 100) or 'fastdeploy:PATH[@COMMIT]'"
MAX_INJECT = 100.0  # F x the forward: beyond this a calibration measures the delay, not the gate


@dataclass(frozen=True)
class ImplSpec:
    """One implementation to measure: `kind`; for FastDeploy, the tree and commit asked for; for
    an injected mirror, the delay as a fraction of the forward (None: no injection)."""

    kind: str
    path: str = ""
    commit: str = ""
    inject: float | None = None

    @property
    def label(self) -> str:
        """The spelling the user gave, normalised: how records and reports name the impl."""
        if self.kind == "mirror":
            return "mirror" if self.inject is None else f"{INJECT_PREFIX}{fraction_text(self.inject)}"
        return f"fastdeploy:{self.path}" + (f"@{self.commit}" if self.commit else "")


def fraction_text(f: float) -> str:
    """An injected fraction as its label spells it: plain digits, at most 6 after the point, no
    exponent (1e-05 would not parse back), so label, spec and record agree through a resume."""
    return f"{f:.6f}".rstrip("0").rstrip(".") or "0"


MIRROR = ImplSpec("mirror")


def parse_impl(text: str, where: str = "--impl") -> ImplSpec:
    """'mirror' | 'fastdeploy:PATH[@COMMIT]' -> ImplSpec; anything else is one InputError line.

    The commit is split at the last '@', so a PATH may itself hold an '@'.
    """
    raw = text.strip()
    if raw == "mirror":
        return MIRROR
    if raw.startswith(INJECT_PREFIX):
        value = raw[len(INJECT_PREFIX):]
        f = float(value) if re.fullmatch(r"[0-9]+(\.[0-9]{1,6})?", value) else math.nan  # ASCII digits, no sign
        if not (0.0 <= f <= MAX_INJECT):
            raise InputError(f"{where}: impl {text!r}: inject {value!r}; expected a number from 0 to "
                             f"{MAX_INJECT:g} in digits, at most 6 after the point (the delay as a fraction of the "
                             "forward: 0.25 adds 25%)")
        return ImplSpec("mirror", inject=f)
    kind, sep, rest = raw.partition(":")
    if kind != "fastdeploy" or not sep:
        raise InputError(f"{where}: impl {text!r}; expected {ALLOWED}")
    path, at, commit = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if not path:
        raise InputError(f"{where}: impl {text!r} names no PATH; expected {ALLOWED}")
    if at and not commit:
        raise InputError(f"{where}: impl {text!r} ends in '@' with no COMMIT; expected {ALLOWED}")
    return ImplSpec("fastdeploy", path, commit)
