"""Paired within-run comparisons on the H200's gate runs (results/h200-2026-12-03/gate/gate): every pair
of eager variants, in each of the six runs with eager cases (three A/A, +5%, +25%, +1.5%: an injected
run adds the same fraction to every variant, so its ratios are the A/A runs'), judged by the gate
(`gate.decide`, paired), as `compare --variants` judges them. No truth is known for most pairs; what
can be checked: a pair called slower in one run and faster in another (a false call in one of them),
and the pairs of nearly identical code (view vs contiguous layout at one scale: one cache head, the
same bytes read) called changed at all. Run it on two checkouts (PYTHONPATH) to compare gates.

    python3 scripts/paired_runs_check.py [RUNS_DIR]
"""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from pathlib import Path

RUNS = Path(__file__).resolve().parents[1] / "results" / "h200-2026-12-03" / "gate" / "gate"
NAMES = ("gate-aa0", "gate-aa1", "gate-aa2", "gate-inj050", "gate-inj250", "gate-inj015")


def main(argv: list[str]) -> int:
    from dsabench.analysis.gate import decide
    from dsabench.store.frames import load_runs

    runs = Path(argv[0]) if argv else RUNS
    sides = {}
    for name in NAMES:
        df = load_runs([runs / name]).df
        df = df[(df["status"] == "ok") & (df["graph"] == False)]  # noqa: E712 - numpy bools
        sides[name] = {f"{r['scale_mode']}-{r['layout_mode']}": r["process_samples"] for r in df.to_dict("records")}
    variants = sorted(sides[NAMES[0]])
    total, flips, near = Counter(), 0, Counter()
    for a, b in itertools.combinations(variants, 2):
        verdicts = [decide(sides[n][a], sides[n][b], 0.03, paired=True) for n in NAMES]
        total.update(v.verdict for v in verdicts)
        flips += {"slower", "faster"} <= {v.verdict for v in verdicts}
        if a.split("-")[0] == b.split("-")[0]:
            near.update(v.verdict for v in verdicts)
        print(f"{b} / {a}: " + ", ".join(f"{v.verdict} {(v.ratio - 1) * 100:+.1f}%" for v in verdicts))
    pairs = len(variants) * (len(variants) - 1) // 2
    print(f"{pairs} variant pairs x {len(NAMES)} runs: {dict(sorted(total.items()))}; pairs called slower in one run and "
          f"faster in another: {flips}; view vs contiguous at one scale ({sum(near.values())}): {dict(sorted(near.items()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
