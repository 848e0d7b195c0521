"""Hostile result files: what is not a regular file, or is beyond the schema's bounds, gets one line
naming the file (and line, and key), exit 2, in every reading verb; never a hang, a traceback or
memory without bound.

Each hostile file is made on a run written by the real writer, then every verb runs through the
CLI's own entry point. A FIFO would block a reader forever, so an alarm fails the test instead.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from dsabench.cli.main import main
from dsabench.store.files import MAX_CASES_BYTES, MAX_MANIFEST_BYTES
from dsabench.store.schema import INT_RANGE, MAX_DEPTH, MAX_SAMPLE_MS, MAX_SAMPLES

from analysis.test_damaged_results import _runs  # a base and a candidate run, each of two cases


@pytest.fixture(autouse=True)
def no_hang():
    """A reader that blocks (a FIFO) or reads without end (/dev/zero) fails here, not forever."""
    def stuck(signum, frame):
        raise AssertionError("a reading verb blocked or ran on for 60 s")
    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _verbs(base: Path, cand: Path, out: Path) -> dict[str, list[str]]:
    return {
        "compare": ["compare", str(cand), str(base)],
        "compare --history": ["compare", str(base), str(cand), "--history", str(base)],
        "export": ["export", str(base), "--parquet", str(out / "x.parquet")],
        "history": ["history", str(base), str(cand)],
        "report": ["report", str(base), "--out", str(out / "report")],
        "dashboard": ["dashboard", str(base), str(cand), "--out", str(out / "site"), "--no-change-points"],
    }


def _refused_everywhere(base: Path, cand: Path, out: Path, capsys, *needles: str) -> None:
    for verb, argv in _verbs(base, cand, out).items():
        code = main(argv)
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == 2, (verb, err)
        assert len(lines) == 1 and "Traceback" not in err, (verb, err)
        assert all(n in lines[0] for n in needles), (verb, lines[0])
    assert not (out / "site").exists() and not (out / "x.parquet").exists()


# ------------------------------------------------------------------------- not regular files


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def _loop(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.name)  # points at itself


def _huge(limit: int):
    def grow(path: Path) -> None:
        with open(path, "r+b") as f:
            f.truncate(limit + 1)  # sparse: refused by its size, never read
    return grow


NOT_REGULAR = {
    "manifest.json as a FIFO": ("manifest.json", _fifo, "is a FIFO (named pipe); expected a run manifest"),
    "cases.jsonl as a FIFO": ("cases.jsonl", _fifo, "is a FIFO (named pipe); expected a file of JSON lines"),
    "cases.jsonl -> /dev/zero": ("cases.jsonl", _dev_zero, "is a character device; expected a file of JSON lines"),
    "manifest.json -> /dev/zero": ("manifest.json", _dev_zero, "is a character device; expected a run manifest"),
    "cases.jsonl a symlink loop": ("cases.jsonl", _loop, "is a symbolic link loop; expected a file of JSON lines"),
    "manifest.json a symlink loop": ("manifest.json", _loop, "is a symbolic link loop; expected a run manifest"),
    "cases.jsonl over its bound": ("cases.jsonl", _huge(MAX_CASES_BYTES),
                                   f"is {MAX_CASES_BYTES + 1} bytes; expected a file of JSON lines, one record a "
                                   f"line, at most {MAX_CASES_BYTES} bytes"),
    "manifest.json over its bound": ("manifest.json", _huge(MAX_MANIFEST_BYTES),
                                     f"is {MAX_MANIFEST_BYTES + 1} bytes; expected a run manifest (a JSON object), at "
                                     f"most {MAX_MANIFEST_BYTES} bytes"),
}


@pytest.mark.parametrize("kind", sorted(NOT_REGULAR))
def test_a_run_file_that_is_not_a_regular_file_of_bounded_size_is_refused_in_one_line_by_every_verb(
        kind, builder, tmp_path, capsys):  # fmt: skip
    name, make, said = NOT_REGULAR[kind]
    base, cand = _runs(builder)
    make(base / name)
    _refused_everywhere(base, cand, tmp_path / "out", capsys, f"{base / name}: {said}")


# ------------------------------------------------------------------------- the schema's bounds


def _edit_record(run: Path, change) -> None:
    lines = (run / "cases.jsonl").read_text().splitlines()
    lines[0] = change(json.loads(lines[0]))
    (run / "cases.jsonl").write_text("\n".join(lines) + "\n")


def _nested(levels: int):
    return lambda doc: json.dumps(doc).replace('"device": {', '"device": {"n": ' + "[" * levels + "]" * levels + ", ", 1)


def _first_sample(text: str):
    def change(doc):
        doc["timing"]["samples_ms"][0] = 12345.678
        return json.dumps(doc).replace("12345.678", text)
    return change


def _samples(n: int):
    def change(doc):
        doc["timing"]["samples_ms"] = [1.0] * n
        return json.dumps(doc)
    return change


def _device_int(digits: int):
    return lambda doc: json.dumps(doc).replace('"device": {', '"device": {"n": ' + "9" * digits + ", ", 1)


def _chunks(first: dict):
    """The record's samples as two chunks, the first with `first`'s fields (the second makes up the count)."""
    def change(doc):
        n = len(doc["timing"]["samples_ms"])
        one = {"round": 0, "samples": 1, "start_s": 1.0, "host_ms": 1.0, **first}
        doc["timing"]["chunks"] = [one, {"round": 1, "samples": n - one["samples"], "start_s": 2.0, "host_ms": 1.0}]
        return json.dumps(doc)
    return change


BEYOND = {  # damage of line 1 -> what its one line says after "cases.jsonl:1: "
    "a record nested 1,000 deep": (_nested(1000), "key 'device[...]", f"nested deeper than {MAX_DEPTH} levels"),
    "a record nested one level too deep": (_nested(MAX_DEPTH), "key 'device[...]", f"nested deeper than {MAX_DEPTH} levels"),
    "a 5,000-digit integer in samples_ms": (_first_sample("9" * 5000), "key 'timing.samples_ms[0]'", "number out of range"),
    "a 20-digit integer in a free-form value": (_device_int(20), "key 'device[...]'", f"expected an integer from {INT_RANGE[0]}"),
    "a 5,000-digit integer in a free-form value": (_device_int(5000), "key 'device[...]'", "integer out of range"),
    "a sample of 1e308": (_first_sample("1e308"), "key 'timing': samples_ms[0] is 1e+308",
                          f"<= {MAX_SAMPLE_MS:.0f} ms"),
    "a sample of 0": (_first_sample("0.0"), "key 'timing': samples_ms[0] is 0.0", "expected a finite latency > 0 ms"),
    "a negative sample": (_first_sample("-1.5"), "key 'timing': samples_ms[0] is -1.5", "> 0 ms"),
    "2,000,000 samples": (_samples(2_000_000), "key 'timing': samples_ms holds 2000000 samples",
                          f"expected at most {MAX_SAMPLES}"),
    "a chunk of -2 samples": (_chunks({"samples": -2}), "key 'timing.chunks[0].samples'", "expected an integer >= 1"),
    "a chunk in round -1": (_chunks({"round": -1}), "key 'timing.chunks[0].round'", "expected an integer >= 0"),
    "a chunk of negative host time": (_chunks({"host_ms": -5.0}), "key 'timing.chunks[0].host_ms'",
                                      "expected a number >= 0"),
}


@pytest.mark.parametrize("kind", sorted(BEYOND))
def test_a_record_beyond_a_bound_of_the_schema_is_refused_naming_file_line_key_and_bound(kind, builder, tmp_path, capsys):
    change, key, said = BEYOND[kind]
    base, cand = _runs(builder)
    _edit_record(base, change)
    _refused_everywhere(base, cand, tmp_path / "out", capsys, f"{base / 'cases.jsonl'}:1: {key}", said)


def test_a_manifest_nested_too_deep_is_refused_naming_its_key(builder, capsys):
    base, cand = _runs(builder)
    doc = json.loads((base / "manifest.json").read_text())
    (base / "manifest.json").write_text(_deep_json(doc))
    assert main(["compare", str(base), str(cand)]) == 2
    err = capsys.readouterr().err
    assert f"{base / 'manifest.json'}: key 'impls[0][...]" in err and f"nested deeper than {MAX_DEPTH} levels" in err


def _deep_json(doc: dict) -> str:
    """json.dumps cannot write 2,000 levels (its own recursion limit): the nesting is spliced in as text."""
    doc["impls"] = [{"x": "@DEEP@"}]
    return json.dumps(doc).replace('"@DEEP@"', "[" * 2000 + "]" * 2000)


def test_values_at_the_bounds_load_and_compare(builder, capsys):
    base, cand = _runs(builder)
    _edit_record(base, lambda doc: json.dumps({**doc, "device": {**doc["device"], "n": json.loads(
        "[" * (MAX_DEPTH - 1) + str(INT_RANGE[1]) + "]" * (MAX_DEPTH - 1))},
        "timing": {**doc["timing"], "samples_ms": [MAX_SAMPLE_MS] + [1.0] * (MAX_SAMPLES - 1)}}))
    assert main(["compare", str(base), str(cand)]) == 0, capsys.readouterr().err
    assert main(["report", str(base), "--out", str(base.parent / "report")]) == 0, capsys.readouterr().err
