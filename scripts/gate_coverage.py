"""The gate's figures in docs/statistics.md: interval coverage, false alarms and power, measured.

Every trial draws seeded synthetic runs (per-process levels with a known spread, samples around
them) and judges them with the very function every command uses (`gate.decide`, through
`dsabench.analysis.power`). Tables, in the order docs/statistics.md gives them:

- coverage: share of A/A trials whose 95% interval holds the true ratio, at 1, 2, 3, 5 processes a
  side and between-process spreads of 0.2%, 3% and 25%, unpaired and paired;
- rates: A/A false alarms and power at the default 3% threshold;
- auto-rates: the same grid with --threshold auto;
- history-noise: one process a side, the noise from 3, 5 or 10 earlier runs at sigma 2%;
- auto: --threshold auto on the quietest cases (a 1% slowdown at 0.2% spread).

These are figures to read, not a test (tests/analysis/test_gate.py holds smaller seeded versions).

    python scripts/gate_coverage.py                  # every table, 2000 trials a cell (about 5 min on 2 cores)
    python scripts/gate_coverage.py --trials 300 --table coverage
"""

from __future__ import annotations

import sys

from dsabench.analysis.power import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--table" not in argv:
        argv += [a for name in ("coverage", "rates", "auto-rates", "history-noise", "auto") for a in ("--table", name)]
    raise SystemExit(main(argv))
