"""The one place numbers and run strings become text: byte, count, ms and percent formatters,
a table writer for the terminal and for markdown, and markdown escaping.

Markdown escaping: every string that comes from a run (record messages carrying framework
error text, run ids, device and backend names, case ids) can hold `<script>`, `<img onerror>`,
an image `![p](http://host/p.png)`, a backtick that ends a code span, a pipe that ends a table
cell, a newline that ends a table row, or terminal control bytes. `md_text` neutralizes all of
them: control characters become visible escapes (`\x1b`), HTML specials become entities, the
markdown metacharacters that open code, emphasis, strikethrough, links, images or cells
(backslash, backtick, `*`, `_`, `~`, `[`, `]`, `!`, `|`) get a backslash, a bare URL or `www.` is
broken so that it is not linked, and newlines become `<br>`. `md_code` puts such a string in
`<code>`, every one of those characters as an entity (markdown still applies between HTML tags).

Both also break what GitHub links beyond markdown, which would notify people from a PR comment: a
mention (`@user`, `@org/team`), an issue or PR reference (`#123`, `owner/repo#123`, `GH-123`) and
an e-mail address get a zero-width joiner (as the entity `&#8205;`: the terminal guard would show
the character itself escaped) after the `@`, `#` or `GH-`, so GitHub's patterns, which need a
letter or digit there, no longer match; the text reads the same.

Terminal: `term_text` makes any text safe to print: control characters (ESC, CR, BEL, C1) and the
bidirectional and invisible format characters become visible escapes; newline and tab stay.
"""

from __future__ import annotations

import math
import re
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


# Characters a terminal acts on (C0 but newline and tab, DEL, C1) and the format characters that
# reorder or hide text (bidirectional controls, zero-width, line/paragraph separators, BOM).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def _visible(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def term_text(value) -> str:
    """Any text safe for a terminal: control and format characters as visible escapes (`\x1b`)."""
    text = "" if value is None else str(value)
    return _UNSAFE.sub(_visible, text)


def _one_text(value) -> str:
    """A run's string with newlines as '\n' and every other control character made visible."""
    text = "" if value is None else str(value)
    return term_text(text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " "))


_MD_SPECIAL = "\\`*_~[]!|"
_BARE_LINK = re.compile(r"(?i)(?<=[a-z0-9+.-])(:)(?=//)|(?<=www)(\.)")  # http://... and www. are linked by GitHub


# Where GitHub links, in the text as it reads (before escaping): a mention or team ('@' after no
# word character, then a letter or digit), an e-mail address ('@' then a domain with a dot), a commit
# of another repository (owner/repo@ + a SHA), an issue or PR ('#' + a digit, bare or after
# owner/repo) and 'GH-' + a digit. A zero-width joiner there breaks each; an '@' inside a case key
# ('case@impl') is left be. The joiner goes in as U+200D (which `_one_text` has already made
# visible wherever the run's own text held one) and comes out as its entity.
_GITHUB_REF = re.compile(
    r"(?<=(?<![A-Za-z0-9_])@)(?=[A-Za-z0-9])|(?<=@)(?=[A-Za-z0-9_.-]*\.[A-Za-z0-9])|(?<=@)(?=[0-9a-fA-F]{7,40}\b)"
    r"|(?<=#)(?=[0-9])|(?i:(?<=\bgh-))(?=[0-9])")
_ZWJ, ZWJ_ENTITY = "\u200d", "&#8205;"


def md_text(value) -> str:
    """Any string from a run, safe in markdown prose and in a table cell: it renders as the text
    and pings no one (module docstring)."""
    text = _GITHUB_REF.sub(_ZWJ, _one_text(value))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in _MD_SPECIAL:
        text = text.replace(ch, "\\" + ch)
    text = _BARE_LINK.sub(lambda m: "\\" + m.group(), text)
    return text.replace(_ZWJ, ZWJ_ENTITY).replace("\n", "<br>")


_CODE_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                  **{c: f"&#{ord(c)};" for c in "'" + _MD_SPECIAL}}


def md_code(value) -> str:
    """A run's string as inline code: <code> with every markdown and HTML special as an entity, so
    nothing inside is markup (a backtick or pipe cannot end it, an image or link is only text)."""
    text = "".join(_CODE_ENTITIES.get(c, c) for c in _GITHUB_REF.sub(_ZWJ, _one_text(value)))
    text = _BARE_LINK.sub(lambda m: f"&#{ord(m.group())};", text)
    return f"<code>{text.replace(_ZWJ, ZWJ_ENTITY).replace(chr(10), '<br>')}</code>"


def md_fenced(text: str) -> list[str]:
    """A fenced code block longer than any backtick run inside `text`, so it cannot be closed early."""
    text = term_text(text)
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
    cells = [[term_text(str(c).replace("\r", " ").replace("\n", " ")) for c in r] for r in [list(header), *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r):
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()

    return [line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]]
