"""Scenario files: TOML that expands into a validated, ordered list of `Case`.

A file is a preset (`scenarios/NAME.toml`, loaded by name) or any path ending in `.toml`:

    [preset]                  # optional
    description = "what the preset is for and how long it runs"
    kernel = "triton"         # optional (here or in [defaults]): auto | reference | triton | flashmla;
                              # a run option, not an axis (not in case ids); --kernel overrides it;
                              # a list, e.g. ["flashmla", "triton"]: each case with each kernel, side by side
    repeats = 3               # optional: worker processes per case (default 1); --repeats overrides it
    impl = "mirror"           # optional: or "fastdeploy:PATH[@COMMIT]", or a list (--impl overrides;
                              # a relative PATH is read from the file's directory)

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
    block_size   power of two (16, 32, 64, ...)                        64
    cache_heads  positive integer                                      1
    heads        positive integer: query heads per rank                128
    tp           positive divisor of 128: heads = 128 // tp            (instead of heads)
    topk         positive integer                                      2048 (index_topk)
    seed         integer in [0, 2**63 - 1]                             0
    mode         'hot' | 'cold'                                        'hot'
    graph        'off' | 'on' | false | true                           'off'
    variant      'all' | 'baseline' | 'patched' | 'SCALE+LAYOUT'       'all'

Expansion, per scenario in file order: the scenario's keys override [defaults], which override
the built-in defaults (giving `heads` or `tp` in a scenario overrides both in [defaults]). The
cartesian product runs over the axes in the order of the table above (variant varies fastest, so
the variants of one group sit together), values in the order written. Axes a phase ignores are
normalized (prefill: context_len 0; decode: prefill_len 0). Then every [[exclude]] drops the
cases whose normalized values match all its keys (an exclusion that matches nothing is fine); the
survivors are checked (context_len, prefill_len, num_blocks, estimated memory) so that an exclusion can remove a
combination that would not be valid; then cases with an id already seen are dropped, keeping the
first. Cases with cache_heads > 1 and a `view` layout are kept: the runner records them `invalid`.

Bounds (`dsabench.workload.limits`), checked before anything is expanded: each integer axis at
most what a 512 GiB device could hold of it (batch, context_len, prefill_len, num_blocks,
block_size and cache_heads at most 512 GiB // 656 B = 838042399, one token record each; heads
and topk by the bytes a query head or a selected key takes); at most 10000 combinations per file
before exclusions; each case's estimated memory at most 512 GiB; the file at most 1 MiB.
`dsabench run` then refuses cases whose estimate exceeds the memory of the device it targets
(`dsabench.cli.device_fit`).

Every mistake raises `InputError` with one line naming the file, the table (scenario by name, or
by 1-based index when it has none), the key, the value and what is allowed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dsabench.errors import InputError, quoted
from dsabench.workload.axes import AXIS_KEYS
from dsabench.workload.cases import Case
from dsabench.workload.expand import expand
from dsabench.workload.scenario_file import (
    PRESET_KEYS,
    TOP_LEVEL_KEYS,
    Where,
    check_keys,
    check_regular_file,
    closest,
    description,
    display,
    impl_specs,
    parse_axes,
    parse_exclusions,
    parse_scenarios,
    read,
    run_kernel,
    run_repeats,
    table,
)

# The presets travel inside the package (a wheel carries them as package data); in a checkout
# `suite/dsabench/scenarios` links to the top-level `scenarios/`, their one source.
PRESET_DIR = Path(str(resources.files("dsabench").joinpath("scenarios"))).resolve()


@dataclass(frozen=True)
class ScenarioSet:
    """A loaded file: its cases and what identifies the file's exact contents in a run record."""

    path: Path
    sha256: str
    description: str
    cases: tuple[Case, ...]
    kernel: str | None = None  # the file's `kernel` key ([preset] or [defaults]), a list joined by ','; None: not set
    repeats: int | None = None  # the file's [preset] `repeats`; None: not set (1)
    impls: tuple[str, ...] = ()  # [preset] impl as written; () means the mirror

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class PresetInfo:
    name: str
    path: Path
    description: str
    num_cases: int


def load(path: str | Path) -> ScenarioSet:
    """Read, validate and expand one scenario file."""
    path = Path(path)
    data, doc = read(path)
    where = Where(display(path))
    check_keys(where, doc, TOP_LEVEL_KEYS, what="top-level table")
    preset = table(where, doc, "preset", {})
    check_keys(where.at("[preset]"), preset, PRESET_KEYS)
    about = description(where.at("[preset]"), preset)
    raw_defaults = dict(table(where, doc, "defaults", {}))
    kernel = run_kernel(where, preset, raw_defaults)
    repeats = run_repeats(where.at("[preset]"), preset)
    impls = impl_specs(where.at("[preset]"), preset)
    check_keys(where.at("[defaults]"), raw_defaults, AXIS_KEYS)
    defaults = parse_axes(where.at("[defaults]"), raw_defaults)
    scenarios = parse_scenarios(where, table(where, doc, "scenario", []), defaults)
    exclusions = parse_exclusions(where, table(where, doc, "exclude", []))
    return ScenarioSet(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        description=about,
        cases=expand(where, scenarios, exclusions),
        kernel=kernel,
        repeats=repeats,
        impls=impls,
    )


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def resolve(name_or_path: str) -> Path:
    """A preset name (`smoke`) or a path ending in .toml -> the file's path."""
    if name_or_path.endswith(".toml"):
        path = Path(name_or_path)
        check_regular_file(path, Where(display(path)))
        return path
    names = preset_names()
    if name_or_path in names:
        return PRESET_DIR / f"{name_or_path}.toml"
    raise InputError(
        f"unknown preset {quoted(name_or_path)}; {closest(name_or_path, names)}"
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
