"""Reading a scenario file and validating its tables, before anything is expanded.

Every mistake raises `InputError` with one line naming the file, the table (scenario by name, or
by 1-based index when it has none), the key, the value and what is allowed. Names and values in
messages are escaped and cut short (`dsabench.errors.shown`).
"""

from __future__ import annotations

import difflib
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from dsabench.errors import LIMIT, InputError, quoted, shown
from dsabench.workload.axes import AXES, AXIS_KEYS, TOTAL_HEADS, TP, Axis, Bad, show
from dsabench.workload.limits import MAX_FILE_BYTES

TOP_LEVEL_KEYS = ("preset", "defaults", "scenario", "exclude")
PRESET_KEYS = ("description", "kernel", "repeats", "impl")
MAX_REPEATS = 20
# The attention kernel is a run option, not a case axis: it is not part of a case id (the same case
# measured with two kernels is the same case, recorded with its `kernel` beside the id). A list of
# kernels is the run's kernel axis: each case measured with each, side by side (bench.kernels.select).
KERNEL_CHOICES = ("auto", "reference", "triton", "gluon", "flashmla")  # bench.kernels.select.KERNELS (a test holds them equal)
SCENARIO_KEYS = ("name", "description") + AXIS_KEYS


@dataclass(frozen=True)
class Where:
    """The file and table a message is about; every error names both."""

    file: str
    table: str = ""

    def error(self, message: str) -> InputError:
        prefix = f"{self.file}: {self.table}: " if self.table else f"{self.file}: "
        return InputError((prefix + message).replace("\n", " "))

    def at(self, table: str) -> "Where":
        return Where(self.file, table)


def display(path: Path) -> str:
    """The path relative to the working directory when under it (short and clickable), escaped."""
    try:
        text = str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop on older Pythons
        text = str(path)
    return shown(text, limit=None)


def closest(word: str, allowed: Iterable[str]) -> str:
    if len(word) > LIMIT:
        return ""
    match = difflib.get_close_matches(word, list(allowed), n=1)
    return f"did you mean '{match[0]}'? " if match else ""


def check_keys(where: Where, table: dict, allowed: tuple[str, ...], what: str = "key") -> None:
    for key, value in table.items():
        if key not in allowed:
            hint = "axes go in [defaults] or a [[scenario]]; " if key in AXIS_KEYS else ""
            raise where.error(
                f"unknown {what} {quoted(key)} = {show(value)}; {closest(key, allowed)}{hint}"
                f"allowed {what}s: {', '.join(allowed)}"
            )


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))  # fmt: skip


def check_regular_file(path: Path, where: Where) -> None:
    """Refuse what is not a readable regular file, saying what it is (reading a FIFO would block)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise where.error("no such scenario file") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise where.error("is a symbolic link loop; expected a scenario file ending in .toml") from None
        raise where.error(f"cannot read: {e.strerror}") from None
    for test, kind in _KINDS:
        if test(st.st_mode):
            raise where.error(f"is {kind}; expected a scenario file ending in .toml")
    if st.st_size > MAX_FILE_BYTES:
        raise where.error(f"is {st.st_size} bytes; expected a scenario file of at most {MAX_FILE_BYTES} bytes")


def read(path: Path) -> tuple[bytes, dict]:
    where = Where(display(path))
    check_regular_file(path, where)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise where.error(f"cannot read: {e.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise where.error(f"is over {MAX_FILE_BYTES} bytes; expected a scenario file of at most {MAX_FILE_BYTES} bytes")
    try:
        return data, tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise where.error(f"not UTF-8 text (byte {e.start}); expected a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise where.error(f"not valid TOML: {e}") from None
    except ValueError as e:  # an integer of over 4300 digits
        raise where.error(f"not valid TOML: {shown(e)}") from None
    except RecursionError:
        raise where.error("arrays or tables nested too deeply to read; expected a scenario file") from None


def axis_values(where: Where, axis: Axis, raw: Any) -> tuple:
    """A written value or list of values -> normalized values, de-duplicated in written order."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise where.error(f"key '{axis.name}' is []; expected {axis.expected} or a non-empty list of them")
    out: dict = {}  # insertion-ordered set: a long list de-duplicates in linear time
    for item in items:
        try:
            values = axis.check(item)
        except Bad as bad:
            shown_value = show(raw) if item is raw else f"{show(raw)} (item {show(item)})"
            expected = bad.args[0] if bad.args else axis.expected
            raise where.error(f"key '{axis.name}' is {shown_value}; expected {expected} or a list of them") from None
        out.update(dict.fromkeys(values))
    return tuple(out)


def parse_axes(where: Where, table: dict) -> dict[str, tuple]:
    """The axis keys of one table, `tp` turned into `heads`."""
    if "heads" in table and "tp" in table:
        raise where.error(
            f"key 'heads' is {show(table['heads'])} and key 'tp' is {show(table['tp'])}; "
            f"expected exactly one of them (heads = {TOTAL_HEADS} // tp)"
        )
    axes = {key: axis_values(where, AXES[key], table[key]) for key in AXES if key in table}
    if "tp" in table:
        axes["heads"] = axis_values(where, TP, table["tp"])
    return axes


def table(where: Where, doc: dict, key: str, default: Any) -> Any:
    value = doc.get(key, default)
    want_list = key in ("scenario", "exclude")
    if want_list and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
        raise where.error(f"key '{key}' is {show(value)}; expected an array of tables, written [[{key}]]")
    if not want_list and not isinstance(value, dict):
        raise where.error(f"key '{key}' is {show(value)}; expected a table, written [{key}]")
    return value


def description(where: Where, table: dict) -> str:
    value = table.get("description", "")
    if not isinstance(value, str):
        raise where.error(f"key 'description' is {show(value)}; expected a string")
    return value


def run_kernel(where: Where, preset: dict, defaults: dict) -> str | None:
    """The `kernel` of [preset] or [defaults] (at most one of them), removed from `defaults` so
    that the rest are axes; None when neither sets it."""
    found = [(name, t.get("kernel")) for name, t in (("[preset]", preset), ("[defaults]", defaults)) if "kernel" in t]
    defaults.pop("kernel", None)
    if not found:
        return None
    if len(found) > 1:
        raise where.error(f"key 'kernel' is set in both [preset] ({show(found[0][1])}) and [defaults] "
                          f"({show(found[1][1])}); expected it in one of them")
    table_name, value = found[0]
    named = KERNEL_CHOICES[1:]
    if isinstance(value, list) and len(value) >= 2 and all(v in named for v in value) and len(set(value)) == len(value):
        return ",".join(value)  # a kernel axis
    if value not in KERNEL_CHOICES:
        raise where.at(table_name).error(f"key 'kernel' is {show(value)}; expected one of {', '.join(KERNEL_CHOICES)}, "
                                         f"or a list of two or more distinct kernels of {', '.join(named)}")
    return value


def run_repeats(where: Where, preset: dict) -> int | None:
    """[preset] repeats: worker processes per case by default for this file (--repeats overrides)."""
    if "repeats" not in preset:
        return None
    value = preset["repeats"]
    if not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_REPEATS):
        raise where.error(f"key 'repeats' is {show(value)}; expected an integer from 1 to {MAX_REPEATS}")
    return value


def impl_specs(where: Where, table: dict) -> tuple[str, ...]:
    """[preset] impl: where the forward comes from, a string or a list of them ('mirror' or
    'fastdeploy:PATH[@COMMIT]'); the spelling is checked by the CLI (bench.impls.parse_impl)."""
    if "impl" not in table:
        return ()
    raw = table["impl"]
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise where.error(f"key 'impl' is {show(raw)}; expected 'mirror' or 'fastdeploy:PATH[@COMMIT]', "
                          "or a non-empty list of them")
    return tuple(items)


@dataclass(frozen=True)
class Scenario:
    """One [[scenario]] table: its name, how messages name it, and the values of every axis."""

    name: str
    label: str
    axes: dict[str, tuple]


def parse_scenarios(where: Where, raw: list[dict], defaults: dict[str, tuple]) -> list[Scenario]:
    if not raw:
        raise where.error("no [[scenario]] tables; expected at least one")
    seen: dict[str, int] = {}
    out = []
    for index, tbl in enumerate(raw, start=1):
        name = tbl.get("name")
        label = f"scenario {quoted(name)}" if isinstance(name, str) and name else f"scenario #{index}"
        here = where.at(label)
        if "name" not in tbl:
            raise here.error("key 'name' is missing; expected a non-empty string, unique in the file")
        if not (isinstance(name, str) and name.strip()):
            raise here.error(f"key 'name' is {show(name)}; expected a non-empty string, unique in the file")
        if name in seen:
            raise here.error(
                f"key 'name' is {show(name)}, the name of scenario #{seen[name]} too; expected a unique name"
            )
        seen[name] = index
        check_keys(here, tbl, SCENARIO_KEYS)
        description(here, tbl)
        own = parse_axes(here, tbl)
        axes = {key: axis.default for key, axis in AXES.items()} | defaults | own
        out.append(Scenario(name, label, axes))
    return out


def parse_exclusions(where: Where, raw: list[dict]) -> list[dict[str, tuple]]:
    out = []
    for index, tbl in enumerate(raw, start=1):
        here = where.at(f"exclude #{index}")
        check_keys(here, tbl, AXIS_KEYS)
        if not tbl:
            raise here.error(
                f"no keys; expected at least one of {', '.join(AXIS_KEYS)} (an empty one drops every case)"
            )
        out.append(parse_axes(here, tbl))
    return out
