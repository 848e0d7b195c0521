"""The CLI's exit codes, defined once: 0 fine, 1 regression or failed check, 2 bad input,
3 run incomplete (a record could not be written or no worker was left; `--resume` finishes it;
bisect: stopped without a single culprit), 4 unjudged (`compare --fail-on-regression`: nothing
slower, but some case got no verdict because the two runs' hosts differ, reason `host_changed`:
its interval measures the host, so a regression could hide there; a distinct code, not 0, so CI
never passes it silently, and not 1, since nothing was shown slower), 130 interrupted."""

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
EXIT_UNJUDGED = 4
EXIT_INTERRUPTED = 130
