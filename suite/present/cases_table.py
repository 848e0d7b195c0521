"""`dsabench scenarios show`'s table: one row per case with its sizes, then a total.

Keeps its own bytes formatter for now; present/text.py is to hold the one formatter and table
writer that this module should then use.
"""

from __future__ import annotations

from typing import Iterable

from dsabench.workload.cases import Case


def human_bytes(n: int) -> str:
    """Binary units, one decimal: sizes to plan device memory with."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


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
        human_bytes(case.cache_bytes()),
        human_bytes(case.estimated_bytes()),
    )


def format_cases_table(cases: Iterable[Case]) -> str:
    """One row per case, then a total: what a run will do and the memory its largest case needs."""
    cases = list(cases)
    rows = [_COLUMNS] + [_row(c) for c in cases]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]

    def line(row: tuple[str, ...]) -> str:
        cells = (
            cell.rjust(w) if name in _RIGHT else cell.ljust(w) for name, cell, w in zip(_COLUMNS, row, widths)
        )
        return "  ".join(cells).rstrip()

    lines = [line(r) for r in rows]
    configs = len({c.config_id for c in cases})
    peak = max((c.estimated_bytes() for c in cases), default=0)
    biggest_cache = max((c.cache_bytes() for c in cases), default=0)
    lines.append(
        f"total: {len(cases)} cases, {configs} configs; largest cache {human_bytes(biggest_cache)}, "
        f"largest estimated memory {human_bytes(peak)}"
    )
    return "\n".join(lines)
