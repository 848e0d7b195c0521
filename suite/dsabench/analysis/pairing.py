"""Which worker processes two sides of a within-run comparison share.

Variants (or impls, or kernels) of one eager group are timed in the same worker processes, round
by round, so the gate pairs process with process (`gate.decide(paired=True)`: base[i] and cand[i]
must be one process). A merged record lists only its ok processes (`store.merge_repeats`): when
each side lost a different repeat (a crash, a refusal), the lists' positions name different
processes. Here they are paired by the identity each carries beside its samples, (repeat, pid) in
`process_chunks`, the key the host-steady rounds pair by too; a process of one side only is left
out, and `Paired.left_out` says which.

Pure functions over frame rows or merged records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

_SEQ = (list, tuple, np.ndarray)


def keyed_processes(row: Mapping) -> list[tuple[tuple, list[float]]]:
    """(identity, samples) per worker process that holds samples: the identity from the row's
    `process_chunks` entries ([repeat, pid]) where they stand beside `process_samples`, else its place
    (i,); a row without process grouping is one process of all its samples."""
    groups = row.get("process_samples")
    if not (isinstance(groups, _SEQ) and len(groups) and all(isinstance(g, _SEQ) for g in groups)):
        samples = row.get("samples_ms")
        if not isinstance(samples, _SEQ):
            samples = (row.get("timing") or {}).get("samples_ms") or []
        return [((0,), [float(s) for s in samples])]
    entries = row.get("process_chunks")
    aligned = isinstance(entries, _SEQ) and len(entries) == len(groups)
    out = []
    for i, g in enumerate(groups):
        if not len(g):
            continue
        key = (entries[i] or {}).get("key") if aligned and isinstance(entries[i], Mapping) else None
        out.append((tuple(key) if isinstance(key, _SEQ) and len(key) else (i,), [float(s) for s in g]))
    return out


def process_groups(row: Mapping) -> list[list[float]]:
    """The row's samples per worker process (`process_samples`), or all of them as one process."""
    return [g for _, g in keyed_processes(row)]


def _name(key: tuple, other_side: list[tuple]) -> str:
    """'repeat 1', with its pid where the other side left out another process of that repeat."""
    if len(key) != 2:
        return f"process {key[0]}"
    twin = any(len(k) == 2 and k[0] == key[0] for k in other_side)
    return f"repeat {key[0]}" + (f" (pid {key[1]})" if twin and key[1] is not None else "")


@dataclass(frozen=True)
class Paired:
    """Both sides' samples of the processes they share, in one order (base[i] and cand[i] one
    process); `shared` of `processes` (either side's); left_out: the others in words, '' if none."""

    base: list
    cand: list
    shared: int
    processes: int
    left_out: str

    def text(self) -> str:
        """What a paired verdict rests on when a process was left out ('' when none was)."""
        if not self.left_out:
            return ""
        return f"the {self.shared} of {self.processes} processes both sides were measured in ({self.left_out})"


def paired_processes(base_row: Mapping, cand_row: Mapping) -> Paired:
    """The processes both rows were measured in, paired by identity, in base's order."""
    base, cand = keyed_processes(base_row), keyed_processes(cand_row)
    by_key = dict(cand)
    shared = [k for k, _ in base if k in by_key]
    kb = [k for k, _ in base if k not in by_key]
    kc = [k for k, _ in cand if k not in set(shared)]
    only_b, only_c = [_name(k, kc) for k in kb], [_name(k, kb) for k in kc]
    left = "; ".join(filter(None, (f"{', '.join(only_b)} base only" if only_b else "",
                                    f"{', '.join(only_c)} cand only" if only_c else "")))
    b = dict(base)
    return Paired([b[k] for k in shared], [by_key[k] for k in shared], len(shared),
                  len(shared) + len(kb) + len(kc), f"left out: {left}" if left else "")


@dataclass(frozen=True)
class Sides:
    """What the gate judges a pair on: each side's groups, whether paired, and what the verdict
    rests on where paired sides left a process out ('' otherwise)."""

    base: list
    cand: list
    paired: bool
    rests_on: str = ""


def judged_sides(base_row: Mapping, cand_row: Mapping, paired: bool) -> Sides:
    """Paired sides on the processes they share (none shared: unpaired on all, saying so)."""
    if not paired:
        return Sides(process_groups(base_row), process_groups(cand_row), False)
    both = paired_processes(base_row, cand_row)
    if both.shared:
        return Sides(both.base, both.cand, True, both.text())
    return Sides(process_groups(base_row), process_groups(cand_row), False,
                 f"all samples, unpaired: no process measured both sides ({both.left_out})")
