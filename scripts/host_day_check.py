"""What the host evidence of eager runs says, per run: why chunks were disturbed (probe, run delay,
steal), how slow the probe read against the run's reference, and whether a stricter probe line
would leave processes closer together (the between-process spread of each case's steady-chunk
median, per probe line). Benchmark figures for a reader, not a test.

    python3 scripts/host_day_check.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from host_confirm import hs, load  # noqa: E402  (the run's eager sides and probe reference, read as host_confirm reads them)

LINES = (1.05, 1.1, 1.15, 1.2, 1.3, None)  # probe / reference; None: every chunk


def spread(by_case: dict, ref: float, line: float | None) -> tuple[float, int, float]:
    """Median over cases of the SD of log steady-chunk medians between processes; cases with two
    processes of 3+ kept chunks; the share of chunks kept."""
    sds, kept, total = [], 0, 0
    for procs in by_case.values():
        meds = []
        for p in procs:
            keep = [m for m, ev in zip(p.medians_ms, p.evidence)
                    if line is None or (ev.get("probe_us") and ev["probe_us"] <= line * ref)]
            kept, total = kept + len(keep), total + len(p.medians_ms)
            if len(keep) >= 3:
                meds.append(float(np.median(keep)))
        if len(meds) >= 2:
            sds.append(float(np.std(np.log(meds), ddof=1)))
    return (float(np.median(sds)) if sds else float("nan")), len(sds), kept / max(total, 1)


def main(runs: list[str]) -> None:
    for name in runs:
        run = load(Path(name))
        by_case, ref = run["sides"], run["ref"]
        procs = [p for ps in by_case.values() for p in ps]
        if ref is None:
            print(f"{run['dir'].name}: no eager chunk with a probe")
            continue
        reasons, chunks, waits, probes = collections.Counter(), 0, [], []
        for p in procs:
            for ev in p.evidence:
                chunks += 1
                reasons.update(hs.evidence_reasons(ev, ref))
                if ev.get("host_ms"):
                    waits.append(((ev.get("run_delay_ms") or 0) + (ev.get("steal_ms") or 0)) / ev["host_ms"])
                if ev.get("probe_us"):
                    probes.append(ev["probe_us"] / ref)
        print(f"{run['dir'].name}: {chunks} eager chunks, {len(by_case)} cases; probe reference {ref:.1f} us; disturbed by "
              + (", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "nothing")
              + f"; waiting for a CPU median {np.median(waits):.1%}, p90 {np.quantile(waits, 0.9):.1%}"
              + f"; probe / reference median {np.median(probes):.2f}, p90 {np.quantile(probes, 0.9):.2f}")
        for line in LINES:
            sd, cases, share = spread(by_case, ref, line)
            label = "every chunk" if line is None else f"probe <= {line:.2f}x"
            print(f"  {label:<16} between-process spread median {sd:.1%} over {cases} cases; chunks kept {share:.0%}")


if __name__ == "__main__":
    main(sys.argv[1:])
