"""Writing run directories: one writer per directory, run ids that are names, a full disk named as
such with every finished case kept, one file mode, unwritable outputs refused in one line, and
--resume from any directory (and refused for a damaged manifest)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dsabench.cli.main import main
from dsabench.store import rundir as store
from dsabench.store.files import write_atomic
from dsabench.store.lock import lock_run_dir
from dsabench.store.schema import Timing
from dsabench.workload.cases import Case
from dsabench.workload.variants import BASELINE, PATCHED

import run_files

from cli_process import REPO, dsabench

SMALL = "decode.b1.c256.*(tensor-contiguous|scalar-view)"


def _record(run_id: str, variant=BASELINE) -> store.Record:
    c = Case("t", "decode", 1, 256, 0, 64, 64, 1, 16, 64, variant, False, 0)
    return store.Record(run_id, c.id, c.config_id, c.group_id, c.params(), "ok", "", "paddle",
                        {"name": "x86_64", "kind": "cpu"}, Timing((1.5, 1.25, 1.75), 1, 2, 10.0, "host", "min_samples"))


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real CPU run of four cases, started from its own directory with a relative scenario path."""
    home = tmp_path_factory.mktemp("home")
    shutil.copy(REPO / "scenarios" / "smoke.toml", home / "tiny.toml")
    r = dsabench("run", "tiny.toml", "--filter", SMALL, "--out", "out", "--run-id", "r", "--max-time-s", "0.05",
                 "--profile-iters", "0", cwd=home)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return home / "out" / "r"


# ------------------------------------------------------------------------------ one writer


def test_a_second_writer_of_a_run_directory_gets_one_line_and_exit_2(finished_run, capsys):
    with lock_run_dir(finished_run):  # this test process writes the run now
        r = dsabench("run", "--resume", finished_run)
        line = _one_line(r.stderr)
        assert r.returncode == 2 and f"{finished_run}: another dsabench process (pid {os.getpid()}) is writing" in line
        r = dsabench("run", "smoke", "--out", finished_run.parent, "--run-id", "r")  # refused before the lock
        assert r.returncode == 2 and f"{finished_run}: already holds a run" in _one_line(r.stderr)
    # the lock dies with its holder: a later resume finds nothing to do and nothing held
    r = dsabench("run", "--resume", finished_run)
    assert r.returncode == 0 and "0 of 4 cases to measure" in r.stderr, r.stderr


def test_a_new_run_never_reuses_a_directory_that_holds_a_run(finished_run, capsys):
    assert main(["run", "smoke", "--out", str(finished_run.parent), "--run-id", "r"]) == 2
    assert f"{finished_run}: already holds a run" in _one_line(capsys.readouterr().err)


def _cli(argv: list[str]) -> int:
    """The CLI's entry point; a refusal at parse time exits through argparse, with the same code."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("run_id", ["..", ".", "", "a/b", "../x", "a\x00b", "-rf", ".hidden", "x" * 129, "a b"])
def test_run_ids_are_names_not_paths(run_id, tmp_path, capsys):
    out = tmp_path / "out"
    assert _cli(["run", "smoke", "--out", str(out), f"--run-id={run_id}"]) == 2
    line = _one_line(capsys.readouterr().err)
    expected = "expected a non-empty value" if run_id == "" else "expected 1 to 128 letters, digits"
    assert "--run-id" in line and expected in line and "\x00" not in line
    assert not any(tmp_path.iterdir())  # nothing written, not even --out


# ------------------------------------------------------------------------------- full disk


def _limit_file_size(n_bytes: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))
    return apply


def test_a_disk_full_from_the_start_gives_one_line_naming_the_manifest_and_leaves_nothing(tmp_path):
    r = dsabench("run", "smoke", "--filter", SMALL, "--out", tmp_path / "out", "--run-id", "r",
                 preexec_fn=_limit_file_size(0))  # fmt: skip
    line = _one_line(r.stderr)
    assert r.returncode == 2 and f"{tmp_path / 'out' / 'r' / 'manifest.json'}: could not be written" in line
    assert "full" in line
    assert not (tmp_path / "out").exists()  # nothing half-written: not even the directories it made


APPEND_UNDER_LIMIT = textwrap.dedent("""
    import resource, signal, sys
    from dsabench.store import rundir as store
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    run, limit, record = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        store.append_record(run, __import__("json").loads(record))
    except store.StoreWriteError as exc:
        print(exc)
        sys.exit(2)
""")


def test_an_append_on_a_full_disk_names_the_file_keeps_every_finished_case_and_resume_can_go_on(tmp_path):
    run = store.create_run_dir(tmp_path / "r", run_files.manifest("r"))
    first, second = _record("r"), _record("r", PATCHED)
    store.append_record(run, first)
    size = (run / store.CASES).stat().st_size
    r = subprocess.run([sys.executable, "-c", APPEND_UNDER_LIMIT, str(run), str(size + 40),
                        json.dumps(second.to_json())], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert f"{run / store.CASES}: could not append the record of case '{second.case_id}'" in r.stdout
    assert "File too large" in r.stdout and "full" in r.stdout
    assert (run / store.CASES).stat().st_size == size  # cut back to the last whole line
    records, warnings = store.load_records(run)
    assert [x.case_id for x in records] == [first.case_id] and not warnings
    store.append_record(run, second)  # space again: the run carries on
    assert store.finished_case_ids(run) == {first.case_id, second.case_id}


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_manifest_and_cases_get_the_same_file_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        run = store.create_run_dir(tmp_path / "r", run_files.manifest("r"))
        store.append_record(run, _record("r"))
    finally:
        os.umask(old)
    modes = {name: (run / name).stat().st_mode & 0o777 for name in (store.MANIFEST, store.CASES)}
    assert modes == {store.MANIFEST: 0o644 & ~umask, store.CASES: 0o644 & ~umask}


def test_an_atomic_write_syncs_the_file_then_the_directory_that_holds_its_new_name(tmp_path, monkeypatch):
    synced = []  # what each real fsync was of, in order
    real = os.fsync

    def spy(fd):
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    write_atomic(tmp_path / "state.json", b"{}\n")
    assert synced == ["file", "dir"] and (tmp_path / "state.json").read_bytes() == b"{}\n"


@pytest.mark.parametrize("out", ["afile/sub", "/proc/dsabench-x"])
def test_an_unwritable_out_gives_one_line_naming_it(out, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file, not a directory")
    assert main(["run", "smoke", "--filter", SMALL, "--out", out, "--run-id", "r"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{out}/r: cannot be created as a run directory" in line
    assert (tmp_path / "afile").read_text() == "a file, not a directory"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a read-only tmpfs needs root")
def test_run_out_on_a_read_only_mount_gives_one_line(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)]).returncode != 0:
        pytest.skip("this machine refuses tmpfs mounts")
    try:
        assert main(["run", "smoke", "--filter", SMALL, "--out", str(ro / "out"), "--run-id", "r"]) == 2
        assert "Read-only file system" in _one_line(capsys.readouterr().err)
    finally:
        subprocess.run(["umount", str(ro)])


# --------------------------------------------------------------------------------- resume


def test_resume_works_from_any_directory_because_the_manifest_holds_the_resolved_scenario_path(finished_run):
    manifest = json.loads((finished_run / store.MANIFEST).read_text())
    assert manifest["scenario_file"] == str((finished_run.parent.parent / "tiny.toml").resolve())
    r = dsabench("run", "--resume", finished_run.resolve(), cwd=REPO / "docs")
    assert r.returncode == 0 and "0 of 4 cases to measure" in r.stderr, r.stderr


def test_resume_refuses_a_scenario_file_that_changed_since_the_run_began(finished_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(finished_run, run)
    scenario = tmp_path / "changed.toml"
    scenario.write_text((REPO / "scenarios" / "smoke.toml").read_text() + "\n# edited\n")
    doc = json.loads((run / store.MANIFEST).read_text())
    (run / store.MANIFEST).write_text(json.dumps({**doc, "scenario_file": str(scenario)}))
    r = dsabench("run", "--resume", run)
    assert r.returncode == 2 and f"scenario file {scenario}" in _one_line(r.stderr) and "changed since" in r.stderr


def _without(key: str):
    return lambda d: {k: v for k, v in d.items() if k != key}


def _options(**change):
    return lambda d: {**d, "options": {**d["options"], **change}}


@pytest.mark.parametrize("damage, said", [
    (_without("options"), "manifest.json: missing key 'options'"),
    (_without("run_id"), "manifest.json: missing key 'run_id'"),
    (lambda d: {**d, "protocol": {**d["protocol"], "warp": 9}}, "manifest.json: unknown key 'protocol.warp'"),
    (lambda d: {**d, "protocol": {**d["protocol"], "min_samples": 2}},
     "manifest.json: key 'protocol': protocol min_samples 2; expected at least 3"),
    (_options(filter="(unclosed"), "manifest.json: key 'options': filter '(unclosed' is not a valid regular expression"),
    (_options(devices="0"), "manifest.json: key 'options.devices': expected array | null, got str"),
    (lambda d: [d], "manifest.json: is a JSON list; expected a run manifest"),
])  # fmt: skip
def test_resume_of_a_damaged_manifest_gives_one_line_and_exit_2(damage, said, finished_run, tmp_path, capsys):
    run = tmp_path / "r"
    shutil.copytree(finished_run, run)
    doc = json.loads((run / store.MANIFEST).read_text())
    (run / store.MANIFEST).write_text(json.dumps(damage(doc)))
    assert main(["run", "--resume", str(run)]) == 2
    assert str(run / said.split(":")[0]) in (line := _one_line(capsys.readouterr().err)) and said in line


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a read-only tmpfs needs root")
def test_a_dashboard_onto_a_read_only_mount_is_one_line_and_exit_2(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(ro)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        results = Path(__file__).resolve().parent.parent / "results" / "h100-2026-11-25" / "smoke-torch-h100"
        r = subprocess.run([sys.executable, "-m", "dsabench", "dashboard", str(results), "--out", str(ro / "site"),
                            "--no-change-points"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Read-only file system" in r.stderr
        assert str(ro / "site") in r.stderr
    finally:
        subprocess.run(["umount", str(ro)])
