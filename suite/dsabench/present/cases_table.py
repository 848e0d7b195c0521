"""`dsabench scenarios show`'s table: one row per case with its sizes, then a total."""

from __future__ import annotations

from typing import Iterable

from dsabench.present.text import fmt_bytes, text_table
from dsabench.workload.cases import Case


_COLUMNS = (
    "id", "phase", "batch", "context_len", "prefill_len", "num_blocks",
    "heads", "topk", "variant", "graph", "cache", "est. memory",
)  # fmt: skip
_RIGHT = {"batch", "context_len", "prefill_len", "num_blocks", "heads", "topk", "cache", "est. memory"}


def _row(case: Case) -> tuple[str, ...]:
    return (
        case.id,
        case.phase,
        str(case.batch),
        str(case.context_len),
        str(case.prefill_len),
        str(case.num_blocks),
        str(case.heads),
        str(case.topk),
        case.variant.name,
        "on" if case.graph else "off",
        fmt_bytes(case.cache_bytes()),
        fmt_bytes(case.estimated_bytes()),
    )


def format_cases_table(cases: Iterable[Case]) -> str:
    """One row per case, then a total: what a run will do and the memory its largest case needs."""
    cases = list(cases)
    right = [i for i, name in enumerate(_COLUMNS) if name in _RIGHT]
    lines = text_table(_COLUMNS, [_row(c) for c in cases], right=right)
    configs = len({c.config_id for c in cases})
    peak = max((c.estimated_bytes() for c in cases), default=0)
    biggest_cache = max((c.cache_bytes() for c in cases), default=0)
    lines.append(
        f"total: {len(cases)} cases, {configs} configs; largest cache {fmt_bytes(biggest_cache)}, "
        f"largest estimated memory {fmt_bytes(peak)}"
    )
    return "\n".join(lines)
