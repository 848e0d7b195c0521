"""The CLI's exit codes, defined once: 0 fine, 1 regression or failed check, 2 bad input,
3 run incomplete (a record could not be written or no worker was left; `--resume` finishes it),
130 interrupted."""

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
EXIT_INTERRUPTED = 130
