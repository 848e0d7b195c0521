"""Scenario files: presets load, expansion is deterministic, and every mistake names its place."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from dsabench.errors import InputError
from dsabench.present.cases_table import format_cases_table
from dsabench.workload.scenarios import (
    PRESET_DIR,
    ScenarioSet,
    list_presets,
    load,
    load_named,
    resolve,
)
from dsabench.workload.variants import ALL_VARIANTS, BASELINE, PATCHED

SMOKE_CASES = 42

TINY = """
[defaults]
heads = 16
topk = 64
"""


def write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def scenario(body: str, name: str = "s") -> str:
    return f'{TINY}\n[[scenario]]\nname = "{name}"\n{body}\n'


def error_of(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path)) or message.startswith(path.name)
    return message


# --- Presets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["smoke", "pr", "nightly"])
def test_each_preset_loads_with_unique_ids_and_enough_blocks(name):
    loaded = load_named(name)
    assert loaded.cases
    assert len({c.id for c in loaded.cases}) == len(loaded.cases)
    assert all(c.num_blocks >= c.blocks_needed() for c in loaded.cases)
    assert loaded.description


def test_list_presets_names_every_file_in_the_preset_dir_with_its_case_count():
    infos = {p.name: p for p in list_presets()}
    assert set(infos) == {p.stem for p in PRESET_DIR.glob("*.toml")} >= {"smoke", "pr", "nightly"}
    assert infos["smoke"].num_cases == SMOKE_CASES
    assert infos["smoke"].path == PRESET_DIR / "smoke.toml"


def test_smoke_has_the_expected_count_and_covers_every_variant_phase_graph_and_the_view_refusal():
    cases = load_named("smoke").cases
    assert len(cases) == SMOKE_CASES
    assert {c.variant for c in cases} == set(ALL_VARIANTS)
    assert {c.phase for c in cases} == {"decode", "prefill", "mixed"}
    assert {c.graph for c in cases} == {False, True}
    assert {c.mode for c in cases} == {"hot", "cold"}
    two_heads = [c for c in cases if c.cache_heads > 1]
    assert sorted(c.variant.name for c in two_heads) == ["baseline", "patched"]


def test_smoke_is_cpu_sized():
    for c in load_named("smoke").cases:
        assert c.heads <= 16 and c.topk <= 64 and c.num_blocks <= 64 and c.batch <= 4
        assert c.estimated_bytes() < 256 * 2**20


def test_pr_fits_one_80gb_gpu_and_sweeps_the_cache_with_all_variants_in_both_graph_modes():
    cases = load_named("pr").cases
    assert 40 <= len(cases) <= 70
    assert max(c.estimated_bytes() for c in cases) < 70 * 2**30
    decode = [c for c in cases if c.phase == "decode"]
    assert {c.num_blocks for c in decode} == {8192, 65536, 262144}
    assert {c.variant for c in decode} == set(ALL_VARIANTS)
    assert {c.graph for c in decode} == {False, True}
    assert {c.heads for c in cases} == {128} and {c.topk for c in cases} == {2048}
    assert {c.variant for c in cases if c.phase != "decode"} == {BASELINE, PATCHED}


def test_nightly_reaches_half_a_million_blocks_and_heads_16_64_128_within_80gb():
    cases = load_named("nightly").cases
    assert max(c.num_blocks for c in cases) == 524288
    assert {c.heads for c in cases} == {16, 64, 128}
    assert max(c.estimated_bytes() for c in cases) < 70 * 2**30
    assert not [c for c in cases if c.phase == "prefill" and c.batch == 4 and c.prefill_len == 4096]


def test_resolve_accepts_a_preset_name_or_a_toml_path(tmp_path):
    assert resolve("smoke") == PRESET_DIR / "smoke.toml"
    path = write(tmp_path, scenario(""))
    assert resolve(str(path)) == path


def test_resolve_of_an_unknown_preset_lists_the_presets_and_suggests_the_closest():
    with pytest.raises(InputError, match=r"unknown preset 'smok'; did you mean 'smoke'\?.*nightly, pr, (\w+, )*smoke"):
        resolve("smok")


def test_resolve_of_a_missing_toml_path_names_it(tmp_path):
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(InputError, match=re.escape(missing) + ": no such scenario file"):
        resolve(missing)


def test_load_records_the_sha256_of_the_file_bytes_and_the_description(tmp_path):
    text = '[preset]\ndescription = "tiny"\n' + scenario("")
    path = write(tmp_path, text)
    loaded = load(path)
    assert isinstance(loaded, ScenarioSet)
    assert loaded.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert loaded.description == "tiny"
    assert loaded.path == path and loaded.name == "x"


# --- Expansion --------------------------------------------------------------------------------


def test_defaults_fill_every_axis_and_num_blocks_defaults_to_the_cases_minimum(tmp_path):
    (case,) = load(write(tmp_path, '[[scenario]]\nname = "d"\nvariant = "baseline"\n')).cases
    assert (case.phase, case.batch, case.context_len, case.prefill_len) == ("decode", 1, 4096, 0)
    assert (case.block_size, case.cache_heads, case.heads, case.topk) == (64, 1, 128, 2048)
    assert (case.graph, case.seed, case.mode) == (False, 0, "hot")
    assert case.num_blocks == case.blocks_needed() == 65
    assert case.scenario == "d"


def test_variant_all_expands_to_the_six_variants_and_is_the_default(tmp_path):
    cases = load(write(tmp_path, scenario("context_len = 64"))).cases
    assert tuple(c.variant for c in cases) == ALL_VARIANTS


def test_expansion_is_a_cartesian_product_in_a_fixed_axis_order_with_variant_fastest(tmp_path):
    body = 'batch = [4, 1]\ncontext_len = 64\ngraph = ["on", "off"]\nvariant = ["patched", "baseline"]'
    path = write(tmp_path, scenario(body))
    cases = load(path).cases
    got = [(c.batch, c.graph, c.variant.name) for c in cases]
    assert got == [
        (4, True, "patched"),
        (4, True, "baseline"),
        (4, False, "patched"),
        (4, False, "baseline"),
        (1, True, "patched"),
        (1, True, "baseline"),
        (1, False, "patched"),
        (1, False, "baseline"),
    ]
    assert [c.id for c in load(path).cases] == [c.id for c in cases]
    assert len({c.id for c in cases}) == len(cases)


def test_scenario_keys_override_defaults_and_scenarios_keep_file_order(tmp_path):
    text = (
        '[defaults]\nheads = 16\ntopk = 64\nbatch = 2\ncontext_len = 64\nvariant = "baseline"\n'
        '[[scenario]]\nname = "b"\nbatch = 3\n'
        '[[scenario]]\nname = "a"\n'
    )
    cases = load(write(tmp_path, text)).cases
    assert [(c.scenario, c.batch) for c in cases] == [("b", 3), ("a", 2)]


def test_exclusion_drops_only_cases_matching_every_key(tmp_path):
    text = scenario(
        'phase = ["decode", "prefill"]\ncontext_len = 64\nprefill_len = 64\ngraph = ["off", "on"]\nvariant = "baseline"'
    )
    text += '[[exclude]]\ngraph = "on"\nphase = "prefill"\n'
    cases = load(write(tmp_path, text)).cases
    assert [(c.phase, c.graph) for c in cases] == [("decode", False), ("decode", True), ("prefill", False)]


def test_exclusion_values_may_be_lists_and_tp_and_may_match_nothing(tmp_path):
    text = scenario('batch = [1, 2, 3]\ncontext_len = 64\nvariant = "baseline"\nheads = 128')
    text += "[[exclude]]\nbatch = [1, 3]\n[[exclude]]\ntp = 1\nbatch = 99\n[[exclude]]\nphase = 'mixed'\n"
    assert [c.batch for c in load(write(tmp_path, text)).cases] == [2]


def test_exclusion_can_remove_a_combination_with_too_few_blocks(tmp_path):
    text = scenario('batch = [1, 4]\ncontext_len = 256\nnum_blocks = 8\nvariant = "baseline"')
    with pytest.raises(InputError, match="num_blocks"):
        load(write(tmp_path, text))
    text += "[[exclude]]\nbatch = 4\n"
    assert [c.batch for c in load(write(tmp_path, text, "y.toml")).cases] == [1]


def test_ignored_axes_are_normalized_to_zero_and_the_duplicates_dropped(tmp_path):
    text = scenario(
        'phase = ["prefill", "decode"]\ncontext_len = [64, 128]\nprefill_len = [32, 16]\nvariant = "baseline"'
    )
    cases = load(write(tmp_path, text)).cases
    got = [(c.phase, c.context_len, c.prefill_len) for c in cases]
    assert got == [("prefill", 0, 32), ("prefill", 0, 16), ("decode", 64, 0), ("decode", 128, 0)]


def test_a_case_repeated_by_a_later_scenario_is_kept_once_under_the_first_name(tmp_path):
    body = 'context_len = 64\nvariant = "baseline"'
    text = scenario(body, "first") + f'[[scenario]]\nname = "second"\n{body}\nbatch = [1, 2]\n'
    cases = load(write(tmp_path, text)).cases
    assert [(c.scenario, c.batch) for c in cases] == [("first", 1), ("second", 2)]


def test_exclusion_matches_normalized_values(tmp_path):
    text = scenario('phase = ["decode", "prefill"]\ncontext_len = 64\nprefill_len = 64\nvariant = "baseline"')
    text += "[[exclude]]\ncontext_len = 0\n"
    assert [c.phase for c in load(write(tmp_path, text)).cases] == ["decode"]


def test_tp_means_heads_128_over_tp(tmp_path):
    text = scenario('tp = [1, 2, 8]\ncontext_len = 64\nvariant = "baseline"')
    assert [c.heads for c in load(write(tmp_path, text)).cases] == [128, 64, 16]


def test_scenario_heads_override_a_tp_given_in_defaults(tmp_path):
    text = '[defaults]\ntp = 8\ntopk = 64\n[[scenario]]\nname = "s"\nheads = 4\ncontext_len = 64\nvariant = "baseline"'
    assert [c.heads for c in load(write(tmp_path, text)).cases] == [4]


def test_heads_and_tp_together_name_both_values(tmp_path):
    path = write(tmp_path, scenario("heads = 64\ntp = 2"))
    assert re.search(r"scenario 's': key 'heads' is 64 and key 'tp' is 2; expected exactly one", error_of(path))


def test_tp_that_does_not_divide_128_is_rejected(tmp_path):
    message = error_of(write(tmp_path, scenario("tp = 3")))
    assert "key 'tp' is 3; expected a positive divisor of 128" in message


def test_graph_accepts_on_off_and_booleans(tmp_path):
    text = scenario('graph = ["on", false, true, "off"]\ncontext_len = 64\nvariant = "baseline"')
    assert [c.graph for c in load(write(tmp_path, text)).cases] == [True, False]


def test_view_of_a_multi_head_cache_is_kept_for_the_runner_to_refuse(tmp_path):
    text = scenario('cache_heads = 2\ncontext_len = 64\nvariant = "patched"')
    (case,) = load(write(tmp_path, text)).cases
    assert case.cache_heads == 2 and case.variant.layout == "view"


def test_format_cases_table_has_a_row_per_case_human_sizes_and_a_total():
    cases = load_named("pr").cases
    table = format_cases_table(cases)
    lines = table.splitlines()
    assert len(lines) == len(cases) + 3  # header, rule, a row per case, total
    assert lines[0].split()[:3] == ["id", "phase", "batch"] and set(lines[1]) <= {"-", " "}
    assert cases[0].id in lines[2]
    assert "GiB" in table and "MiB" in table
    assert lines[-1].startswith(f"total: {len(cases)} cases")


# --- Errors -----------------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "absent.toml"
    assert "absent.toml: no such scenario file" in error_of(path)


def test_malformed_toml_gives_the_parsers_line_and_column(tmp_path):
    path = write(tmp_path, '[[scenario]]\nname = "s"\nbatch = = 4\n')
    assert re.search(r"x\.toml: not valid TOML: .*line 3, column \d+", error_of(path))


def test_unknown_top_level_table_names_it_and_lists_the_allowed_tables(tmp_path):
    path = write(tmp_path, scenario("") + "[scenarios]\nbatch = 1\n")
    message = error_of(path)
    assert "unknown top-level table 'scenarios' = a table; did you mean 'scenario'?" in message
    assert "preset, defaults, scenario, exclude" in message


def test_a_top_level_axis_is_pointed_to_defaults(tmp_path):
    path = write(tmp_path, "batch = 4\n" + scenario(""))
    assert "unknown top-level table 'batch' = 4; axes go in [defaults]" in error_of(path)


def test_unknown_key_names_file_scenario_key_and_closest_allowed_key(tmp_path):
    path = write(tmp_path, scenario("bach = 4", "decode-sweep"))
    message = error_of(path)
    assert "x.toml: scenario 'decode-sweep': unknown key 'bach' = 4; did you mean 'batch'?" in message
    assert "allowed keys: name, description, phase, batch" in message


def test_unknown_key_in_defaults_and_preset_names_the_table(tmp_path):
    assert "[defaults]: unknown key 'topk_' = 1; did you mean 'topk'?" in error_of(
        write(tmp_path, '[defaults]\ntopk_ = 1\n[[scenario]]\nname = "s"\n')
    )
    assert "[preset]: unknown key 'descripton' = 'x'; did you mean 'description'?" in error_of(
        write(tmp_path, '[preset]\ndescripton = "x"\n' + scenario(""), "y.toml")
    )


def test_negative_batch_names_file_scenario_key_value_and_what_is_allowed(tmp_path):
    path = write(tmp_path, scenario("batch = -1", "decode-sweep"))
    assert error_of(path).endswith(
        "x.toml: scenario 'decode-sweep': key 'batch' is -1; expected a positive integer or a list of them"
    )


def test_a_boolean_is_not_an_integer(tmp_path):
    assert "key 'batch' is true; expected a positive integer" in error_of(write(tmp_path, scenario("batch = true")))


@pytest.mark.parametrize(
    "body, expected",
    [
        ('batch = "4"', "key 'batch' is '4'; expected a positive integer"),
        ("batch = 4.0", "key 'batch' is 4.0; expected a positive integer"),
        ("batch = [1, 0]", r"key 'batch' is \[1, 0\] \(item 0\); expected a positive integer"),
        ("batch = [[1, 2]]", r"key 'batch' is \[\[1, 2\]\] \(item \[1, 2\]\)"),
        ("block_size = 48", "key 'block_size' is 48; expected a power of two"),
        ("cache_heads = 0", "key 'cache_heads' is 0; expected a positive integer"),
        ("heads = 0", "key 'heads' is 0; expected a positive integer"),
        ("topk = -5", "key 'topk' is -5; expected a positive integer"),
        ("seed = -1", "key 'seed' is -1; expected a non-negative integer"),
        ('phase = "encode"', "key 'phase' is 'encode'; expected one of 'decode', 'prefill', 'mixed'"),
        ('mode = "warm"', "key 'mode' is 'warm'; expected one of 'hot', 'cold'"),
        ('graph = "yes"', "key 'graph' is 'yes'; expected 'off', 'on', false or true"),
        ("graph = 1", "key 'graph' is 1; expected 'off', 'on', false or true"),
        (
            'variant = "tensor+foo"',
            r"key 'variant' is 'tensor\+foo'; expected 'all', 'baseline', 'patched' or SCALE\+LAYOUT",
        ),
        ('variant = "Baseline"', "key 'variant' is 'Baseline'; expected 'all'"),
        ("context_len = -1", "key 'context_len' is -1; expected a non-negative integer"),
    ],
)
def test_wrong_type_or_out_of_range_value_names_key_value_and_allowed(tmp_path, body, expected):
    message = error_of(write(tmp_path, scenario(body)))
    assert re.search(r"x\.toml: scenario 's': " + expected, message), message


def test_empty_list_is_rejected(tmp_path):
    message = error_of(write(tmp_path, scenario("num_blocks = []")))
    assert "scenario 's': key 'num_blocks' is []; expected a positive integer or a non-empty list of them" in message


def test_context_len_zero_is_rejected_for_decode_but_ignored_for_prefill(tmp_path):
    message = error_of(write(tmp_path, scenario('context_len = 0\nvariant = "baseline"')))
    assert "scenario 's': key 'context_len' is 0 with phase 'decode'; expected a positive integer" in message
    ok = scenario('phase = "prefill"\ncontext_len = 0\nprefill_len = 8\nvariant = "baseline"')
    assert len(load(write(tmp_path, ok, "y.toml")).cases) == 1


def test_prefill_len_zero_is_rejected_for_mixed(tmp_path):
    message = error_of(write(tmp_path, scenario('phase = "mixed"\ncontext_len = 8\nprefill_len = 0')))
    assert "key 'prefill_len' is 0 with phase 'mixed'; expected a positive integer" in message


def test_too_few_num_blocks_names_scenario_values_and_minimum(tmp_path):
    path = write(tmp_path, scenario('batch = 4\ncontext_len = 256\nnum_blocks = [64, 16]', "decode-sweep"))
    message = error_of(path)
    assert (
        "x.toml: scenario 'decode-sweep': key 'num_blocks' is 16 but phase 'decode', batch 4, context_len 256, "
        "block_size 64 needs 20 blocks; expected num_blocks >= 20"
    ) in message


def test_too_few_num_blocks_for_mixed_counts_the_prefill_request(tmp_path):
    path = write(tmp_path, scenario('phase = "mixed"\nbatch = 2\ncontext_len = 128\nprefill_len = 65\nnum_blocks = 7'))
    assert "prefill_len 65, block_size 64 needs 8 blocks; expected num_blocks >= 8" in error_of(path)


def test_duplicate_scenario_names_name_both(tmp_path):
    path = write(tmp_path, scenario("", "same") + '[[scenario]]\nname = "same"\n')
    message = error_of(path)
    assert "scenario 'same': key 'name' is 'same', the name of scenario #1 too; expected a unique name" in message


def test_a_scenario_without_a_name_is_named_by_its_index(tmp_path):
    path = write(tmp_path, scenario("") + "[[scenario]]\nbatch = 2\n")
    assert "x.toml: scenario #2: key 'name' is missing; expected a non-empty string" in error_of(path)


def test_a_scenario_name_must_be_a_non_empty_string(tmp_path):
    assert "scenario #1: key 'name' is 3; expected a non-empty string" in error_of(
        write(tmp_path, "[[scenario]]\nname = 3\n")
    )


def test_a_file_without_scenarios_is_rejected(tmp_path):
    assert "x.toml: no [[scenario]] tables; expected at least one" in error_of(write(tmp_path, TINY))


def test_a_single_scenario_table_asks_for_double_brackets(tmp_path):
    path = write(tmp_path, '[scenario]\nname = "s"\n')
    assert "key 'scenario' is a table; expected an array of tables, written [[scenario]]" in error_of(path)


def test_exclude_key_that_is_not_an_axis_is_rejected_with_the_closest_axis(tmp_path):
    path = write(tmp_path, scenario("context_len = 64") + "[[exclude]]\nname = 's'\n[[exclude]]\n")
    assert "x.toml: exclude #1: unknown key 'name' = 's'" in error_of(path)
    path = write(tmp_path, scenario("context_len = 64") + "[[exclude]]\ngrph = 'on'\n", "y.toml")
    assert "exclude #1: unknown key 'grph' = 'on'; did you mean 'graph'?" in error_of(path)


def test_exclude_values_are_checked_like_axis_values(tmp_path):
    path = write(tmp_path, scenario("context_len = 64") + "[[exclude]]\ngraph = 'maybe'\n")
    assert "exclude #1: key 'graph' is 'maybe'; expected 'off', 'on', false or true" in error_of(path)


def test_an_empty_exclude_is_rejected_because_it_would_drop_everything(tmp_path):
    path = write(tmp_path, scenario("context_len = 64") + "[[exclude]]\n")
    assert "exclude #1: no keys; expected at least one of phase" in error_of(path)


def test_excluding_every_case_is_an_error(tmp_path):
    path = write(tmp_path, scenario("context_len = 64") + "[[exclude]]\nphase = 'decode'\n")
    assert "every case is excluded" in error_of(path)


def test_a_non_string_description_is_rejected(tmp_path):
    path = write(tmp_path, "[preset]\ndescription = 1\n" + scenario(""))
    assert "[preset]: key 'description' is 1; expected a string" in error_of(path)


def test_non_utf8_file_is_rejected(tmp_path):
    path = tmp_path / "x.toml"
    path.write_bytes(b'[[scenario]]\nname = "\xff"\n')
    assert "not UTF-8" in error_of(path)
