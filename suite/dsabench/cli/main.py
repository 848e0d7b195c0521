"""`dsabench` command line: the parser of every verb, and the one place errors become exit codes.

Exit codes: 0 fine, 1 regression or failed check, 2 bad input, 3 run incomplete, 4 compare: cases
unjudged (the host changed between the runs), 130 interrupted (cli/exit_codes.py says each).
"""

from __future__ import annotations

import sys

from dsabench import __version__
from dsabench.cli import analysis_verbs, bisect_verb, calibrate_verb, present_verbs, run_verb, workload_verbs
from dsabench.cli.exit_codes import EXIT_BAD_INPUT, EXIT_INTERRUPTED
from dsabench.cli.flags import Parser
from dsabench.cli.output import terminal_guard
from dsabench.errors import InputError, shown


def build_parser() -> Parser:
    p = Parser(prog="dsabench", description="Benchmark FastDeploy's DSA attention forward before and after PR #7253.")
    p.add_argument("--version", action="version", version=f"dsabench {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=Parser)

    run_verb.register(sub)
    workload_verbs.register(sub)
    analysis_verbs.register(sub)
    present_verbs.register(sub)
    calibrate_verb.register(sub)
    bisect_verb.register(sub)
    return p


def _terminate_as_interrupt(signum, frame):
    """SIGTERM (a CI or batch time limit) stops a run like Ctrl-C: workers killed, records kept."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal  # noqa: PLC0415

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    parser = build_parser()
    args = parser.parse_args(argv)
    with terminal_guard():  # whatever a verb prints of a run's strings, no control byte reaches the terminal
        return _run(args)


def _run(args) -> int:
    try:
        return args.func(args)
    except InputError as exc:
        print(f"dsabench: error: {shown(exc, limit=None)}", file=sys.stderr)  # one printable line, whatever it quotes
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("dsabench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a file no verb expected to fail on (a read-only or full disk): one line, never a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"dsabench: error: {shown(where + (exc.strerror or str(exc)), limit=None)}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
