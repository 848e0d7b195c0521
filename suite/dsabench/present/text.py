"""The one place numbers and run strings become text: byte, count, ms and percent formatters,
a table writer for the terminal and for markdown, and markdown escaping.

Markdown escaping: every string that comes from a run (record messages carrying framework
error text, run ids, device and backend names, case ids) can hold `<script>`, `<img onerror>`,
a backtick that ends a code span, a pipe that ends a table cell, or a newline that ends a
table row. `md_text` neutralizes all of them: HTML specials become entities, the markdown
metacharacters that open code, emphasis, links or cells (backslash, backtick, `*`, `[`, `]`, `|`)
get a backslash, newlines become `<br>` (underscores stay: GitHub does not emphasize inside a word,
and statuses such as capture_failed stay readable in the raw file). `md_code` puts such a string in
`<code>` (an HTML element, so a backtick or pipe inside cannot end it).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

_BYTE_UNITS = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
MISSING = "-"


def _real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt_bytes(v, missing: str = MISSING) -> str:
    """Binary units, three significant digits: 4 B, 32 MiB, 2.19 GiB; `missing` for NaN/None."""
    if not _real(v):
        return missing
    for unit, size in _BYTE_UNITS:
        if abs(v) >= size:
            return f"{v / size:.3g} {unit}"
    return f"{v:.0f} B"


def byte_unit(v: float) -> tuple[str, int]:
    """The unit fmt_bytes would pick for v, and its size (for scaling an axis)."""
    for unit, size in _BYTE_UNITS:
        if _real(v) and abs(v) >= size:
            return unit, size
    return "B", 1


def fmt_num(v, missing: str = MISSING) -> str:
    """An integer as is, anything else to three significant digits."""
    if not _real(v):
        return missing
    return f"{v:g}" if float(v).is_integer() else f"{v:.3g}"


def fmt_ms(v, missing: str = MISSING) -> str:
    """Milliseconds to four significant digits, trailing zeros kept (1.200)."""
    return f"{v:#.4g}" if _real(v) else missing


def fmt_change(ratio, missing: str = MISSING) -> str:
    """A ratio cand / base as a signed percent change: 0.8 -> -20.0%."""
    return f"{(ratio - 1) * 100:+.1f}%" if _real(ratio) else missing


def fmt_p(p, missing: str = MISSING) -> str:
    return missing if not _real(p) else (f"{p:.2g}" if p >= 0.001 else "<0.001")


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


# ------------------------------------------------------------------------------- markdown


def md_text(value) -> str:
    """Any string from a run, safe in markdown prose and in a table cell."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\`*[]|":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def md_code(value) -> str:
    """A run's string as inline code: HTML-escaped inside <code>, where markdown does not apply
    (a backtick or pipe cannot end it; a pipe is still escaped for the table row)."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;")
    text = text.replace("`", "&#96;").replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")
    return f"<code>{text}</code>"


def md_fenced(text: str) -> list[str]:
    """A fenced code block longer than any backtick run inside `text`, so it cannot be closed early."""
    fence = "```"
    while fence in text:
        fence += "`"
    return [fence, text, fence]


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: Sequence[str] | None = None) -> list[str]:
    """Markdown table lines. Cells are inserted as given: escape run strings with md_text first."""
    align = list(align or ["---"] * len(header))
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


# ------------------------------------------------------------------------------- terminal


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> list[str]:
    """Aligned plain-text table lines: header, dashes, rows; columns in `right` right-aligned.
    Newlines in a cell become spaces so a row stays one line."""
    right = set(right)
    cells = [[str(c).replace("\r", " ").replace("\n", " ") for c in r] for r in [list(header), *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r):
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()

    return [line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]]
