"""A bisection's state.json read back for --resume: a damaged one is one line naming the file, exit 2."""

from __future__ import annotations

import json

import pytest

from dsabench.cli.main import main

STATE = {"schema": 1,
         "settings": {"path": "/x", "good": "a", "bad": "b", "good_sha": "a", "bad_sha": "b", "scenario": "smoke"},
         "plan": {"commits": [{"sha": "a", "subject": "s"}, {"sha": "b", "subject": "t"}], "improvement": False,
                  "repeats": 3, "max_steps": 30},
         "attempts": [], "pending": None}


@pytest.mark.parametrize(("change", "words"), [
    ({"attempts": ["not an object"]}, "damaged state"),
    ({"pending": [1]}, "key 'pending' is [1]"),
    ({"pending": {"index": 1}}, "key 'pending'"),
    ({"plan": {**STATE["plan"], "commits": []}}, "key 'plan.commits' holds 0 commit(s)"),
])
def test_a_damaged_state_file_is_one_line_naming_it_and_exit_2(tmp_path, capsys, change, words):
    (tmp_path / "state.json").write_text(json.dumps({**STATE, **change}))
    before = (tmp_path / "state.json").read_bytes()
    assert main(["bisect", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "state.json") in err and words in err
    assert (tmp_path / "state.json").read_bytes() == before
