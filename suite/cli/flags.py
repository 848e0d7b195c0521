"""argparse pieces every verb shares: a parser that errors in one line, and checked flag types."""

from __future__ import annotations

import argparse
import re

from dsabench.cli.exit_codes import EXIT_BAD_INPUT


class Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line naming the flag and the problem (no usage dump)."""

    def error(self, message: str):  # noqa: D401
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise argparse.ArgumentTypeError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return int(m.group(1)), int(m.group(2))


def devices(text: str) -> tuple[str, ...]:
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(not re.fullmatch(r"\d+|GPU-[0-9a-fA-F-]+|cpu:\d+", p) for p in parts) or len(set(parts)) != len(parts):
        raise argparse.ArgumentTypeError(
            f"--devices {text!r}: expected distinct GPU indices or UUIDs (or cpu:N for CPU workers) separated by "
            "commas, e.g. 0,1")
    return tuple(parts)


def positive_float(name):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} {text!r}: expected a number") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"{name} {text!r}: expected a number > 0")
        return v
    return parse


def positive_int(name):
    def parse(text: str) -> int:
        if not re.fullmatch(r"\d+", text) or int(text) < 1:
            raise argparse.ArgumentTypeError(f"{name} {text!r}: expected an integer >= 1")
        return int(text)
    return parse


def regex(text: str):
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"--filter {text!r}: not a valid regular expression ({exc})") from None


