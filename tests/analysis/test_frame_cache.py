"""A run's rows are kept between loads (store.frame_cache) only while they are certainly those of
the same files and the same code: a load from the cache is the frame of loading the files, and a
file appended to, rewritten or damaged since, a damaged entry, an unwritable cache or the cache
turned off change nothing but the time it takes."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from dsabench.errors import InputError
from dsabench.store import frame_cache, frames
from dsabench.store.rundir import append_record
from dsabench.workload.variants import PATCHED


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache that keeps runs written a moment ago (the tests' runs are): files changed in a test
    are given a later modification time (`_changed`), which a change within one tick of the
    filesystem's clock would not get."""
    root = tmp_path / "cache"
    monkeypatch.setenv(frame_cache.ENV, str(root))
    monkeypatch.setattr(frame_cache, "RACY_NS", 0)
    return root


def _changed(path):
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def _runs(builder, n=3):
    a, b = builder.case(), builder.case(variant=PATCHED)
    return [builder.run(f"n{day}", [builder.record(a, f"n{day}", builder.samples(day)),
                                    builder.record(b, f"n{day}", builder.samples(day + 50))],
                        created_at=f"2025-01-0{day + 1}T00:00:00+00:00")
            for day in range(n)]


def _uncached(paths, monkeypatch):
    with monkeypatch.context() as m:
        m.setenv(frame_cache.ENV, "off")
        return frames.load_frame(paths)


def _same(a, b):
    pd.testing.assert_frame_equal(a.df, b.df)
    assert (a.manifests, a.warnings, a.run_dirs) == (b.manifests, b.warnings, b.run_dirs)


def _entries(root):
    return sorted(root.rglob("*.pickle")) if root.is_dir() else []


def test_a_load_from_the_cache_is_the_frame_of_loading_the_files(builder, cache, monkeypatch):
    paths = _runs(builder)
    with open(paths[1] / "cases.jsonl", "ab") as f:
        f.write(b'{"run_id": "n1", "case_')  # a killed run's last line: its warning is kept with the rows
    first = frames.load_frame(paths)
    assert len(_entries(cache)) == 3
    monkeypatch.setattr(frames, "_run_part", lambda path: pytest.fail(f"{path} was read again"))
    second = frames.load_frame(paths)
    monkeypatch.undo()
    _same(second, first)
    _same(second, _uncached(paths, monkeypatch))
    assert len(first.warnings) == 1


def test_a_run_appended_to_or_rewritten_since_is_read_again(builder, cache, monkeypatch):
    paths = _runs(builder)
    frames.load_frame(paths)
    run, late = paths[2], builder.case(batch=16)
    append_record(run, builder.record(late, "n2", builder.samples(7)))  # a run still being written: one more case
    grown = frames.load_frame(paths)
    assert len(grown.df) == 7 and late.id in set(grown.df["case_id"])
    _same(grown, _uncached(paths, monkeypatch))

    manifest = run / "manifest.json"
    manifest.write_text(manifest.read_text().replace("2025-01-03T00:00:00+00:00", "2025-02-03T00:00:00+00:00"))
    _changed(manifest)  # the same size: only its times tell
    moved = frames.load_frame(paths)
    assert str(moved.df["created_at"].max()).startswith("2025-02-03")
    _same(moved, _uncached(paths, monkeypatch))


def test_a_run_damaged_since_it_was_cached_is_refused_as_before(builder, cache):
    paths = _runs(builder)
    frames.load_frame(paths)
    with open(paths[0] / "cases.jsonl", "r+b") as f:
        f.write(b"#")  # the first line no longer JSON
    _changed(paths[0] / "cases.jsonl")
    with pytest.raises(InputError, match="n0"):
        frames.load_frame(paths)
    with pytest.raises(InputError, match="n0"):
        frames.load_frame(paths)  # and again: a refusal is never cached


def test_a_damaged_entry_is_a_miss_and_is_replaced(builder, cache, monkeypatch):
    paths = _runs(builder)
    frames.load_frame(paths)
    for entry in _entries(cache):
        entry.write_bytes(entry.read_bytes()[: len(entry.read_bytes()) // 2])
    _same(frames.load_frame(paths), _uncached(paths, monkeypatch))
    monkeypatch.setattr(frames, "_run_part", lambda path: pytest.fail(f"{path} was read again"))
    frames.load_frame(paths)  # the entries were written whole again


def test_entries_of_other_code_are_never_read(builder, cache, monkeypatch):
    paths = _runs(builder)
    frames.load_frame(paths)
    monkeypatch.setattr(frame_cache, "code_version", lambda: "another")
    read = []
    real = frames._run_part
    monkeypatch.setattr(frames, "_run_part", lambda path: read.append(path) or real(path))
    frames.load_frame(paths)
    assert read == paths


def test_the_directory_as_given_is_part_of_the_key(builder, cache, monkeypatch):
    paths = _runs(builder, n=1)
    frames.load_frame(paths)
    monkeypatch.chdir(paths[0].parent)
    relative = frames.load_frame([paths[0].relative_to(paths[0].parent)])
    assert list(relative.df["run_dir"].unique()) == ["n0"]  # not the absolute path the entry was made from


def test_the_cache_turned_off_or_unwritable_writes_nothing_and_loads_the_same(builder, tmp_path, monkeypatch):
    paths = _runs(builder)
    monkeypatch.setenv(frame_cache.ENV, "off")
    off = frames.load_frame(paths)
    assert not _entries(tmp_path)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    monkeypatch.setenv(frame_cache.ENV, str(blocked / "cache"))
    _same(frames.load_frame(paths), off)
    if os.geteuid() != 0:  # root writes through permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        monkeypatch.setenv(frame_cache.ENV, str(locked))
        _same(frames.load_frame(paths), off)


def test_a_run_changed_a_moment_ago_is_not_cached(builder, tmp_path, monkeypatch):
    """Its files' times may not yet tell a later change of the same size from this state."""
    monkeypatch.setenv(frame_cache.ENV, str(tmp_path / "cache"))
    paths = _runs(builder)
    frames.load_frame(paths)
    assert not _entries(tmp_path / "cache")
