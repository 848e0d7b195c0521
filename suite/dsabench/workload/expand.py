"""Expanding validated scenarios into cases: the product, the exclusions, the checks per case.

The number of combinations is counted, and bounded by `MAX_CASES`, before any is built; each
case's size is computed in closed form (`Case.request_groups`), so no value a file can hold makes
expansion hang or exhaust memory.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

from dsabench.workload.axes import AXES
from dsabench.workload.cases import Case
from dsabench.workload.limits import BOUND_TEXT, DEVICE_BYTES_BOUND, MAX_CASES, gib
from dsabench.workload.scenario_file import Scenario, Where


def check_count(where: Where, scenarios: list[Scenario]) -> None:
    """Refuse a file whose scenarios expand to more than MAX_CASES combinations, before expanding."""
    total = 0
    for scenario in scenarios:
        count = math.prod(len(values) for values in scenario.axes.values())
        total += count
        if total > MAX_CASES:
            sizes = " x ".join(f"{len(v)} {k}" for k, v in scenario.axes.items() if len(v) > 1) or "1"
            raise where.at(scenario.label).error(
                f"expands to {count} combinations ({sizes}), {total} in the file so far; "
                f"expected at most {MAX_CASES} per file before [[exclude]] (the case-count bound): "
                "sweep fewer values, or split the file"
            )


def _case(name: str, combo: dict[str, Any]) -> Case:
    """One combination as a Case, the axes its phase ignores set to 0 so duplicates show."""
    phase = combo["phase"]
    case = Case(
        scenario=name,
        phase=phase,
        batch=combo["batch"],
        context_len=0 if phase == "prefill" else combo["context_len"],
        prefill_len=0 if phase == "decode" else combo["prefill_len"],
        num_blocks=combo["num_blocks"] or 0,
        block_size=combo["block_size"],
        cache_heads=combo["cache_heads"],
        heads=combo["heads"],
        topk=combo["topk"],
        variant=combo["variant"],
        graph=combo["graph"],
        seed=combo["seed"],
        mode=combo["mode"],
    )
    if combo["num_blocks"] is None:
        case = replace(case, num_blocks=max(1, case.blocks_needed()))
    return case


def _expand(scenario: Scenario) -> list[Case]:
    keys = list(AXES)
    combos = itertools.product(*(scenario.axes[k] for k in keys))
    return [_case(scenario.name, dict(zip(keys, combo))) for combo in combos]


def _matches(case: Case, exclusion: dict[str, tuple]) -> bool:
    return all(getattr(case, key) in values for key, values in exclusion.items())


def _case_values(case: Case) -> str:
    shown = [f"phase '{case.phase}'", f"batch {case.batch}"]
    if case.has_decode:
        shown.append(f"context_len {case.context_len}")
    if case.has_prefill:
        shown.append(f"prefill_len {case.prefill_len}")
    return ", ".join(shown + [f"block_size {case.block_size}"])


def _check_case(where: Where, case: Case) -> None:
    """What only a whole combination can violate; checked after exclusions so they can avoid it."""
    if case.has_decode and case.context_len < 1:
        raise where.error(
            f"key 'context_len' is {case.context_len} with phase '{case.phase}'; "
            "expected a positive integer (only phase 'prefill' ignores it)"
        )
    if case.has_prefill and case.prefill_len < 1:
        raise where.error(
            f"key 'prefill_len' is {case.prefill_len} with phase '{case.phase}'; "
            "expected a positive integer (only phase 'decode' ignores it)"
        )
    need = case.blocks_needed()
    if case.num_blocks < need:
        raise where.error(
            f"key 'num_blocks' is {case.num_blocks} but {_case_values(case)} needs {need} blocks; "
            f"expected num_blocks >= {need} (or an [[exclude]] for this combination)"
        )
    need_bytes = case.estimated_bytes()
    if need_bytes > DEVICE_BYTES_BOUND:
        raise where.error(
            f"case {case.id} needs an estimated {gib(need_bytes)} of device memory; expected at most "
            f"{gib(DEVICE_BYTES_BOUND)} ({BOUND_TEXT}; or an [[exclude]] for this combination)"
        )


def expand(where: Where, scenarios: list[Scenario], exclusions: list[dict[str, tuple]]) -> tuple[Case, ...]:
    """The cases of a file: each scenario's product, minus exclusions, checked, first of each id kept."""
    check_count(where, scenarios)
    seen: set[str] = set()
    out = []
    for scenario in scenarios:
        for case in _expand(scenario):
            if any(_matches(case, ex) for ex in exclusions):
                continue
            _check_case(where.at(scenario.label), case)
            if case.id not in seen:
                seen.add(case.id)
                out.append(case)
    if not out:
        raise where.error("every case is excluded; expected at least one case left after the [[exclude]] tables")
    return tuple(out)
