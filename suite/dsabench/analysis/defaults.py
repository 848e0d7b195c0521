"""The analysis defaults the command line offers, kept apart from the analysis: building the
parser imports this module, not pandas and scipy, so every verb starts seconds sooner."""

# A change smaller than this (relative, both directions) is "same": it is below what GPU clock
# and thermal drift move a median between two sessions on one machine, so a gate tighter than
# this would mostly measure the machine. Override with --threshold.
DEFAULT_THRESHOLD = 0.03

# A change point must split its segment into two sides that a two-sided t-test tells apart at
# this level. Ten times stricter than Otava's 0.001, because the p-value is computed after
# E-divisive picked the best of ~30 split points, so it understates the chance of a fluke: on
# flat 30-run series with 1-2% noise, 0.001 flagged 0.4-1.4% of series and 0.0001 none of 500,
# while a 6% step still shows at p ~ 1e-10 (docs/statistics.md, `python3 -m dsabench.analysis.power --table changepoints`).
MAX_PVALUE = 0.0001

# Smallest relative shift of the mean worth reporting (Otava's min_magnitude): below the 3%
# compare threshold, so a drift that compare keeps calling "undecided" still shows up here,
# and above the 1% run-to-run wobble of a median on one machine.
MIN_CHANGE = 0.02

# `--threshold auto`: each case's band from its own noise. The band is the width that keeps A/A
# false alarms at AUTO_FALSE_ALARM (two-sided) given the interval's standard error and degrees of
# freedom (gate.band_of), and never below AUTO_FLOOR: the between-process spread of the quietest
# cases measured (CUDA Graph replays on an H200, 0.2%); a smaller change could not be confirmed by
# a rerun, and a larger floor costs the 1% changes of those cases (docs/statistics.md,
# scripts/gate_coverage.py --table auto).
AUTO = "auto"
AUTO_FALSE_ALARM = 0.01
AUTO_FLOOR = 0.002
