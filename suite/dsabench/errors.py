"""Typed errors. Each says which input (file, key, value) is wrong and what is allowed."""

from __future__ import annotations

import unicodedata


class DsabenchError(Exception):
    """Base of every error this package raises on purpose."""


class InputError(DsabenchError):
    """Bad user input: scenario file, CLI flag, results file or trace. CLI exit code 2."""


class InvalidCase(DsabenchError):
    """A case that cannot run as specified (e.g. a view of a cache with more than one head)."""


class CaptureFailed(DsabenchError):
    """CUDA Graph capture failed; the message is the framework's own error text."""


class Unsupported(DsabenchError):
    """The case needs something this machine or backend lacks (e.g. CUDA Graph on CPU)."""


# How text the user supplied (keys, names, values, paths, flags) appears inside a one-line message:
# a 100,000-character key would fill the screen, and a NUL, an escape sequence or a newline in a
# name would corrupt the line or the terminal. So control and format characters are escaped, and
# anything longer than `LIMIT` characters is cut with an ellipsis and its length.
LIMIT = 80  # characters of one name or value shown in a message


def escaped(text: str) -> str:
    """`text` with every control, format or line/paragraph separator character as an escape."""
    if text.isprintable() and "\x7f" not in text:
        return text
    out = []
    for ch in text:
        if ch == " " or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def shown(text: object, limit: int | None = LIMIT) -> str:
    """`text` escaped, and cut to `limit` characters with '…' and its full length when longer."""
    text = str(text)
    if limit is not None and len(text) > limit:
        return escaped(text[:limit]) + f"… ({len(text)} characters)"
    return escaped(text)


def quoted(text: str, limit: int | None = LIMIT) -> str:
    """`text` as a quoted Python literal (escapes included), cut like `shown` when longer."""
    if limit is not None and len(text) > limit:
        return repr(text[:limit]) + f"… ({len(text)} characters)"
    return repr(text)
