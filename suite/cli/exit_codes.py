"""The CLI's exit codes, defined once: 0 fine, 1 regression or failed check, 2 bad input."""

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
