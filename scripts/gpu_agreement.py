"""Do two GPUs of one host measure the same? Per case, the median of every ok sample a run took on
one GPU, put side by side:

- run to run on GPU 0: the one-GPU runs of two device calls (the spread a user sees anyway);
- GPU 1 against GPU 0: the two-GPU runs' records from GPU 1 against the one-GPU runs (GPU 0);
- GPU 0 while GPU 1 works against GPU 0 alone: what a busy neighbour on the host costs;
- within one run: a case's two worker processes, on GPU 0 and GPU 1 of a two-GPU run (where each
  device measures the repeat of the cases the other measured), against its two processes on GPU 0
  of a one-GPU run (the between-process spread the verdicts' intervals include).

Graph and eager cases apart: a graph replay is device time; an eager forward is mostly the host
launching kernels, which a second worker on the same host can slow.

Prints, for each pairing, how many cases were compared and the median, 90th percentile and
largest |difference| of medians, and the cases whose GPU-1 difference is larger than the same
case's own run-to-run difference on GPU 0 by more than 1 percentage point.

    python3 scripts/gpu_agreement.py ONE_GPU_A ONE_GPU_B TWO_GPU_A TWO_GPU_B
    python3 scripts/gpu_agreement.py ONE_GPU TWO_GPU      # the within-run pairings only
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from dsabench.store import rundir as store


def medians(run: Path, gpu: int | None = None, repeat: int | None = None) -> dict[str, float]:
    """Per case, the median of its ok samples on that GPU (None: any) from that repeat (None: all)."""
    samples: dict[str, list[float]] = {}
    records, _ = store.read_records(run)
    for r in records:
        if (r["status"] == "ok" and r.get("timing") and gpu in (None, r["device"].get("index"))
                and repeat in (None, r.get("repeat"))):
            samples.setdefault(r["case_id"], []).extend(r["timing"]["samples_ms"])
    return {c: statistics.median(s) for c, s in samples.items()}


def diffs(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {c: b[c] / a[c] - 1 for c in a.keys() & b.keys()}


def summary(name: str, d: dict[str, float]) -> str:
    mags = sorted(abs(v) for v in d.values())
    if not mags:
        return f"{name}: no case in common"
    p90 = mags[min(len(mags) - 1, int(0.9 * len(mags)))]
    return (f"{name}: {len(mags)} cases; |difference of medians| median {100 * statistics.median(mags):.2f}%, "
            f"90th percentile {100 * p90:.2f}%, largest {100 * mags[-1]:.2f}%; signed median "
            f"{100 * statistics.median(d.values()):+.2f}%")


def pick(d: dict[str, float], kind: str) -> dict[str, float]:
    return {c: v for c, v in d.items() if c.endswith("." + kind)}


def within(name: str, one: Path, two: Path, kind: str) -> list[str]:
    return ["  " + summary(f"within one-GPU run {name}: process 2 vs process 1, both on GPU 0",
                           pick(diffs(medians(one, 0, 0), medians(one, 0, 1)), kind)),
            "  " + summary(f"within two-GPU run {name}: GPU 1's process vs GPU 0's",
                           pick(diffs(medians(two, 0), medians(two, 1)), kind))]


def main(argv: list[str]) -> int:
    if len(argv) == 2:
        for kind in ("graph", "eager"):
            print(f"{kind} cases")
            print("\n".join(within("A", Path(argv[0]), Path(argv[1]), kind)))
        return 0
    one_a, one_b, two_a, two_b = map(Path, argv)
    gpu0_a, gpu0_b = medians(one_a, 0), medians(one_b, 0)
    run_to_run = diffs(gpu0_a, gpu0_b)
    cross_a, cross_b = diffs(gpu0_a, medians(two_a, 1)), diffs(gpu0_b, medians(two_b, 1))
    for kind in ("graph", "eager"):
        print(f"{kind} cases")
        print("  " + summary("GPU 0, run to run (one-GPU runs A vs B)", pick(run_to_run, kind)))
        print("  " + summary("GPU 1 (two-GPU run A) vs GPU 0 (one-GPU run A)", pick(cross_a, kind)))
        print("  " + summary("GPU 1 (two-GPU run B) vs GPU 0 (one-GPU run B)", pick(cross_b, kind)))
        print("  " + summary("GPU 0 (two-GPU run A) vs GPU 0 (one-GPU run A)", pick(diffs(gpu0_a, medians(two_a, 0)), kind)))
        print("  " + summary("GPU 0 (two-GPU run B) vs GPU 0 (one-GPU run B)", pick(diffs(gpu0_b, medians(two_b, 0)), kind)))
        for name, one, two in (("A", one_a, two_a), ("B", one_b, two_b)):
            print("\n".join(within(name, one, two, kind)))
    worse = sorted((abs(v) - abs(run_to_run[c]), c, v, run_to_run[c])
                   for c, v in {**cross_a, **cross_b}.items() if c in run_to_run)
    beyond = [w for w in worse if w[0] > 0.01]
    print(f"cases whose GPU 1 difference exceeds their own GPU 0 run-to-run difference by > 1 point: "
          f"{len(beyond)} of {len(worse)} comparisons")
    for excess, c, v, r in beyond[-15:]:
        print(f"  {c}: GPU 1 {100 * v:+.2f}%, GPU 0 run to run {100 * r:+.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
