"""Does the NEXT chunk's probe catch the slow-mode chunks the chunk's own probe misses? (issue 22)

Each timed chunk carries a host speed probe timed just before it. The host's mode may switch
during or right after that probe, so a chunk with a fast probe can still run slow. The next chunk
of the same worker process (in start-time order; the interleaved impls and variants follow each
other back to back, ~0.5 ms apart) was preceded by a probe timed right after this chunk ended:
an "after" probe at no cost. Three rules, each over the probe, run delay and steal only (never
the chunk's own time):

  (1) evidence      host_steady.evidence_reasons empty (the gate's rule today)
  (2) +next         (1), and the next chunk's probe <= PROBE_SLOW x the reference
  (3) +prev+next    (2), and the previous chunk's probe too

A neighbour counts only within NEIGHBOUR_GAP_S of the chunk (same timed item); where none is, the
rule does without it. Truth (a reference, not the gate's rule): the level rule, which reads the
chunks' own times: a case side's chunk medians in the run split by two-means
(host_steady.side_levels); a chunk above the split is slow. A side with one level counts all
its chunks fast, so a side slow throughout is invisible to it. Probe reference: the case's
chunks (host_steady.probe_reference), per run for the per-run figures, over both runs for a pair,
as the gate takes it.

Per run and rule: miss (truth-slow chunks labelled steady / truth-slow), loss (truth-fast labelled
disturbed / truth-fast), and per case the gate's spread: ddof-1 SD of log process medians over the
kept chunks, a process kept only with >= MIN_STEADY_CHUNKS kept chunks and >= MIN_STEADY_SHARE of
its own (host_steady.steady_side's filter), else the fallback on all samples. Per pair of runs of
one set (same folder, same name but its number): eager cases `noisy` at 3%, the gate's pooled
spread over both sides (hierarchy.level_interval, no history), on the kept chunks or, with fewer
than 2 processes a side kept, on all samples as the gate falls back.

    python3 scripts/host_next_probe_eval.py [--runs-only] DIR_OR_TAR.GZ...

A DIR is a run directory or a folder of them; a .tar.gz of run directories is unpacked into a
temporary folder. --runs-only: no pairs (runs that are not A/A, e.g. the gate's injected ones).
Benchmark figures for a reader, not a test.
"""

from __future__ import annotations

import itertools
import re
import sys
import tarfile
import tempfile
from bisect import bisect_right
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "suite"))

from dsabench.analysis import host_steady as hs  # noqa: E402
from dsabench.analysis.hierarchy import level_interval, log_levels  # noqa: E402
from dsabench.store.rundir import read_records  # noqa: E402

NEIGHBOUR_GAP_S = 0.05  # neighbours ~0.5 ms apart within an item; items are 0.2 s or more apart
NOISY = 0.03
RULES = ("evidence", "+next", "+prev+next")


def timelines(records: list[dict]) -> dict:
    """Per worker process (repeat, pid): its chunks' (start_s, end_s, probe_us), sorted by start."""
    out = defaultdict(list)
    for r in records:
        for c in ((r.get("timing") or {}).get("chunks") or ()):
            if c.get("start_s") is not None:
                out[_key(r)].append((c["start_s"], c["start_s"] + (c.get("host_ms") or 0.0) / 1e3, c.get("probe_us")))
    return {k: sorted(v) for k, v in out.items()}


def _key(r: dict) -> tuple:
    return (int(r.get("repeat") or 0), (r.get("worker") or {}).get("pid"))


def neighbours(line: list, start: float) -> tuple:
    """(previous, next) chunk's probe of the chunk starting at `start` (None: none within the gap)."""
    i = bisect_right([s for s, _, _ in line], start) - 1
    prev = line[i - 1][2] if i > 0 and start - line[i - 1][1] <= NEIGHBOUR_GAP_S else None
    nxt = line[i + 1][2] if i + 1 < len(line) and line[i + 1][0] - line[i][1] <= NEIGHBOUR_GAP_S else None
    return prev, nxt


def load(run_dir: Path) -> dict:
    """The run's ok eager case sides: case -> [(ProcessChunks, [(prev, next) probe per chunk])]."""
    records = read_records(run_dir)[0]
    lines = timelines(records)
    sides = defaultdict(list)
    for r in records:
        if r["status"] != "ok" or not r["case_id"].endswith(".eager"):
            continue
        p = hs.record_chunks(r)
        if p is None or p.rebuilt:
            continue
        line = lines[_key(r)]
        sides[r["case_id"]].append((p, [neighbours(line, e["start_s"]) for e in p.evidence]))
    return dict(sides)


def flags(side: list, ref: float, rule: str) -> list:
    """Per process, per chunk: kept (steady) by the rule."""
    ok = lambda probe: probe is None or probe <= hs.PROBE_SLOW * ref  # noqa: E731
    out = []
    for p, nb in side:
        f = []
        for ev, (prev, nxt) in zip(p.evidence, nb):
            keep = not hs.evidence_reasons(ev, ref)
            if rule != "evidence":
                keep = keep and ok(nxt)
            if rule == "+prev+next":
                keep = keep and ok(prev)
            f.append(keep)
        out.append(f)
    return out


def kept_groups(side: list, fl: list) -> list:
    """The gate's process filter (host_steady.kept_side) over the rule's kept chunks."""
    return hs.kept_side([p for p, _ in side], fl)[0]


def all_groups(side: list) -> list:
    return [[s for g in p.samples_ms for s in g] for p, _ in side]


def pct(x: float) -> str:
    return f"{x:.1%}" if x == x else "-"


def run_lines(name: str, sides: dict, pooled: dict) -> list:
    """The run's figures (module docstring); its chunk counts per rule added to `pooled`."""
    cnt = {rule: defaultdict(int) for rule in RULES}
    sds = {rule: [] for rule in RULES}
    two, slow_total, fast_total = 0, 0, 0
    cond = defaultdict(lambda: [0, 0])  # evidence-steady chunks by next probe: [slow, all]
    for case, side in sorted(sides.items()):
        ps = [p for p, _ in side]
        ref = hs.probe_reference(ps)
        lv = hs.side_levels(ps)
        two += lv.split_ms is not None
        truth = [[lv.split_ms is not None and m > lv.split_ms for m in p.medians_ms] for p in ps]
        for rule in RULES:
            fl = flags(side, ref, rule)
            if rule == "evidence":  # the same chunks and processes as the gate's own filter
                assert kept_groups(side, fl) == hs.steady_side(ps, ref)[0], case
            for ts, fs in zip(truth, fl):
                for t, k in zip(ts, fs):
                    cnt[rule]["miss" if t and k else "loss" if not t and not k else "ok"] += 1
                    cnt[rule]["kept"] += k
            groups = kept_groups(side, fl)
            sds[rule].append(float(log_levels(groups).std(ddof=1)) if len(groups) >= 2 else None)
        for ts, (p, nb) in zip(truth, side):
            for t, ev, (_, nxt) in zip(ts, p.evidence, nb):
                if not hs.evidence_reasons(ev, ref):
                    k = "none" if nxt is None else "slow" if nxt > hs.PROBE_SLOW * ref else "fast"
                    cond[k][0] += t
                    cond[k][1] += 1
        slow_total += sum(map(sum, truth))
        fast_total += sum(len(t) - sum(t) for t in truth)
    chunks = slow_total + fast_total
    if not chunks:
        return [f"{name}: no ok eager case with chunk evidence"]
    out = [f"{name}: {len(sides)} eager cases, {chunks} chunks; {two} case sides with two levels; truth-slow "
           f"{slow_total} ({slow_total / chunks:.0%}). Evidence-steady chunks by the next probe: "
           + ", ".join(f"next {k} {s}/{n} slow ({pct(s / n) if n else '-'})" for k, (s, n) in sorted(cond.items()))]
    for rule in RULES:
        c, sd = cnt[rule], [x for x in sds[rule] if x is not None]
        for k, v in (("miss", c["miss"]), ("slow", slow_total), ("loss", c["loss"]), ("fast", fast_total),
                     ("kept", c["kept"])):
            pooled.setdefault(rule, defaultdict(int))[k] += v
        out.append(f"  {rule:11s} miss {c['miss']:3d}/{slow_total:<3d} {pct(c['miss'] / slow_total if slow_total else float('nan')):>6s}"
                   f" | loss {c['loss']:3d}/{fast_total:<4d} {pct(c['loss'] / fast_total):>6s}"
                   f" | kept {c['kept']:4d}/{chunks} | slow among kept {pct(c['miss'] / c['kept'] if c['kept'] else float('nan')):>6s}"
                   f" | per-case SD median {pct(float(np.median(sd)) if sd else float('nan')):>5s},"
                   f" <= 3% {sum(x <= NOISY for x in sd):2d}/{len(sds[rule])}, fallback {len(sds[rule]) - len(sd)}")
    return out


def pair_lines(name_a: str, a: dict, name_b: str, b: dict) -> str:
    cases = sorted(set(a) & set(b))
    cells = []
    for rule in RULES:
        noisy, fallback = 0, 0
        for case in cases:
            ref = hs.probe_reference([p for p, _ in a[case] + b[case]])
            ga, gb = (kept_groups(s, flags(s, ref, rule)) for s in (a[case], b[case]))
            if len(ga) < 2 or len(gb) < 2:
                ga, gb = all_groups(a[case]), all_groups(b[case])
                fallback += 1
            iv = level_interval(ga, gb)
            noisy += iv is not None and iv.spread > NOISY
        cells.append(f"{rule} {noisy:2d}/{len(cases)} noisy ({fallback} fall back)")
    return f"  {name_a} vs {name_b}: " + "; ".join(cells)


def run_dirs(arg: str, tmp: Path) -> list:
    path = Path(arg)
    if path.name.endswith(".tar.gz"):
        dest = tmp / path.name.removesuffix(".tar.gz")
        with tarfile.open(path) as tar:
            tar.extractall(dest, filter="data")
        path = dest
    if (path / "cases.jsonl").exists():
        return [path]
    found = sorted(d for d in path.iterdir() if (d / "cases.jsonl").exists())
    if not found:
        raise SystemExit(f"{arg}: no run directory (cases.jsonl) in it; expected a run dir, a folder or .tar.gz of them")
    return found


def main(argv: list) -> int:
    runs_only = "--runs-only" in argv
    argv = [a for a in argv if a != "--runs-only"]
    if not argv:
        raise SystemExit(__doc__.split("\n\n")[-2])
    print(f"python3 scripts/host_next_probe_eval.py {' '.join(argv)}\nrules: {', '.join(RULES)} (module docstring); "
          f"truth: the level rule; neighbour within {NEIGHBOUR_GAP_S * 1e3:.0f} ms in the same process; probe line "
          f"{hs.PROBE_SLOW}x the reference\n")
    with tempfile.TemporaryDirectory() as tmp:
        sets = defaultdict(dict)
        for arg in argv:
            for d in run_dirs(arg, Path(tmp)):
                label = (str(d.resolve().relative_to(REPO)) if d.resolve().is_relative_to(REPO)
                         else f"{arg}:{d.name}")
                sets[(str(d.parent), re.sub(r"-?\d+$", "", d.name))][label] = load(d)
        print("== per run: miss (truth-slow kept), loss (truth-fast set aside), per-case gate spread\n")
        pooled = {}
        for runs in sets.values():
            for label, sides in runs.items():
                print("\n".join(run_lines(label, sides, pooled)))
        print("\npooled over these runs:")
        for rule, c in pooled.items():
            print(f"  {rule:11s} miss {c['miss']}/{c['slow']} {pct(c['miss'] / c['slow'])}, loss {c['loss']}/{c['fast']} "
                  f"{pct(c['loss'] / c['fast'])}, slow among kept {c['miss']}/{c['kept']} {pct(c['miss'] / c['kept'])}")
        if not runs_only:
            print("\n== per pair of runs of one set: eager cases noisy at 3% (the gate's pooled spread)\n")
        for runs in ({} if runs_only else sets).values():
            for (la, a), (lb, b) in itertools.combinations(runs.items(), 2):
                print(pair_lines(la, a, lb, b))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
