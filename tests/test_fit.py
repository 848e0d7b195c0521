"""Tables that fit a terminal or a CI log (present.fit): full ids while the table fits; else ids
without the fields every row shares, named once; the free-text last column under its row; ids
still too long folded at their dots. Width None is the whole table, one line a row."""

from __future__ import annotations

from dsabench.present import fit

IDS = [f"decode.b{b}.c256.p0.n64.bs64.ch1.h16.k64.s0.hot.eager" for b in (1, 4, 32)]


def _widest(lines: list[str]) -> int:
    return max(map(len, lines))


def test_a_table_that_fits_keeps_its_full_ids_and_every_column_on_the_row():
    lines = fit.table(["case", "ms", "note"], [[i, "1.0", "ok"] for i in IDS], right=[1], width=120, id_col=0)
    assert [line.split()[0] for line in lines[2:]] == IDS and all(line.endswith("ok") for line in lines[2:])


def test_ids_leave_out_the_fields_every_row_shares_and_a_line_names_them():
    lines = fit.table(["case", "ms", "note"], [[i, "1.0", "x" * 40] for i in IDS], width=90, id_col=0)
    note, table = lines[:2], lines[2:]
    assert " ".join(" ".join(note).split()) == ("case ids leave out what every row shares: "
                                                 "c256.p0.n64.bs64.ch1.h16.k64.s0.hot.eager (--wide: whole ids)")
    assert [line.split()[0] for line in table[2:]] == ["decode.b1", "decode.b4", "decode.b32"]
    assert _widest(lines) <= 90


def test_a_last_column_text_that_rows_share_is_printed_once_below_as_a_numbered_note():
    note = "one process a side and no history: the interval is one process's precision; measure with --repeats 2"
    rows = [[i, "1.0", f"{note}; disturbed {k}%"] for k, i in enumerate(IDS)]
    lines = fit.table(["case", "ms", "note"], rows, width=70, id_col=0)
    assert lines[-2:] == ["[1] one process a side and no history: the interval is one process's",
                          "  precision; measure with --repeats 2"]
    assert [line.split()[-3:] for line in lines if line.startswith("decode")] == [
        ["[1]", "disturbed", f"{k}%"] for k in range(3)]
    assert _widest(lines) <= 70


def test_the_last_column_moves_under_its_row_when_the_row_would_be_wider():
    notes = [f"case {k}: " + "word " * 9 for k in range(len(IDS))]
    lines = fit.table(["case", "ms", "note"], [[i, "1.0", n.strip()] for i, n in zip(IDS, notes)], width=60, id_col=0)
    assert lines[-2:] == ["decode.b32  1.0", "    " + notes[-1].strip()]
    assert _widest(lines) <= 60


def test_ids_still_too_long_fold_after_a_dot():
    ids = ["decode.b1.c256.p0.n64.bs64.ch1.h16", "prefill.b2.c0.p128.n16.bs64.ch2.h64"]
    lines = fit.table(["case", "ms"] + ["col"], [[i, "1.0", "n"] for i in ids], width=30, id_col=0)
    assert _widest([line for line in lines if not line.startswith("    ")]) <= 30
    firsts = [line for line in lines if line.startswith(("decode", "prefill"))]
    assert len(firsts) == 2 and all(line.split()[0].endswith(".") and line.endswith("1.0") for line in firsts)


def test_width_none_is_the_whole_table_one_line_a_row():
    lines = fit.table(["case", "ms", "note"], [[i, "1.0", "x" * 200] for i in IDS], width=None, id_col=0)
    assert len(lines) == 2 + len(IDS) and lines[2].startswith(IDS[0])


def test_ids_of_different_shapes_share_nothing():
    assert fit.shared_fields(["a.b.c", "a.b"]) == () and fit.shared_fields(["a.b.c"]) == ()


def test_fold_breaks_after_dots_and_keeps_a_field_whole():
    assert fit.fold("abc.defgh.ij", 8) == ["abc.", "  defgh.", "  ij"]
    assert fit.fold("abcdefghij.k", 4) == ["abcdefghij.", "  k"]


def test_a_sentence_wraps_at_spaces_with_its_continuation_indented():
    lines = fit.wrap("one two three four five six", 10)
    assert lines == ["one two", "  three", "  four", "  five six"]
