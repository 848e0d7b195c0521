"""Damaged results: one line naming the file, the line, the key and what was expected; exit 2;
never a traceback, in every analysis verb (compare, export, history, report, dashboard).

Each damage is made on a run written by the real writer, then every verb runs through the CLI's
own entry point (`dsabench.cli.main.main`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsabench.cli.main import main
from dsabench.store.schema import SCHEMA_VERSION
from dsabench.workload.variants import PATCHED


def _edit_manifest(change):
    def damage(run: Path) -> None:
        doc = json.loads((run / "manifest.json").read_text())
        (run / "manifest.json").write_text(json.dumps(change(doc)))
    return damage


def _edit_record(change, line: int = 1):
    def damage(run: Path) -> None:
        lines = (run / "cases.jsonl").read_text().splitlines()
        doc = json.loads(lines[line - 1])
        new = change(doc)
        lines[line - 1] = new if isinstance(new, str) else json.dumps(new)
        (run / "cases.jsonl").write_text("\n".join(lines) + "\n")
    return damage


def _set(path: str, value):
    """A change that sets a dotted key (e.g. "timing.samples_ms") to value."""
    def change(doc):
        *parents, last = path.split(".")
        d = doc
        for key in parents:
            d = d[key]
        d[last] = value
        return doc
    return change


def _samples(text: str):
    """A record line whose first sample is the literal `text` (NaN, Infinity, 1e400)."""
    def change(doc):
        doc["timing"]["samples_ms"][0] = 12345.678
        return json.dumps(doc).replace("12345.678", text)
    return change


def _cases_dir(run: Path) -> None:
    (run / "cases.jsonl").unlink()
    (run / "cases.jsonl").mkdir()


def _bad_utf8(run: Path) -> None:
    lines = (run / "cases.jsonl").read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"message": ""', b'"message": "\xff\xfe"')
    (run / "cases.jsonl").write_bytes(b"\n".join(lines))


def _bad_utf8_manifest(run: Path) -> None:
    raw = (run / "manifest.json").read_bytes()
    (run / "manifest.json").write_bytes(raw.replace(b'"preset": "smoke"', b'"preset": "\xc3\x28"'))


# (damage, what the one line must name: the file (with line), the key, what was expected)
DAMAGES = {
    "manifest is a list": (_edit_manifest(lambda d: [d]), "manifest.json: is a JSON list", "expected a run manifest"),
    "record is a list": (_edit_record(lambda d: [d]), "cases.jsonl:1: is a JSON list", "expected a record"),
    "samples_ms of ['abc']": (_edit_record(_set("timing.samples_ms", ["abc"])), "cases.jsonl:1: key 'timing.samples_ms[0]'", "expected float, got str"),
    "samples_ms of 5": (_edit_record(_set("timing.samples_ms", 5)), "cases.jsonl:1: key 'timing.samples_ms'", "expected array, got int"),
    "timing as a string": (_edit_record(_set("timing", "fast")), "cases.jsonl:1: key 'timing'", "expected object | null, got str"),
    "device as a string": (_edit_record(_set("device", "gpu")), "cases.jsonl:1: key 'device'", "expected object, got str"),
    "case_id as a dict": (_edit_record(_set("case_id", {"a": 1})), "cases.jsonl:1: key 'case_id'", "expected str, got object"),
    "phases_ms as a number": (_edit_record(_set("phases_ms", 3.5)), "cases.jsonl:1: key 'phases_ms'", "expected object, got float"),
    "git as a string": (_edit_manifest(_set("git", "abc123")), "manifest.json: key 'git'", "expected object, got str"),
    "cases.jsonl as a directory": (_cases_dir, "cases.jsonl: is a directory", "expected a file of JSON lines"),
    "invalid UTF-8 in a record": (_bad_utf8, "cases.jsonl:2: not UTF-8 text", "expected a record"),
    "invalid UTF-8 in the manifest": (_bad_utf8_manifest, "manifest.json: not UTF-8 text", "expected a run manifest"),
    "NaN in samples": (_edit_record(_samples("NaN")), "cases.jsonl:1: key 'timing'", "samples_ms[0] is nan; expected a finite latency > 0 ms"),
    "Infinity in samples": (_edit_record(_samples("Infinity")), "cases.jsonl:1: key 'timing'", "samples_ms[0] is inf; expected a finite latency > 0 ms"),
    "1e400 in samples": (_edit_record(_samples("1e400")), "cases.jsonl:1: key 'timing'", "samples_ms[0] is inf; expected a finite latency > 0 ms"),
    "manifest schema 0": (_edit_manifest(_set("schema", 0)), "manifest.json: key 'schema' is 0", f"expected an integer schema version from 1 to {SCHEMA_VERSION}"),
    "manifest schema true": (_edit_manifest(_set("schema", True)), "manifest.json: key 'schema' is True", "expected an integer schema version"),
    "record schema true": (_edit_record(_set("schema", True)), "cases.jsonl:1: key 'schema' is True", "expected an integer schema version"),
    "manifest without run_id": (_edit_manifest(lambda d: {k: v for k, v in d.items() if k != "run_id"}), "manifest.json: missing key 'run_id'", ""),
    "unknown status": (_edit_record(_set("status", "fine")), "cases.jsonl:1: status is 'fine'", "expected one of"),
    "unknown protocol key": (_edit_manifest(_set("protocol.speed", 1)), "manifest.json: unknown key 'protocol.speed'", "expected only the keys"),
}


def _runs(builder) -> tuple[Path, Path]:
    base_case, cand_case = builder.case(), builder.case(variant=PATCHED)
    runs = []
    for i, name in enumerate(("base", "cand")):
        records = [builder.record(c, name, builder.samples(10 * i + k)) for k, c in enumerate((base_case, cand_case))]
        runs.append(builder.run(name, records))
    return runs[0], runs[1]


def _verbs(base: Path, cand: Path, out: Path) -> dict[str, list[str]]:
    return {
        "compare": ["compare", str(cand), str(base)],
        "export": ["export", str(base), "--parquet", str(out / "x.parquet")],
        "history": ["history", str(base), str(cand)],
        "report": ["report", str(base), "--out", str(out / "report")],
        "dashboard": ["dashboard", str(base), str(cand), "--out", str(out / "site"), "--no-change-points"],
    }


@pytest.mark.parametrize("kind", sorted(DAMAGES))
def test_every_analysis_verb_refuses_damaged_results_in_one_line_naming_file_key_and_expectation(
        kind, builder, tmp_path, capsys):  # fmt: skip
    damage, where, expected = DAMAGES[kind]
    base, cand = _runs(builder)
    damage(base)
    for verb, argv in _verbs(base, cand, tmp_path / "out").items():
        code = main(argv)
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == 2, (verb, err)
        assert len(lines) == 1 and "Traceback" not in err, (verb, err)
        assert str(base / where.split(":")[0]) in lines[0] and where in lines[0] and expected in lines[0], (verb, err)
    assert not (tmp_path / "out" / "report").exists() or not any((tmp_path / "out" / "report").iterdir())


def test_a_huge_unknown_key_is_named_in_a_short_line(builder, capsys):
    base, cand = _runs(builder)
    _edit_record(_set("k" * 100_000, 1))(base)
    assert main(["compare", str(cand), str(base)]) == 2
    err = capsys.readouterr().err
    assert "cases.jsonl:1: unknown key 'kkkk" in err and len(err) < 600


def test_every_committed_run_loads_through_the_one_upgrade_path():
    from dsabench.store.rundir import load_run

    results = Path(__file__).resolve().parents[2] / "results"
    runs = sorted(p.parent for p in results.rglob("manifest.json"))
    assert len(runs) >= 13
    old = 0
    for run in runs:
        before = (run / "manifest.json").read_bytes()
        loaded = load_run(run)
        assert loaded.typed_manifest.schema == SCHEMA_VERSION and loaded.typed_records, run
        assert all(r.schema == SCHEMA_VERSION for r in loaded.typed_records)
        assert (run / "manifest.json").read_bytes() == before  # the files themselves are never rewritten by loading
        written = json.loads(before)
        old += written["schema"] == 1
        # schema 1 runs without the interleave option timed each case on its own
        assert loaded.typed_manifest.options.interleave == written["options"].get("interleave", False)
    assert old >= 13  # the H100 runs of schema 1 all came through the upgrade


def test_a_record_of_a_newer_schema_is_refused_naming_file_line_and_version(builder, capsys):
    base, cand = _runs(builder)
    _edit_record(_set("schema", SCHEMA_VERSION + 1), line=2)(base)
    assert main(["compare", str(cand), str(base)]) == 2
    err = capsys.readouterr().err
    assert f"cases.jsonl:2: key 'schema' is {SCHEMA_VERSION + 1}; this dsabench reads versions up to {SCHEMA_VERSION}" in err


def test_a_case_recorded_twice_in_one_run_keeps_the_first_record_and_says_which(builder, capsys):
    base, cand = _runs(builder)
    first = (base / "cases.jsonl").read_text().splitlines()[0]
    again = json.loads(first)
    again["timing"]["samples_ms"] = [9.0] * 10
    with open(base / "cases.jsonl", "a") as f:
        f.write(json.dumps(again) + "\n")
    assert main(["compare", str(cand), str(base)]) == 0
    captured = capsys.readouterr()
    case_id = json.loads(first)["case_id"]
    # compare prints loading warnings above its table, wrapped at 120 columns: read them as prose
    said = " ".join((captured.out + captured.err).split())
    assert f"cases.jsonl:3: case '{case_id}' recorded again; kept the first record (line 1)" in said
