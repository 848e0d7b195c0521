"""Tables and sentences that fit a terminal or a CI log: WIDTH (120) columns unless asked for
the full width (`--wide`, width None).

The rule, in order, used until a table fits:
1. The table as it is, full case ids, every column on the row.
2. Case ids leave out the dot-separated fields that every row shares (`h16.k64.s0` ...), all but
   the first (the phase); a line above the table names them, so an id is the case's id with
   those fields put back.
3. In the last, free-text column (a note, a verdict sentence), the parts (separated by `; `) that
   several rows share are printed once below the table as numbered notes; a row keeps `[n]`.
4. That column moves to an indented line of its own under its row, wrapped at the width.
5. Case ids still too long fold after a dot onto further lines of the case column, indented.
Header names break after a `+` (`tensor+` over `view`). Sentences wrap at spaces.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import Iterable, Sequence

WIDTH = 120
GAP = "  "
TAIL_INDENT = "    "
MIN_ID_WIDTH = 24


def wrap(text: str, width: int | None = WIDTH, indent: str = "") -> list[str]:
    """`text` as lines of at most `width` (None: one line), continuation lines indented; words
    are never split, so a single word longer than the width stays whole."""
    if width is None:
        return [indent + text]
    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False) or [indent]


def shared_fields(ids: Sequence[str]) -> tuple[int, ...]:
    """Positions of the dot-separated fields after the first that every id has with the same value;
    none when there are fewer than two distinct ids or they differ in their number of fields."""
    split = [i.split(".") for i in dict.fromkeys(ids)]
    if len(split) < 2 or len({len(s) for s in split}) != 1:
        return ()
    return tuple(k for k in range(1, len(split[0])) if len({s[k] for s in split}) == 1)


def shorten(case_id: str, drop: Iterable[int]) -> str:
    drop = set(drop)
    return ".".join(f for k, f in enumerate(case_id.split(".")) if k not in drop)


def shared_note(ids: Sequence[str], drop: Sequence[int]) -> str:
    """The line that names the fields left out of every id."""
    fields = [ids[0].split(".")[k] for k in drop]
    return f"case ids leave out what every row shares: {'.'.join(fields)} (--wide: whole ids)"


def fold(text: str, width: int, indent: str = "  ") -> list[str]:
    """`text` in lines of at most `width`, broken after a dot, continuation lines indented (a field
    longer than the width stays whole)."""
    lines, line = [], ""
    for part in text.split("."):
        piece = part if not line else "." + part
        if line and line != indent and len(line) + len(piece) + 1 > width:  # + 1: the dot that ends the line
            lines.append(line + ".")
            line = indent + part
        else:
            line += piece
    return lines + [line]


def footnotes(tails: Sequence[str]) -> tuple[list[str], list[str]]:
    """Each row's text with the `; `-separated parts that other rows share replaced by numbers
    (`[1,3]`), and the numbered texts (parts that occur in the very same rows are one text); the
    texts unchanged, and no notes, when no part is shared."""
    parts = [t.split("; ") if t else [] for t in tails]
    rows_of: dict[str, set[int]] = {}
    for k, ps in enumerate(parts):
        for part in ps:
            rows_of.setdefault(part, set()).add(k)
    numbers: dict[frozenset, int] = {}
    texts: dict[int, list[str]] = {}
    out = []
    for ps in parts:
        marks, own = [], []
        for part in ps:
            rows = frozenset(rows_of[part])
            if len(rows) < 2:
                own.append(part)
                continue
            if rows not in numbers:
                numbers[rows] = len(numbers) + 1
                texts[numbers[rows]] = []
            n = numbers[rows]
            if part not in texts[n]:
                texts[n].append(part)
            if n not in marks:
                marks.append(n)
        mark = f"[{','.join(map(str, marks))}]" if marks else ""
        out.append(" ".join(x for x in (mark, "; ".join(own)) if x))
    return out, [f"[{n}] {'; '.join(t)}" for n, t in texts.items()]


def _lines(cell: str) -> list[str]:
    return str(cell).replace("\r", " ").split("\n")


def _widths(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(line) for r in [header, *rows] for line in _lines(r[j])) for j in range(len(header))]


def _render(header, rows, right, tails=None, width=None, tail_header: str = "") -> list[str]:
    """The table; `tails` (one text a row) follow their row where the row stays within `width`,
    else go on an indented line under it."""
    widths = _widths(header, rows)
    room = (width or 0) - sum(widths) - len(GAP) * len(widths)
    if tails and room > 0 and any(t and len(t) <= room for t in tails):
        inline = [t if t and len(t) <= room else "" for t in tails]
        header, widths = [*header, tail_header], [*widths, max(len(tail_header), *map(len, inline))]
        rows = [[*r, t] for r, t in zip(rows, inline)]
        tails = [t if t and len(t) > room else "" for t in tails]

    def block(cells) -> list[str]:
        parts = [_lines(c) for c in cells]
        out = []
        for i in range(max(len(p) for p in parts)):
            cols = [(p[i] if i < len(p) else "") for p in parts]
            out.append(GAP.join(c.rjust(widths[j]) if j in right else c.ljust(widths[j])
                                for j, c in enumerate(cols)).rstrip())
        return out

    lines = block(header) + [GAP.join("-" * w for w in widths)]
    for k, r in enumerate(rows):
        lines += block(r)
        if tails and tails[k]:
            lines += wrap(tails[k], width, TAIL_INDENT)
    return lines


def _total(header, rows) -> int:
    return sum(_widths(header, rows)) + len(GAP) * (len(header) - 1)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Iterable[int] = (),
          width: int | None = WIDTH, id_col: int | None = None, tail_label: str = "") -> list[str]:
    """Aligned plain-text table lines fitted to `width` by the module's rule; the last column is
    the free-text one that may move under its row (prefixed with `tail_label`). With width None,
    the whole table on one line a row, as given."""
    header, rows, right = list(header), [list(map(str, r)) for r in rows], set(right)
    if width is None or _total(header, rows) <= width:
        return _render(header, rows, right)
    note: list[str] = []
    if id_col is not None:
        ids = [r[id_col] for r in rows]
        drop = shared_fields(ids)
        if drop:
            note = wrap(shared_note(ids, drop), width)
            rows = [[shorten(c, drop) if j == id_col else c for j, c in enumerate(r)] for r in rows]
    header = [h.replace("+", "+\n") for h in header]
    if _total(header, rows) <= width:
        return note + _render(header, rows, right)
    tails, numbered = footnotes([r[-1] for r in rows])
    after = [line for text in numbered for line in wrap(text, width)]
    rows = [[*r[:-1], t] for r, t in zip(rows, tails)]
    if _total(header, rows) <= width:
        return note + _render(header, rows, right) + after
    tail_header, header, rows = header[-1], header[:-1], [r[:-1] for r in rows]
    right = {j for j in right if j < len(header)}
    over = _total(header, rows) - width
    if over > 0 and id_col is not None:
        id_width = max(MIN_ID_WIDTH, _widths(header, rows)[id_col] - over)
        rows = [[("\n".join(fold(c, id_width)) if j == id_col else c) for j, c in enumerate(r)] for r in rows]
    return note + _render(header, rows, right, [f"{tail_label}{t}" if t else "" for t in tails], width,
                          tail_header) + after
