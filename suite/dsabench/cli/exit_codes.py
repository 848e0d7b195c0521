"""The CLI's exit codes, defined once: 0 fine, 1 regression or failed check, 2 bad input,
3 run incomplete (a record could not be written or no worker was left; `--resume` finishes it;
bisect: stopped without a single culprit), 4 unjudged (`compare --fail-on-regression`: nothing
slower, but some case got no verdict and a material slowdown cannot be ruled out: `undecided`,
noisy or not, with an interval whose upper end reaches the threshold's slower edge (with
`--threshold auto` the default threshold's, +3%), or withheld because the two runs' hosts differ,
reason `host_changed`, whose interval measures the host, or `not_comparable` (another clock, or
no samples, on a side), which has none, or one process a side, whose interval is one process's
precision, or only in BASE while CAND's run holds less than it planned; `analysis.unjudged`. A distinct code:
not 0, so CI never takes "could not tell" for "no regression", and not 1, since nothing was
shown slower; 1 wins where both hold), 130 interrupted."""

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
EXIT_UNJUDGED = 4
EXIT_INTERRUPTED = 130
