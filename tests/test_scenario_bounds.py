"""Scenario files cannot make validation hang or exhaust memory, and paths that are not files say what they are.

Every refusal is one line, exit 2, naming the bound; `scenarios show` and `run` refuse alike,
before anything is expanded or written. The CLI runs in this process (`dsabench.cli.main.main`),
except where a regression would block forever (a FIFO): there a subprocess with a guard.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsabench.cli.main import main
from dsabench.errors import InputError
from dsabench.workload.cases import Case
from dsabench.workload.limits import DEVICE_BYTES_BOUND, MAX_CASES
from dsabench.workload.scenarios import load
from dsabench.workload.variants import BASELINE, PATCHED

import cli_process

HANG_GUARD_S = 120  # a refusal that never comes fails the test instead of stalling the suite


def dsabench(*args, cwd: Path):
    return cli_process.dsabench(*args, cwd=cwd, timeout=HANG_GUARD_S)


def one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def cli(*argv, cwd: Path, capsys, monkeypatch) -> subprocess.CompletedProcess:
    """`dsabench ARGV` in this process, as a CompletedProcess."""
    monkeypatch.chdir(cwd)
    try:
        code = main(list(map(str, argv)))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out.out, out.err)


def scenario(body: str) -> str:
    return f'[[scenario]]\nname = "s"\n{body}\n'


SWEEP_2000 = "[" + ", ".join(map(str, range(1, 2001))) + "]"


@pytest.mark.parametrize(
    "body, needle",
    [
        ("batch = 1000000000", "key 'batch' is 1000000000; expected a positive integer at most 838042399"),
        ("batch = 18446744073709551616", "key 'batch' is 18446744073709551616; expected a positive integer at most 838042399"),
        (f'batch = {SWEEP_2000}\ncontext_len = {SWEEP_2000}\nvariant = "all"',
         f"expands to 24000000 combinations (2000 batch x 2000 context_len x 6 variant), 24000000 in the file so "
         f"far; expected at most {MAX_CASES} per file"),
        ("num_blocks = 1000000000000", "key 'num_blocks' is 1000000000000; expected a positive integer at most 838042399"),
        ("block_size = 1099511627776", "key 'block_size' is 1099511627776; expected a power of two at most 838042399"),
        ("topk = 1000000000", "key 'topk' is 1000000000; expected a positive integer at most 119304647"),
        ("heads = 1000000000", "key 'heads' is 1000000000; expected a positive integer at most 477218588"),
        ("context_len = 4611686018427387904", "key 'context_len' is 4611686018427387904; expected a non-negative integer at most 838042399"),
        ("seed = 18446744073709551616", "key 'seed' is 18446744073709551616; expected a non-negative integer at most 9223372036854775807"),
        ("batch = 1000\ncontext_len = 1000000", "needs an estimated 1,233.1 GiB of device memory; expected at most 512.0 GiB"),
        ("batch = " + "9" * 5000, "not valid TOML"),
        ("batch = " + "[" * 100_000 + "]" * 100_000, "arrays or tables nested too deeply to read"),
    ],
)
@pytest.mark.parametrize("verb", [["scenarios", "show"], ["run"]])
def test_an_axis_or_product_beyond_what_a_device_could_hold_is_refused_at_once_naming_the_bound(
    tmp_path, capsys, monkeypatch, verb, body, needle
):
    (tmp_path / "x.toml").write_text(scenario(body))
    out = ["--out", "out"] if verb == ["run"] else []
    line = one_error_line(cli(*verb, "x.toml", *out, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch))
    assert line.startswith("dsabench: error: x.toml: ") and needle in line, line
    assert len(line) < 600
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("block_size", [16, 32, 64])
def test_block_sizes_16_32_and_64_are_allowed_and_size_the_cache(tmp_path, block_size):
    path = tmp_path / "x.toml"
    path.write_text(scenario(f'heads = 16\ntopk = 64\ncontext_len = 256\nblock_size = {block_size}\nvariant = "baseline"'))
    (case,) = load(path).cases
    assert case.block_size == block_size and case.num_blocks == -(-257 // block_size)


def test_the_case_count_is_checked_before_exclusions_so_excluding_cannot_hide_an_explosion(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text(scenario(f"batch = {SWEEP_2000}\ncontext_len = [1, 2, 3, 4, 5, 6]") + "[[exclude]]\nbatch = 1\n")
    with pytest.raises(InputError, match=f"expands to 72000 combinations .*expected at most {MAX_CASES} per file"):
        load(path)


def test_a_file_at_the_case_bound_loads(tmp_path):
    path = tmp_path / "x.toml"
    n = MAX_CASES // 6
    path.write_text(scenario(f"heads = 16\ntopk = 64\ncontext_len = 64\nbatch = [{', '.join(map(str, range(1, n + 1)))}]"))
    assert len(load(path).cases) == n * 6


@pytest.mark.parametrize("phase", ["decode", "prefill", "mixed"])
def test_sizes_in_closed_form_equal_the_sums_over_the_requests(phase):
    for batch, context_len, prefill_len, block_size in [(1, 1, 1, 16), (7, 4096, 1024, 64), (33, 100, 3000, 32)]:
        case = Case("s", phase, batch, context_len if phase != "prefill" else 0,
                    prefill_len if phase != "decode" else 0, 1, block_size, 1, 16, 64, BASELINE, False, 0)
        requests = case.requests()
        assert case.num_tokens == sum(new for _, new, _ in requests)
        assert case.blocks_needed() == sum(-(-(cached + new) // block_size) for cached, new, _ in requests)
        assert len(requests) == sum(n for n, *_ in case.request_groups())


def test_a_case_at_the_largest_batch_is_sized_without_building_its_requests():
    case = Case("s", "decode", 838042399, 1, 0, 1, 64, 1, 16, 64, BASELINE, False, 0)
    assert case.blocks_needed() == 838042399 and case.num_tokens == 838042399
    assert case.estimated_bytes() > DEVICE_BYTES_BOUND


def test_a_case_larger_than_the_host_is_refused_by_run_before_any_run_directory_exists(tmp_path, capsys, monkeypatch):
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    blocks = host // (64 * 656) + 1  # the cache alone exceeds the host's memory
    if blocks * 64 * 656 * 2 > DEVICE_BYTES_BOUND:
        pytest.skip("this host holds more than the scenario bound allows a case to need")
    (tmp_path / "x.toml").write_text(scenario(
        f'heads = 16\ntopk = 64\ncontext_len = 64\nnum_blocks = [64, {blocks}]\nvariant = "baseline"'))
    line = one_error_line(cli("run", "x.toml", "--out", "out", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch))
    assert "1 of 2 cases needs more memory than the host's memory (a CPU run) holds" in line
    assert f".n{blocks}." in line and "an estimate, not a measurement" in line and "--filter" in line
    assert not (tmp_path / "out").exists()


def test_the_device_checked_is_the_smallest_targeted_gpu_or_the_host_for_cpu_workers():
    from dsabench.cli.device_fit import host_memory_bytes, target_memory

    gpus = [{"index": 0, "uuid": "GPU-aaaa", "name": "big", "memory_total_bytes": 141 * 2**30},
            {"index": 1, "uuid": "GPU-bbbb", "name": "small", "memory_total_bytes": 80 * 2**30}]
    assert target_memory(("0", "1"), gpus) == (80 * 2**30, "the memory of GPU 1 (small)")
    assert target_memory(("GPU-aaaa",), gpus) == (141 * 2**30, "the memory of GPU GPU-aaaa (big)")
    assert target_memory(("cpu:0",), gpus)[0] == host_memory_bytes()
    assert target_memory(None, []) == (host_memory_bytes(), "the host's memory (a CPU run)")
    assert target_memory(("3",), gpus) is None  # a GPU NVML cannot describe: the worker finds out


@pytest.mark.parametrize("kind, made_by", [
    ("a directory", lambda p: p.mkdir()),
    ("a symbolic link loop", lambda p: p.symlink_to(p.name)),
])
@pytest.mark.parametrize("verb", [["scenarios", "show"], ["run"]])
def test_a_scenario_path_that_is_not_a_regular_file_says_what_it_is(tmp_path, capsys, monkeypatch, verb, kind, made_by):
    made_by(tmp_path / "x.toml")
    line = one_error_line(cli(*verb, "x.toml", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch))
    assert line == f"dsabench: error: x.toml: is {kind}; expected a scenario file ending in .toml"
    with pytest.raises(InputError, match=f"x.toml: is {kind}; expected a scenario file"):
        load(tmp_path / "x.toml")  # as --resume loads the file a manifest names


def test_a_fifo_as_scenario_path_is_refused_without_reading_it(tmp_path):
    os.mkfifo(tmp_path / "x.toml")
    line = one_error_line(dsabench("run", "x.toml", cwd=tmp_path))  # reading it would block forever
    assert line == "dsabench: error: x.toml: is a FIFO; expected a scenario file ending in .toml"
    code = f"from dsabench.workload.scenarios import load; load({str(tmp_path / 'x.toml')!r})"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert "is a FIFO; expected a scenario file" in r.stderr


@pytest.mark.parametrize("text, shown, hidden", [
    ("k" * 100_000 + " = 1", "'" + "k" * 80 + "'… (100000 characters)", "k" * 81),
    ('batch = "' + "v" * 100_000 + '"', "'" + "v" * 80 + "'… (100000 characters)", "v" * 81),
    ('"a\\u0000b\\u001b[31m" = 1', r"unknown key 'a\x00b\x1b[31m'", "\x00"),
])
def test_names_and_values_in_messages_are_escaped_and_cut_short(tmp_path, text, shown, hidden):
    path = tmp_path / "x.toml"
    path.write_text(scenario(text))
    with pytest.raises(InputError) as info:
        load(path)
    message = str(info.value)
    assert shown in message and hidden not in message and len(message) < 600
    assert message.isprintable()


def test_a_control_character_in_a_scenario_name_is_escaped(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('[[scenario]]\nname = "a\\u0000\\u001b[2J"\nbatch = 0\n')
    with pytest.raises(InputError, match=r"scenario 'a\\x00\\x1b\[2J': key 'batch' is 0") as info:
        load(path)
    assert str(info.value).isprintable()


def test_a_case_that_fits_once_but_not_once_per_impl_is_refused_when_the_run_holds_two_impls(tmp_path, capsys,
                                                                                             monkeypatch):
    """Each impl of a run builds and keeps its own cache while a group is timed in rounds, so two
    impls need the cache twice: refused up front, nothing allocated, nothing written."""
    from dsabench.workload.limits import needed_bytes

    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    blocks = int(0.6 * host) // (64 * 656)  # the cache alone: 60% of the host's memory
    if blocks * 64 * 656 * 2 > DEVICE_BYTES_BOUND:
        pytest.skip("this host holds more than the scenario bound allows a case to need")
    case = Case("s", "decode", 1, 64, 0, blocks, 64, 1, 16, 64, PATCHED, False, 0)  # the view: no copy
    assert needed_bytes(case) <= host < needed_bytes(case, 2)  # fits once, not once per impl
    assert needed_bytes(case, 2) == case.estimated_bytes() + case.cache_bytes()
    (tmp_path / "x.toml").write_text(scenario(
        f'heads = 16\ntopk = 64\ncontext_len = 64\nnum_blocks = {blocks}\nvariant = "patched"'))
    line = one_error_line(cli("run", "x.toml", "--impl", "mirror", "--impl", "mirror+inject=0", "--out", "out",
                              cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch))
    assert "1 of 1 cases needs more memory than the host's memory (a CPU run) holds" in line
    assert "2 impls timed together, each with its own cache" in line
    assert not (tmp_path / "out").exists()


def test_impls_hold_their_inputs_at_once_only_where_they_are_timed_in_rounds():
    from dsabench.cli.device_fit import held_at_once

    eager, graph = (Case("s", "decode", 1, 64, 0, 64, 64, 1, 16, 64, PATCHED, g, 0) for g in (False, True))
    planned = [(eager, "mirror", ""), (eager, "fastdeploy:abc", ""), (graph, "mirror", ""), (graph, "fastdeploy:abc", "")]
    held = {(c.graph, n) for c, n in held_at_once(planned, interleave=True)}
    assert held == {(False, 2), (True, 1)}  # a graph case is a work item of its own
    assert {n for _, n in held_at_once(planned, interleave=False)} == {1}
