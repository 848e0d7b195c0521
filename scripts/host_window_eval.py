"""How long a process must time an eager case before two processes agree (issue 22): windows of n
consecutive chunks drawn from the long chunk series of scripts/host_probes_gpu.py, each process's
level estimated in its window, and the two processes' levels compared.

    python3 scripts/host_window_eval.py results/h200-2026-12-03d/probes/chunks.tar.xz

Per variant and window length n (chunks of 10 forwards), per estimator: the median over 400 random
window pairs of the per-process spread |log(a / b)| / sqrt(2) (the SD of two log levels), and the
share of pairs within 3%. Estimators: the median of all chunk medians; of the chunks the
evidence calls steady (interpreter probe <= 1.3x, memory probe <= 2x their 2% quantiles, as
analysis/chunk_evidence.py); the 25% quantile of those; the 10% quantile of all. Benchmark figures
for a reader, not a test.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from collections import defaultdict

import numpy as np

WINDOWS = (17, 50, 100, 200, 400)
DRAWS = 400
TARGET = 0.03


def load(path: str) -> list[dict]:
    rows = []
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            if member.name.endswith(".jsonl"):
                rows += [json.loads(line) for line in io.TextIOWrapper(tar.extractfile(member))]
    return rows


def estimators(rows: list[dict]):
    l1 = np.quantile([r["probe_us"] for r in rows], 0.02)
    mem = np.quantile([r["mem_us"] for r in rows], 0.02)

    def steady(rs):
        return np.array([r["median_ms"] for r in rs if r["probe_us"] <= 1.3 * l1 and r["mem_us"] <= 2 * mem])

    def all_of(rs):
        return np.array([r["median_ms"] for r in rs])

    return {
        "median": lambda rs: float(np.median(all_of(rs))),
        "steady median": lambda rs: float(np.median(s)) if (s := steady(rs)).size >= 3 else np.nan,
        "steady p25": lambda rs: float(np.quantile(s, 0.25)) if (s := steady(rs)).size >= 3 else np.nan,
        "p10": lambda rs: float(np.quantile(all_of(rs), 0.1)),
    }


def main(argv: list) -> int:
    rows = load(argv[0])
    by = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r["pid"], r["n"])):
        by[(r["pid"], r["variant"])].append(r)
    pids = sorted({r["pid"] for r in rows})
    if len(pids) != 2:
        raise SystemExit(f"expected the chunks of two processes, found {len(pids)}")
    est = estimators(rows)
    rng = np.random.default_rng(0)
    print(f"{len(rows)} chunks of processes {pids}; per window: median spread / share within {TARGET:.0%}")
    for variant in sorted({r["variant"] for r in rows}):
        for n in WINDOWS:
            cells = []
            for name, f in est.items():
                d = []
                for _ in range(DRAWS):
                    levels = []
                    for pid in pids:
                        rs = by[(pid, variant)]
                        start = int(rng.integers(0, max(1, len(rs) - n)))
                        levels.append(f(rs[start:start + n]))
                    if not np.isnan(levels).any():
                        d.append(abs(np.log(levels[0] / levels[1])) / np.sqrt(2))
                d = np.array(d)
                cells.append(f"{name} {np.median(d) * 100:.1f}% / {np.mean(d <= TARGET):.0%}" if d.size else f"{name} -")
            print(f"{variant:18s} n={n:4d}  " + " | ".join(cells))
        print(f"{variant:18s} whole series: " + " | ".join(
            f"{name} {abs(np.log(f(by[(pids[0], variant)]) / f(by[(pids[1], variant)]))) / np.sqrt(2) * 100:.1f}%"
            for name, f in est.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
