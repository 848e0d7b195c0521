"""The gate's figures in docs/statistics.md: interval coverage, false alarms and power, measured.

Every trial draws seeded synthetic runs (per-process levels with a known spread, samples around
them) and judges them with the very function every command uses (`gate.decide`, through
`dsabench.analysis.power`). Tables, in the order docs/statistics.md gives them:

- coverage: share of A/A trials whose 95% interval holds the true ratio, at 1, 2, 3, 5 processes a
  side and between-process spreads of 0.2%, 3% and 25%, unpaired and paired;
- rates: A/A false alarms and power at the default 3% threshold;
- auto-rates: the same grid with --threshold auto;
- history-noise: one process a side, the noise from 3, 5 or 10 earlier runs at sigma 2%;
- auto: --threshold auto on the quietest cases (a 1% slowdown at 0.2% spread);
- host: eager cases across runs with a host slow mode, judged on all samples and on their
  host-steady chunks (dsabench.analysis.host_power; at most 1000 trials a cell).

These are figures to read, not a test (tests/analysis/test_gate.py holds smaller seeded versions).

    python scripts/gate_coverage.py                  # every table, 2000 trials a cell (about 5 min on 2 cores)
    python scripts/gate_coverage.py --trials 300 --table coverage
"""

from __future__ import annotations

import sys

import time

from dsabench.analysis.power import main


def host(argv: list[str]) -> None:
    """The host table (dsabench.analysis.host_power), which power's own command does not know."""
    from dsabench.analysis.host_power import host_table

    trials = int(argv[argv.index("--trials") + 1]) if "--trials" in argv else 1000
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
    started = time.perf_counter()
    print(f"## host\n\n{host_table(min(trials, 1000), seed)}\n\n{min(trials, 1000)} trials per cell, seed {seed}; "
          f"{time.perf_counter() - started:.0f} s\n", flush=True)


if __name__ == "__main__":
    argv = sys.argv[1:]
    tables = [argv[i + 1] for i, a in enumerate(argv) if a == "--table"] or [
        "coverage", "rates", "auto-rates", "history-noise", "auto", "host"]
    rest = [a for i, a in enumerate(argv) if a != "--table" and (i == 0 or argv[i - 1] != "--table")]
    others = [a for t in tables if t != "host" for a in ("--table", t)]
    code = main(rest + others) if others else 0
    if "host" in tables and code == 0:
        host(rest)
    raise SystemExit(code)
