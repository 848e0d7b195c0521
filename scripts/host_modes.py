"""The host-steady rule (analysis/host_steady.py) applied to run directories: does it separate a
case's fast and slow levels, and what do the figures rest on once disturbed chunks are set aside.

    python3 scripts/host_modes.py RUN_DIR... [--filter REGEX] [--out FILE]

Per run: chunks (recorded, or rebuilt as blocks of the protocol's chunk size for runs before
schema 3) by kind of case (decode eager, other eager, graph); the disturbed share and its reasons;
for cases with two levels, where the chunks sit against the split (how empty the valley between
the levels is) and the slow/fast ratio; per worker process of a case, whether it mixed both levels,
was slow throughout or never slow; the between-process spread of a case's median over all chunks
and over steady chunks only; baseline/patched of each decode eager configuration from rounds where
both sides were steady, both slow, and all rounds; in runs that traced, the untraced second pass
against the traced first per kind of eager case. Benchmark figures for a reader, not a test.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suite"))

import numpy as np  # noqa: E402

from dsabench.analysis import host_steady as hs  # noqa: E402
from dsabench.store.rundir import read_manifest, read_records  # noqa: E402


def kind(case_id: str) -> str:
    if case_id.endswith(".graph"):
        return "graph"
    return "decode eager" if case_id.startswith("decode") else "other eager"


def pct(xs, q):
    return float(np.percentile(xs, q)) if len(xs) else float("nan")


def spread(values) -> float:
    """SD of process medians over their mean (the issue's between-process spread)."""
    return statistics.pstdev(values) / statistics.fmean(values) if len(values) > 1 else float("nan")


def analyse(run_dir: Path, filt: re.Pattern | None) -> list[str]:
    manifest = read_manifest(run_dir)
    chunk = (manifest.get("protocol") or {}).get("chunk")
    records, _ = read_records(run_dir)
    sides: dict[tuple, list] = defaultdict(list)
    busy: dict[tuple, float] = {}
    for r in records:
        if r["status"] != "ok" or filt and not filt.search(r["case_id"]):
            continue
        p = hs.record_chunks(r, chunk)
        if p is None:
            continue
        key = (r["case_id"], r.get("impl") or "mirror")
        sides[key].append(p)
        t = r.get("trace") or {}
        if t.get("device_events"):
            mem = t.get("memcpy") or {}
            busy[key] = t.get("kernel_ms", 0.0) + sum((m or {}).get("ms", 0.0) for m in mem.values()) + \
                (t.get("memset") or {}).get("ms", 0.0)
    ref = hs.probe_reference(p for ps in sides.values() for p in ps)
    out = [f"== {run_dir.name}: {len(sides)} case sides, protocol chunk {chunk}, "
           f"{'recorded' if not any(p.rebuilt for ps in sides.values() for p in ps) else 'rebuilt'} chunks, "
           f"reference probe {f'{ref:.1f} us' if ref else 'none (no probe recorded)'}"]
    by_kind: dict[str, list] = defaultdict(list)
    for key, ps in sides.items():
        by_kind[kind(key[0])].append((key, ps, hs.case_host(ps, ref, busy.get(key))))
    for k in ("decode eager", "other eager", "graph"):
        rows = by_kind.get(k, [])
        if not rows:
            continue
        n = sum(h.chunks for _, _, h in rows)
        d = sum(h.disturbed for _, _, h in rows)
        reasons = defaultdict(int)
        for _, _, h in rows:
            for name, c in h.by_reason.items():
                reasons[name] += c
        two = [h for _, _, h in rows if h.levels.split_ms is not None]
        shares = [h.host_bound_share for _, _, h in rows if h.host_bound_share is not None]
        out.append(f"  {k}: {len(rows)} case sides, {n} chunks, {d} disturbed ({d / max(n, 1):.0%}; "
                   f"{', '.join(f'{r} {c}' for r, c in sorted(reasons.items())) or 'none'}); "
                   f"{len(two)} sides show two levels"
                   + (f"; host-bound share median {statistics.median(shares):.0%}" if shares else ""))
        if two:
            out += _levels(rows)
        out += _processes(rows)
    out += _steady_ratios(by_kind.get("decode eager", []), ref)
    if (manifest.get("options") or {}).get("profile_iters"):
        out += _passes(by_kind, ref)
    return out


def _passes(by_kind, ref) -> list[str]:
    """The untraced second pass against the first, which traced (--profile-iters > 0, repeat 0):
    per kind of eager case, the signed median over cases of pass 1's median over pass 0's, over
    all chunks and over steady ones, and each pass's share of upper-level chunks."""
    out = []
    for k in ("decode eager", "other eager"):
        diffs, steady, upper = [], [], ([], [])
        for _, ps, h in by_kind.get(k, []):
            passes = {p.key[0]: p for p in ps}
            if 0 not in passes or 1 not in passes:
                continue
            two = (passes[0], passes[1])
            diffs.append(np.median([s for g in two[1].samples_ms for s in g]) /
                         np.median([s for g in two[0].samples_ms for s in g]) - 1)
            kept = []
            for i, p in enumerate(two):
                flags = hs.classify(p, h.levels, ref)
                upper[i].append(np.mean(["level" in c.reasons for c in flags]))
                kept.append([s for g, c in zip(p.samples_ms, flags) if c.steady for s in g])
            if kept[0] and kept[1]:
                steady.append(np.median(kept[1]) / np.median(kept[0]) - 1)
        if diffs:
            out.append(f"  {k}, pass 1 (never traced) vs pass 0 (traced first), signed median over {len(diffs)} cases: "
                       f"all chunks {pct(diffs, 50):+.1%}, steady chunks {pct(steady, 50):+.1%} ({len(steady)} cases); "
                       f"upper-level share pass 0 {np.mean(upper[0]):.2f}, pass 1 {np.mean(upper[1]):.2f}")
    return out


def _levels(rows) -> list[str]:
    """Where chunks sit against their side's split, in units of the split (log scale)."""
    pos, gaps = [], []
    for _, ps, h in rows:
        lv = h.levels
        if lv.split_ms is None:
            continue
        gaps.append(lv.slow_ms / lv.fast_ms)
        pos += [m / lv.split_ms for p in ps for m in p.medians_ms]
    pos = np.asarray(pos)
    near = float(np.mean(np.abs(np.log(pos)) < np.log(1.05)))
    lo, hi = pos[pos <= 1], pos[pos > 1]
    return [f"    two-level sides: slow/fast {pct(gaps, 50):.2f}x (p10 {pct(gaps, 10):.2f}, p90 {pct(gaps, 90):.2f}); "
            f"chunks below the split at {pct(lo, 50):.2f}x of it (p10-p90 {pct(lo, 10):.2f}-{pct(lo, 90):.2f}), "
            f"above at {pct(hi, 50):.2f}x (p10-p90 {pct(hi, 10):.2f}-{pct(hi, 90):.2f}); "
            f"{near:.1%} of chunks within 5% of the split"]


def _processes(rows) -> list[str]:
    mixed = slow = never = 0
    all_spread, steady_spread = [], []
    for _, ps, h in rows:
        lv = h.levels
        meds, steady_meds = [], []
        for p in ps:
            flags = [c.steady for c in hs.classify(p, lv, None)]
            if lv.split_ms is not None:
                mixed += 0 < sum(flags) < len(flags)
                slow += not any(flags)
                never += all(flags)
            meds.append(float(np.median([s for g in p.samples_ms for s in g])))
        groups = hs.steady_groups(ps, None)
        if len(ps) > 1:
            all_spread.append(spread(meds))
        if len(groups) > 1:
            steady_spread.append(spread([float(np.median(g)) for g in groups]))
    n = mixed + slow + never
    line = []
    if n:
        line.append(f"    processes of two-level sides: {mixed / n:.0%} mix both levels, {slow / n:.0%} slow throughout, "
                    f"{never / n:.0%} never slow ({n})")
    if all_spread:
        line.append(f"    between-process spread (SD of process medians / mean), median over sides: all chunks "
                    f"{pct(all_spread, 50):.1%} (p90 {pct(all_spread, 90):.1%}), steady chunks "
                    f"{pct(steady_spread, 50):.1%} (p90 {pct(steady_spread, 90):.1%})")
    return line


def _steady_ratios(rows, ref) -> list[str]:
    """baseline/patched per decode eager configuration: both steady, both disturbed, all rounds."""
    by_group: dict[str, dict] = defaultdict(dict)
    for (case_id, impl), ps, _ in rows:
        variant = case_id.rsplit(".", 2)[-2]
        by_group[(case_id.rsplit(".", 2)[0], impl)][variant] = ps
    fast, slow, every, used = [], [], [], []
    for sides in by_group.values():
        if "tensor-contiguous" not in sides or "scalar-view" not in sides:
            continue
        rr = hs.round_ratios(sides["scalar-view"], sides["tensor-contiguous"], ref)  # baseline/patched
        ff = [r.ratio for r in rr if r.base.steady and r.cand.steady]
        ss = [r.ratio for r in rr if not r.base.steady and not r.cand.steady]
        if ff:
            fast.append(statistics.median(ff))
            used.append(len(ff) / len(rr))
        if ss:
            slow.append(statistics.median(ss))
        if rr:
            every.append(statistics.median([r.ratio for r in rr]))
    if not every:
        return []
    return [f"  baseline/patched, decode eager, median over {len(every)} configurations: both steady "
            f"{pct(fast, 50):.3f} ({len(fast)} configs, {pct(used, 50):.0%} of rounds used), both disturbed "
            f"{pct(slow, 50):.3f} ({len(slow)} configs), all rounds {pct(every, 50):.3f}"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--filter", type=re.compile)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    lines = [f"rule: analysis/host_steady.py (PROBE_SLOW {hs.PROBE_SLOW}, SHARE_LIMIT {hs.SHARE_LIMIT}, "
             f"LEVEL_GAP {hs.LEVEL_GAP}, LEVEL_R2 {hs.LEVEL_R2}, LEVEL_MIN_CHUNKS {hs.LEVEL_MIN_CHUNKS})"]
    for run in args.runs:
        lines += analyse(run, args.filter)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
