"""Which (case, impl) pairs a run measures, and the variant a FastDeploy commit's own code implies.

The mirror runs every case of the scenario. A FastDeploy commit's code fixes its own scale and
layout lines, so it runs one case per case group (config and graph mode): the group's case with
the variant its `forward_mixed` source spells (`paddle.tensor(200.0)` + `.contiguous()` is the
baseline, `/ 200.0` + `view` the patched code). Recording that variant keeps the case id
comparable: the mirror's case of the same variant has the same id, and two commits of one group
share the group id. Framework-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dsabench.errors import InputError
from dsabench.workload.cases import Case
from dsabench.workload.variants import Variant

MIRROR_LABEL = "mirror"
MIRROR_OPS_REASON = "the suite's mirror of forward_mixed (bench/backends)"

_TENSOR = re.compile(r"paddle\.(to_)?tensor\(\s*200\.0")
_SCALAR = re.compile(r"/\s*200\.0")
_CONTIGUOUS = re.compile(r"transpose\(\s*\[\s*0\s*,\s*2\s*,\s*1\s*,\s*3\s*\]\s*\)\s*\.contiguous\(\)")
_VIEW = re.compile(r"latent_cache\.view\(")


@dataclass(frozen=True)
class ImplRun:
    """One implementation of a run, as the workers build it and records name it.

    label: `mirror`, or `fastdeploy:<sha12>` (`-dirty` for a tree with local changes; the path
    when the tree is outside git). spec: what the user asked for (PATH as resolved). checkout: the
    plug-in's Checkout (its worktree lives for the whole run, in the CLI process). variant: the
    variant the commit's source implies (None for the mirror, which runs every variant). inject:
    an injected mirror's delay, F x its forward (`mirror+inject=F`, label the same); None otherwise.
    """

    label: str
    spec: str
    checkout: Any = None
    variant: Variant | None = None
    variant_from: str = ""
    info: dict = field(default_factory=dict)  # sha, subject, dirty, path, commit, worktree
    inject: float | None = None

    @property
    def is_mirror(self) -> bool:
        return self.checkout is None


MIRROR_RUN = ImplRun(MIRROR_LABEL, MIRROR_LABEL)


def detect_variant(source: str, label: str) -> tuple[Variant, str]:
    """The (scale, layout) a forward_mixed source spells, and the lines that say so.

    Raises InputError when the layout line is neither spelling: the plug-in would not know which
    mirror variant the commit's figures stand beside.
    """
    if _TENSOR.search(source):
        scale, why_scale = "tensor", "paddle.tensor(200.0)"
    elif _SCALAR.search(source):
        scale, why_scale = "scalar", "/ 200.0"
    else:
        scale, why_scale = "none", "no 200.0 scale line"
    if _CONTIGUOUS.search(source):
        layout, why_layout = "contiguous", "transpose([0, 2, 1, 3]).contiguous()"
    elif _VIEW.search(source):
        layout, why_layout = "view", "latent_cache.view(...)"
    else:
        raise InputError(
            f"{label}: forward_mixed spells its cache layout line neither as transpose([0, 2, 1, 3]).contiguous() "
            "nor as latent_cache.view(...); the plug-in cannot tell which variant the commit runs"
        )
    return Variant(scale, layout), f"forward_mixed's source: {why_scale}, {why_layout}"


def checkout_label(sha: str, dirty: bool, path: str) -> str:
    """`fastdeploy:<sha12>[-dirty]`, or `fastdeploy:<path>` for a tree outside git."""
    if not sha:
        return f"fastdeploy:{path}"
    return f"fastdeploy:{sha[:12]}" + ("-dirty" if dirty else "")


def plan(cases: tuple[Case, ...], impls: tuple[ImplRun, ...],
         kernels: tuple[str, ...] = ()) -> tuple[tuple[Case, str, str], ...]:
    """(case, impl label, kernel) to measure, in case order, every impl of a group side by side.

    The mirror takes every case; a FastDeploy impl takes the first case of each group with its
    variant replaced by the one the commit implies (so a scenario asking only for `patched`
    still measures a baseline commit, recorded as the baseline variant it is). Each of those
    once per kernel of a kernel axis (`--kernel A,B`), beside each other; kernel '' without one.
    """
    out: list[tuple[Case, str]] = []
    seen: set[tuple[str, str]] = set()
    for case in cases:
        for impl in impls:
            if impl.is_mirror:
                out.append((case, impl.label))
                continue
            key = (case.group_id, impl.label)
            if key in seen:
                continue
            seen.add(key)
            out.append((case.with_variant(impl.variant), impl.label))
    return tuple((case, label, kernel) for case, label in out for kernel in kernels or ("",))
