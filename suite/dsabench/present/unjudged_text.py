"""What `compare` says on stderr, in two lines, of the cases it could not judge that may hide a
material slowdown (`analysis.unjudged`): how many, the largest slowdown their intervals allow and
where, why, and what would judge them. The same facts as --json's "unjudged" entries."""

from __future__ import annotations

import math
from typing import Sequence

from dsabench.analysis.calibrate import POWER
from dsabench.analysis.unjudged import MOST_PROCESSES, Unjudged

_WHY = {
    "noisy": "noisy",
    "crosses": "interval crossing the band",
    "one_process": "one process a side (no spread between processes measured)",
    "too_few_samples": "too few samples (no interval)",
    "host_changed": "withheld: the host differs between the runs (probe, waiting for a CPU, or two machines; host_changed)",
    "not_comparable": "not comparable (another clock, or no timing samples, on one side)",
    "incomplete": "not measured: CAND's run holds less than it planned",
    "nothing_compared": "no case measured on both sides (other cases, impls or kernels)",
}


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def _why(items: Sequence[Unjudged]) -> str:
    parts = []
    for kind, words in _WHY.items():
        some = [u for u in items if u.kind == kind]
        if not some:
            continue
        if kind == "noisy":
            spreads = sorted(u.spread for u in some if math.isfinite(u.spread))
            if spreads:
                span = f"{spreads[0] * 100:.1f}%" if len(spreads) == 1 or spreads[0] == spreads[-1] else \
                    f"{spreads[0] * 100:.1f}-{spreads[-1] * 100:.1f}%"
                words = f"noisy (processes spread {span})"
        parts.append(f"{len(some)} {words}")
    return ", ".join(parts)


def _advice(items: Sequence[Unjudged], within_run: bool) -> str:
    out = []
    wide = [u for u in items if u.kind in ("noisy", "crosses")]
    if wide:
        u = wide[0]  # the one that allows the largest slowdown
        name = "that case" if u is items[0] else u.case
        if u.repeats is not None:
            out.append(f"about --repeats {u.repeats} worker processes a side (at that count {name}'s spread would "
                       f"judge the {_pct(u.ratio)} it measured {POWER * 100:.0f}% of the time, as calibrate sizes a "
                       "detectable change)")
        else:
            out.append(f"more than {MOST_PROCESSES} worker processes a side would be needed to judge the "
                       f"{_pct(u.ratio)} {name} measured")
    if any(u.kind == "one_process" for u in items):
        out.append("--repeats 2 or more")
    if any(u.kind == "too_few_samples" for u in items):
        out.append("more samples a case")
    if any(u.kind == "not_comparable" for u in items):
        out.append("timing samples on both sides, taken with one clock")
    if any(u.kind == "host_changed" for u in items):
        out.append("rerun both on a quiet host, one machine for both")
    if any(u.kind == "incomplete" for u in items):
        out.append("the whole plan measured (dsabench run --resume on the run that stopped)" if within_run else
                   "CAND's whole plan measured (dsabench run --resume CAND, every shard gathered)")
    if any(u.kind == "nothing_compared" for u in items):
        out.append("runs of the same cases, impls and kernels")
    text = "; ".join(out)
    if not within_run:
        text += ", or compare within one run (--impls, --variants)"
        text += ", or with earlier runs (--history)" if wide else ""
    return text.removeprefix(", or ")


def unjudged_lines(items: Sequence[Unjudged], edge: float, within_run: bool) -> list[str]:
    """Two lines (none where every case was judged, or rules a material slowdown out)."""
    if not items:
        return []
    worst = items[0]
    allow = "any slowdown (no interval)" if math.isnan(worst.ci_high) else f"up to {_pct(worst.ci_high)}"
    return [f"dsabench compare: {len(items)} case(s) not judged that may hide a slowdown of {_pct(edge)} or more; "
            f"their intervals allow {allow} ({worst.case}); why: {_why(items)}",
            f"  what would judge them: {_advice(items, within_run)}"]
