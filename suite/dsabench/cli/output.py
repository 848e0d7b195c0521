"""One way for every verb to say an error, a warning, and to parse a threshold flag; and the
terminal guard every verb prints through."""

from __future__ import annotations

import argparse
import io
import sys
from contextlib import contextmanager
from typing import Iterator, TextIO

from dsabench.cli.exit_codes import EXIT_BAD_INPUT
from dsabench.errors import shown
from dsabench.present.text import term_text


class TerminalText(io.TextIOBase):
    """A text stream that passes everything on with control and format characters made visible
    (`present.text.term_text`): a run's strings (ids, messages, a scenario's description) may hold
    ESC sequences that retitle, clear or rewrite a terminal, and every verb prints some of them."""

    def __init__(self, inner: TextIO):
        super().__init__()
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(term_text(text))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.inner, "encoding", "utf-8")


@contextmanager
def terminal_guard() -> Iterator[None]:
    """stdout and stderr through TerminalText for the life of a verb, restored after."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TerminalText(out), TerminalText(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


def fail(verb: str, problem: Exception | str) -> int:
    """Print the one-line error of `dsabench VERB` and return the bad-input exit code."""
    print(f"dsabench {verb}: error: {shown(problem, limit=None)}", file=sys.stderr)  # one printable line
    return EXIT_BAD_INPUT


def warn(verb: str, warnings) -> None:
    for w in warnings:
        print(f"dsabench {verb}: warning: {w}", file=sys.stderr)


def threshold(text: str) -> float:
    """argparse type of --threshold: a fraction in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected a fraction such as 0.03 for 3%") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is outside [0, 1); expected a fraction such as 0.03 for 3%")
    return value


def threshold_or_auto(text: str) -> float | str:
    """argparse type of a gate's --threshold: a fraction in [0, 1), or 'auto' (each case's band from its own noise)."""
    if text == "auto":
        return text
    try:
        return threshold(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, or 'auto'") from None
