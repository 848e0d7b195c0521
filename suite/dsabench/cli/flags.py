"""argparse pieces every verb shares: a parser that errors in one line, and checked flag types.

Every range is checked here, at parse time, so a bad flag exits 2 before anything runs: an empty
value, digits other than ASCII 0-9 (Python's int() and float() take '١٢'), a number beyond its
stated range. Flag values appear in messages escaped and cut short (`dsabench.errors.quoted`).
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
from pathlib import Path

from dsabench.cli.exit_codes import EXIT_BAD_INPUT
from dsabench.errors import quoted, shown

MESSAGE_LIMIT = 400  # characters of one argparse message (an unknown 100 KB flag stays one short line)
MAX_SECONDS = 7 * 86400.0  # a time flag's largest value: a week (1e10 s overflowed a thread's timeout)

# Run ids name a directory: a safe character set, no leading '.', so '.', '..' and '' are refused.
RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line naming the flag and the problem (no usage dump)."""

    def error(self, message: str):  # noqa: D401
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {shown(message, MESSAGE_LIMIT)} (see {self.prog} --help)\n")

    def _get_value(self, action, arg_string):
        """Every value of every flag and argument: never empty ('' as --out is the current
        directory), and one parsed as a number, a shard or devices without digits other than 0-9."""
        if action.nargs in (argparse.PARSER, argparse.REMAINDER):  # a verb and the arguments it parses itself
            return super()._get_value(action, arg_string)
        name = "/".join(action.option_strings) or action.metavar or action.dest
        if isinstance(arg_string, str) and not arg_string.strip():
            raise argparse.ArgumentError(None, f"{name} {quoted(arg_string)}: expected a non-empty value")
        parsed = callable(action.type) and action.type not in (str, Path, git_checkout)  # paths may hold any digit
        if parsed and isinstance(arg_string, str) and any(c.isdecimal() and not c.isascii() for c in arg_string):
            raise argparse.ArgumentError(None, f"{name} {quoted(arg_string)}: expected the digits 0-9")
        return super()._get_value(action, arg_string)


def shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"([0-9]{1,6})/([0-9]{1,6})", text)
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise argparse.ArgumentTypeError(f"--shard {quoted(text)}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return int(m.group(1)), int(m.group(2))


def kernel(text: str) -> str:
    """--kernel: one kernel (or auto), or a kernel axis 'A,B,...' (bench.kernels.select.parse)."""
    from dsabench.bench.kernels.select import parse  # noqa: PLC0415 - framework-free

    try:
        return parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--{exc}") from None  # "--kernel 'x' ...; expected ..."


def devices(text: str) -> tuple[str, ...]:
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(not re.fullmatch(r"[0-9]{1,4}|GPU-[0-9a-fA-F-]{1,64}|cpu:[0-9]{1,4}", p) for p in parts) or len(set(parts)) != len(parts):
        raise argparse.ArgumentTypeError(
            f"--devices {quoted(text)}: expected distinct GPU indices or UUIDs (or cpu:N for CPU workers) separated by "
            "commas, e.g. 0,1")
    return tuple(parts)


def _number(name: str, text: str) -> float:
    try:
        if not text.isascii():
            raise ValueError(text)
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} {quoted(text)}: expected a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{name} {quoted(text)}: expected a finite number")
    return v


def positive_float(name, high: float = MAX_SECONDS, what: str = " (a week)"):
    """A finite number in (0, high]; by default a time in seconds of at most a week."""
    def parse(text: str) -> float:
        v = _number(name, text)
        if not 0 < v <= high:
            raise argparse.ArgumentTypeError(f"{name} {quoted(text)}: expected a number > 0 and <= {high:g}{what}")
        return v
    return parse


def float_in(name: str, low: float, high: float, low_open: bool, high_open: bool, what: str = ""):
    """A finite number in [low, high], each end open or closed as asked; `what` says why."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        v = _number(name, text)
        if v < low or v > high or (low_open and v == low) or (high_open and v == high):
            raise argparse.ArgumentTypeError(f"{name} {quoted(text)}: expected a number in {interval}{what}")
        return v
    return parse


def int_in(name: str, low: int, high: int, what: str = ""):
    """An integer in [low, high]; `what` says why."""
    def parse(text: str) -> int:
        if not re.fullmatch(r"[0-9]{1,20}", text.strip()) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{name} {quoted(text)}: expected an integer from {low} to {high}{what}")
        return int(text)
    return parse


def min_samples(text: str) -> int:
    """--min-samples: at least the protocol's minimum, at most the GPU protocol's sample cap."""
    from dsabench.bench.protocol import GPU_PROTOCOL, MIN_SAMPLES  # noqa: PLC0415

    return int_in("--min-samples", MIN_SAMPLES, GPU_PROTOCOL.max_samples,
                  f" (the protocol's minimum is {MIN_SAMPLES}, for a median; its sample cap is "
                  f"{GPU_PROTOCOL.max_samples})")(text)


def run_id(text: str) -> str:
    if not RUN_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"--run-id {quoted(text)}: expected 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' "
            "(a run id names a directory inside --out)")
    return text


def git_checkout(text: str) -> Path:
    """--measured-checkout: a directory that git reads as a checkout with a commit."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"--measured-checkout {quoted(text)}: no such directory")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"--measured-checkout {quoted(text)}: not a directory; expected a git checkout")
    try:
        head = subprocess.run(["git", "-C", str(path), "rev-parse", "--verify", "--quiet", "HEAD"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise argparse.ArgumentTypeError(f"--measured-checkout {quoted(text)}: cannot run git ({exc})") from None
    if head.returncode != 0:
        raise argparse.ArgumentTypeError(
            f"--measured-checkout {quoted(text)}: not a git checkout with a commit; expected the FastDeploy checkout "
            "whose commit the run measures")
    return path


def variant(name: str):
    """A variant name ('baseline', 'patched' or SCALE+LAYOUT), checked here and passed on as written."""
    def parse(text: str) -> str:
        from dsabench.workload.variants import LAYOUT_MODES, SCALE_MODES, parse_variant  # noqa: PLC0415

        try:
            parse_variant(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} {quoted(text)}: expected 'baseline', 'patched' or SCALE+LAYOUT with SCALE in "
                f"{', '.join(SCALE_MODES)} and LAYOUT in {', '.join(LAYOUT_MODES)}") from None
        return text
    return parse


def regex(text: str):
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"--filter {quoted(text)}: not a valid regular expression ({exc})") from None
