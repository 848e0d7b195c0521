"""Scenario files: TOML that expands into a validated, ordered list of `Case`.

A file is a preset (`scenarios/NAME.toml`, loaded by name) or any path ending in `.toml`:

    [preset]                  # optional
    description = "what the preset is for and how long it runs"

    [defaults]                # optional: axis values for every [[scenario]] of the file
    block_size = 64

    [[scenario]]              # one or more
    name = "decode-sweep"     # required, unique in the file
    description = "why"       # optional
    phase = "decode"          # every axis takes one value or a list of values
    batch = [1, 4]
    num_blocks = [64, 256]
    variant = "all"

    [[exclude]]               # optional, any number: drop the cases that match every key given
    graph = "on"
    phase = "prefill"

Axes (key, allowed values, default; a list means "each of these"):

    phase        'decode' | 'prefill' | 'mixed'                        'decode'
    batch        positive integer                                      1
    context_len  non-negative integer; >= 1 unless phase is 'prefill'  4096
    prefill_len  non-negative integer; >= 1 unless phase is 'decode'   1024
    num_blocks   positive integer >= Case.blocks_needed()              the case's minimum
    block_size   power of two                                          64
    cache_heads  positive integer                                      1
    heads        positive integer: query heads per rank                128
    tp           positive divisor of 128: heads = 128 // tp            (instead of heads)
    topk         positive integer                                      2048 (index_topk)
    seed         non-negative integer                                  0
    mode         'hot' | 'cold'                                        'hot'
    graph        'off' | 'on' | false | true                           'off'
    variant      'all' | 'baseline' | 'patched' | 'SCALE+LAYOUT'       'all'

Expansion, per scenario in file order: the scenario's keys override [defaults], which override
the built-in defaults (giving `heads` or `tp` in a scenario overrides both in [defaults]). The
cartesian product runs over the axes in the order of the table above (variant varies fastest, so
the variants of one group sit together), values in the order written. Axes a phase ignores are
normalized (prefill: context_len 0; decode: prefill_len 0). Then every [[exclude]] drops the
cases whose normalized values match all its keys (an exclusion that matches nothing is fine); the
survivors are checked (context_len, prefill_len, num_blocks) so that an exclusion can remove a
combination that would not be valid; then cases with an id already seen are dropped, keeping the
first. Cases with cache_heads > 1 and a `view` layout are kept: the runner records them `invalid`.

Every mistake raises `InputError` with one line naming the file, the table (scenario by name, or
by 1-based index when it has none), the key, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from dsabench.workload.cases import MODES, PHASES, Case
from dsabench.errors import InputError
from dsabench.workload.dims import DEFAULT_DIMS
from dsabench.workload.variants import ALL_VARIANTS, LAYOUT_MODES, SCALE_MODES, parse_variant

PRESET_DIR = Path(__file__).resolve().parents[2] / "scenarios"

TOTAL_HEADS = DEFAULT_DIMS.total_heads
TOP_LEVEL_KEYS = ("preset", "defaults", "scenario", "exclude")
PRESET_KEYS = ("description",)


# --- Values -----------------------------------------------------------------------------------


class _Bad(Exception):
    """One value is not allowed; the caller knows the file, table and key to name."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # TOML true must not count as 1


def _positive(v: Any) -> tuple:
    if not (_is_int(v) and v >= 1):
        raise _Bad
    return (v,)


def _non_negative(v: Any) -> tuple:
    if not (_is_int(v) and v >= 0):
        raise _Bad
    return (v,)


def _power_of_two(v: Any) -> tuple:
    if not (_is_int(v) and v >= 1 and v & (v - 1) == 0):
        raise _Bad
    return (v,)


def _choice(allowed: tuple[str, ...]) -> Callable[[Any], tuple]:
    def check(v: Any) -> tuple:
        if v not in allowed or not isinstance(v, str):
            raise _Bad
        return (v,)

    return check


def _graph(v: Any) -> tuple:
    if isinstance(v, bool):
        return (v,)
    if v in ("on", "off") and isinstance(v, str):
        return (v == "on",)
    raise _Bad


def _variant(v: Any) -> tuple:
    if not isinstance(v, str):
        raise _Bad
    if v == "all":
        return ALL_VARIANTS
    try:
        return (parse_variant(v),)
    except ValueError:
        raise _Bad from None


def _tp(v: Any) -> tuple:
    """tp is read as the heads one rank holds, the only thing the forward sees."""
    if not (_is_int(v) and v >= 1 and TOTAL_HEADS % v == 0):
        raise _Bad
    return (TOTAL_HEADS // v,)


@dataclass(frozen=True)
class _Axis:
    name: str
    check: Callable[[Any], tuple]  # one written value -> its normalized values (variant 'all': six)
    expected: str
    default: tuple


_VARIANT_TEXT = (
    f"'all', 'baseline', 'patched' or SCALE+LAYOUT with SCALE in {', '.join(SCALE_MODES)} "
    f"and LAYOUT in {', '.join(LAYOUT_MODES)}"
)

# Product order: variant last, so a group's variants are adjacent.
AXES: dict[str, _Axis] = {
    a.name: a
    for a in (
        _Axis("phase", _choice(PHASES), "one of " + ", ".join(map(repr, PHASES)), ("decode",)),
        _Axis("batch", _positive, "a positive integer", (1,)),
        _Axis("context_len", _non_negative, "a non-negative integer", (4096,)),
        _Axis("prefill_len", _non_negative, "a non-negative integer", (1024,)),
        _Axis("num_blocks", _positive, "a positive integer", (None,)),  # None: the case's minimum
        _Axis("block_size", _power_of_two, "a power of two", (64,)),
        _Axis("cache_heads", _positive, "a positive integer", (1,)),
        _Axis("heads", _positive, "a positive integer", (TOTAL_HEADS,)),
        _Axis("topk", _positive, "a positive integer", (2048,)),
        _Axis("seed", _non_negative, "a non-negative integer", (0,)),
        _Axis("mode", _choice(MODES), "one of " + ", ".join(map(repr, MODES)), ("hot",)),
        _Axis("graph", _graph, "'off', 'on', false or true", (False,)),
        _Axis("variant", _variant, _VARIANT_TEXT, ALL_VARIANTS),
    )
}
TP = _Axis("tp", _tp, f"a positive divisor of {TOTAL_HEADS} (heads = {TOTAL_HEADS} // tp)", ())
AXIS_KEYS = tuple(AXES) + ("tp",)
SCENARIO_KEYS = ("name", "description") + AXIS_KEYS


def _show(v: Any) -> str:
    """A value as the user wrote it in TOML, so the message can be matched against the file."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, dict):
        return "a table"
    return str(v)


# --- Errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """The file and table a message is about; every error names both."""

    file: str
    table: str = ""

    def error(self, message: str) -> InputError:
        prefix = f"{self.file}: {self.table}: " if self.table else f"{self.file}: "
        return InputError((prefix + message).replace("\n", " "))

    def at(self, table: str) -> "_Where":
        return _Where(self.file, table)


def _display(path: Path) -> str:
    """The path relative to the working directory when under it: short and clickable."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _closest(word: str, allowed: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(allowed), n=1)
    return f"did you mean '{match[0]}'? " if match else ""


def _check_keys(where: _Where, table: dict, allowed: tuple[str, ...], what: str = "key") -> None:
    for key, value in table.items():
        if key not in allowed:
            hint = "axes go in [defaults] or a [[scenario]]; " if key in AXIS_KEYS and key not in allowed else ""
            raise where.error(
                f"unknown {what} '{key}' = {_show(value)}; {_closest(key, allowed)}{hint}"
                f"allowed {what}s: {', '.join(allowed)}"
            )


# --- Parsing ----------------------------------------------------------------------------------


def _axis_values(where: _Where, axis: _Axis, raw: Any) -> tuple:
    """A written value or list of values -> normalized values, de-duplicated in written order."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise where.error(f"key '{axis.name}' is []; expected {axis.expected} or a non-empty list of them")
    out: list = []
    for item in items:
        try:
            values = axis.check(item)
        except _Bad:
            shown = _show(raw) if item is raw else f"{_show(raw)} (item {_show(item)})"
            raise where.error(f"key '{axis.name}' is {shown}; expected {axis.expected} or a list of them") from None
        out.extend(v for v in values if v not in out)
    return tuple(out)


def _parse_axes(where: _Where, table: dict) -> dict[str, tuple]:
    """The axis keys of one table, `tp` turned into `heads`."""
    if "heads" in table and "tp" in table:
        raise where.error(
            f"key 'heads' is {_show(table['heads'])} and key 'tp' is {_show(table['tp'])}; "
            f"expected exactly one of them (heads = {TOTAL_HEADS} // tp)"
        )
    axes = {key: _axis_values(where, AXES[key], table[key]) for key in AXES if key in table}
    if "tp" in table:
        axes["heads"] = _axis_values(where, TP, table["tp"])
    return axes


def _table(where: _Where, doc: dict, key: str, default: Any) -> Any:
    value = doc.get(key, default)
    want_list = key in ("scenario", "exclude")
    if want_list and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
        raise where.error(f"key '{key}' is {_show(value)}; expected an array of tables, written [[{key}]]")
    if not want_list and not isinstance(value, dict):
        raise where.error(f"key '{key}' is {_show(value)}; expected a table, written [{key}]")
    return value


def _description(where: _Where, table: dict) -> str:
    value = table.get("description", "")
    if not isinstance(value, str):
        raise where.error(f"key 'description' is {_show(value)}; expected a string")
    return value


@dataclass(frozen=True)
class _Scenario:
    name: str
    label: str  # how messages name it
    axes: dict[str, tuple]


def _parse_scenarios(where: _Where, raw: list[dict], defaults: dict[str, tuple]) -> list[_Scenario]:
    if not raw:
        raise where.error("no [[scenario]] tables; expected at least one")
    seen: dict[str, int] = {}
    out = []
    for index, table in enumerate(raw, start=1):
        name = table.get("name")
        label = f"scenario '{name}'" if isinstance(name, str) and name else f"scenario #{index}"
        here = where.at(label)
        if "name" not in table:
            raise here.error("key 'name' is missing; expected a non-empty string, unique in the file")
        if not (isinstance(name, str) and name.strip()):
            raise here.error(f"key 'name' is {_show(name)}; expected a non-empty string, unique in the file")
        if name in seen:
            raise here.error(
                f"key 'name' is {_show(name)}, the name of scenario #{seen[name]} too; expected a unique name"
            )
        seen[name] = index
        _check_keys(here, table, SCENARIO_KEYS)
        _description(here, table)
        own = _parse_axes(here, table)
        axes = {key: axis.default for key, axis in AXES.items()} | defaults | own
        out.append(_Scenario(name, label, axes))
    return out


def _parse_exclusions(where: _Where, raw: list[dict]) -> list[tuple[str, dict[str, tuple]]]:
    out = []
    for index, table in enumerate(raw, start=1):
        here = where.at(f"exclude #{index}")
        _check_keys(here, table, AXIS_KEYS)
        if not table:
            raise here.error(
                f"no keys; expected at least one of {', '.join(AXIS_KEYS)} (an empty one drops every case)"
            )
        out.append((here.table, _parse_axes(here, table)))
    return out


# --- Expansion --------------------------------------------------------------------------------


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


def _expand(scenario: _Scenario) -> list[Case]:
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


def _check_case(where: _Where, case: Case) -> None:
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


def _cases(
    where: _Where, scenarios: list[_Scenario], exclusions: list[tuple[str, dict[str, tuple]]]
) -> tuple[Case, ...]:
    seen: set[str] = set()
    out = []
    for scenario in scenarios:
        for case in _expand(scenario):
            if any(_matches(case, ex) for _, ex in exclusions):
                continue
            _check_case(where.at(scenario.label), case)
            if case.id not in seen:
                seen.add(case.id)
                out.append(case)
    if not out:
        raise where.error("every case is excluded; expected at least one case left after the [[exclude]] tables")
    return tuple(out)


# --- Public API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioSet:
    """A loaded file: its cases and what identifies the file's exact contents in a run record."""

    path: Path
    sha256: str
    description: str
    cases: tuple[Case, ...]

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class PresetInfo:
    name: str
    path: Path
    description: str
    num_cases: int


def _read(path: Path) -> tuple[bytes, dict]:
    where = _Where(_display(path))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise where.error("no such scenario file") from None
    except IsADirectoryError:
        raise where.error("is a directory; expected a scenario file ending in .toml") from None
    except OSError as e:
        raise where.error(f"cannot read: {e.strerror}") from None
    try:
        return data, tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise where.error(f"not UTF-8 text (byte {e.start}); expected a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise where.error(f"not valid TOML: {e}") from None


def load(path: str | Path) -> ScenarioSet:
    """Read, validate and expand one scenario file."""
    path = Path(path)
    data, doc = _read(path)
    where = _Where(_display(path))
    _check_keys(where, doc, TOP_LEVEL_KEYS, what="top-level table")
    preset = _table(where, doc, "preset", {})
    _check_keys(where.at("[preset]"), preset, PRESET_KEYS)
    description = _description(where.at("[preset]"), preset)
    raw_defaults = _table(where, doc, "defaults", {})
    _check_keys(where.at("[defaults]"), raw_defaults, AXIS_KEYS)
    defaults = _parse_axes(where.at("[defaults]"), raw_defaults)
    scenarios = _parse_scenarios(where, _table(where, doc, "scenario", []), defaults)
    exclusions = _parse_exclusions(where, _table(where, doc, "exclude", []))
    return ScenarioSet(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        description=description,
        cases=_cases(where, scenarios, exclusions),
    )


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def resolve(name_or_path: str) -> Path:
    """A preset name (`smoke`) or a path ending in .toml -> the file's path."""
    if name_or_path.endswith(".toml"):
        path = Path(name_or_path)
        if not path.is_file():
            raise _Where(name_or_path).error("no such scenario file")
        return path
    names = preset_names()
    if name_or_path in names:
        return PRESET_DIR / f"{name_or_path}.toml"
    raise InputError(
        f"unknown preset '{name_or_path}'; {_closest(name_or_path, names)}"
        f"expected one of {', '.join(names) or '(none)'} in {PRESET_DIR}, or a path ending in .toml"
    )


def load_named(name_or_path: str) -> ScenarioSet:
    return load(resolve(name_or_path))


def list_presets() -> list[PresetInfo]:
    out = []
    for name in preset_names():
        loaded = load(PRESET_DIR / f"{name}.toml")
        out.append(PresetInfo(name, loaded.path, loaded.description, len(loaded.cases)))
    return out


# --- Table ------------------------------------------------------------------------------------


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
