"""The host speed probe's level per run: what `host_change`'s probe line (1.3x between two runs'
medians) has to stand clear of. For each run directory given: the reference probe (the 2% quantile
over every chunk of its eager cases, as host_steady.probe_reference), the median of the chunks
within 1.3x of it (the fast level), the share of chunks there, and the median of all chunks.

    python3 scripts/probe_levels.py RUN_DIR...      e.g. results/h200-2026-12-03/gate/gate/gate-*

Reads cases.jsonl only (schema 3 chunks with probe_us); the last line gives the fast levels' range.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REF_QUANTILE, SLOW = 0.02, 1.3  # host_steady.PROBE_REF_QUANTILE, PROBE_SLOW


def probes(run: Path) -> np.ndarray:
    out = []
    for line in (run / "cases.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("status") == "ok" and not (r.get("params") or {}).get("graph"):
            out += [c["probe_us"] for c in (r.get("timing") or {}).get("chunks") or [] if c.get("probe_us")]
    return np.asarray(out, dtype=float)


def main(argv: list[str]) -> int:
    if not argv:
        sys.exit(__doc__)
    fast_levels = []
    for name in argv:
        p = probes(Path(name))
        if not p.size:
            print(f"{name}: no chunk with a probe (a run before schema 3?)")
            continue
        ref = float(np.quantile(p, REF_QUANTILE))
        fast = p[p <= SLOW * ref]
        fast_levels.append(float(np.median(fast)))
        print(f"{name}: reference {ref:.1f} us, fast level {fast_levels[-1]:.1f} us ({fast.size / p.size:.0%} of "
              f"{p.size} chunks), all chunks' median {np.median(p):.1f} us")
    if fast_levels:
        lo, hi = min(fast_levels), max(fast_levels)
        print(f"fast levels over {len(fast_levels)} runs: {lo:.1f}-{hi:.1f} us ({hi / lo - 1:.1%} apart)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
