"""The axes of a scenario: each one's allowed values, default and bound, and how a value is shown.

A check turns one written value into its normalized values (variant 'all' gives six, tp gives
the heads one rank holds) or raises `Bad`; the caller knows the file, table and key to name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from dsabench.errors import quoted, shown
from dsabench.workload.cases import MODES, PHASES
from dsabench.workload.dims import DEFAULT_DIMS
from dsabench.workload.limits import AXIS_BOUNDS, MAX_SEED, axis_bound_text
from dsabench.workload.variants import ALL_VARIANTS, LAYOUT_MODES, SCALE_MODES, parse_variant

TOTAL_HEADS = DEFAULT_DIMS.total_heads


class Bad(Exception):
    """One value is not allowed; the message, when given, replaces the axis's `expected`."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # TOML true must not count as 1


def _bounded(v: int, most: int, text: str) -> tuple:
    if v > most:
        raise Bad(text)
    return (v,)


def _integer(name: str, least: int) -> Callable[[Any], tuple]:
    """An integer from `least` (0 or 1) to the axis's bound."""
    kind = "a positive integer" if least == 1 else "a non-negative integer"

    def check(v: Any) -> tuple:
        if not (_is_int(v) and v >= least):
            raise Bad
        return _bounded(v, AXIS_BOUNDS[name][0], f"{kind} {axis_bound_text(name)}")

    return check


def _seed(v: Any) -> tuple:
    if not (_is_int(v) and v >= 0):
        raise Bad
    return _bounded(v, MAX_SEED, f"a non-negative integer at most {MAX_SEED} (frameworks take 64-bit seeds)")


def _power_of_two(v: Any) -> tuple:
    if not (_is_int(v) and v >= 1 and v & (v - 1) == 0):
        raise Bad
    return _bounded(v, AXIS_BOUNDS["block_size"][0], "a power of two " + axis_bound_text("block_size"))


def _choice(allowed: tuple[str, ...]) -> Callable[[Any], tuple]:
    def check(v: Any) -> tuple:
        if not isinstance(v, str) or v not in allowed:
            raise Bad
        return (v,)

    return check


def _graph(v: Any) -> tuple:
    if isinstance(v, bool):
        return (v,)
    if isinstance(v, str) and v in ("on", "off"):
        return (v == "on",)
    raise Bad


def _variant(v: Any) -> tuple:
    if not isinstance(v, str):
        raise Bad
    if v == "all":
        return ALL_VARIANTS
    try:
        return (parse_variant(v),)
    except ValueError:
        raise Bad from None


def _tp(v: Any) -> tuple:
    """tp is read as the heads one rank holds, the only thing the forward sees."""
    if not (_is_int(v) and v >= 1 and TOTAL_HEADS % v == 0):
        raise Bad
    return (TOTAL_HEADS // v,)


@dataclass(frozen=True)
class Axis:
    name: str
    check: Callable[[Any], tuple]  # one written value -> its normalized values (variant 'all': six)
    expected: str
    default: tuple


_VARIANT_TEXT = (
    f"'all', 'baseline', 'patched' or SCALE+LAYOUT with SCALE in {', '.join(SCALE_MODES)} "
    f"and LAYOUT in {', '.join(LAYOUT_MODES)}"
)

# Product order: variant last, so a group's variants are adjacent.
AXES: dict[str, Axis] = {
    a.name: a
    for a in (
        Axis("phase", _choice(PHASES), "one of " + ", ".join(map(repr, PHASES)), ("decode",)),
        Axis("batch", _integer("batch", 1), "a positive integer", (1,)),
        Axis("context_len", _integer("context_len", 0), "a non-negative integer", (4096,)),
        Axis("prefill_len", _integer("prefill_len", 0), "a non-negative integer", (1024,)),
        Axis("num_blocks", _integer("num_blocks", 1), "a positive integer", (None,)),  # None: the case's minimum
        Axis("block_size", _power_of_two, "a power of two", (64,)),
        Axis("cache_heads", _integer("cache_heads", 1), "a positive integer", (1,)),
        Axis("heads", _integer("heads", 1), "a positive integer", (TOTAL_HEADS,)),
        Axis("topk", _integer("topk", 1), "a positive integer", (2048,)),
        Axis("seed", _seed, "a non-negative integer", (0,)),
        Axis("mode", _choice(MODES), "one of " + ", ".join(map(repr, MODES)), ("hot",)),
        Axis("graph", _graph, "'off', 'on', false or true", (False,)),
        Axis("variant", _variant, _VARIANT_TEXT, ALL_VARIANTS),
    )
}
TP = Axis("tp", _tp, f"a positive divisor of {TOTAL_HEADS} (heads = {TOTAL_HEADS} // tp)", ())
AXIS_KEYS = tuple(AXES) + ("tp",)


def show(v: Any, depth: int = 0) -> str:
    """A value as the user wrote it in TOML, escaped and cut short, so it can be found in the file."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return quoted(v)
    if isinstance(v, list):
        if depth >= 2:
            return "[...]"
        items = ", ".join(show(x, depth + 1) for x in v[:20])
        return shown("[" + items + (", ..." if len(v) > 20 else "") + "]")
    if isinstance(v, dict):
        return "a table"
    return shown(v)
