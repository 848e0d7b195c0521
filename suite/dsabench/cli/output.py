"""One way for every verb to say an error, a warning, and to parse a threshold flag."""

from __future__ import annotations

import argparse
import sys

from dsabench.cli.exit_codes import EXIT_BAD_INPUT
from dsabench.errors import shown


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
