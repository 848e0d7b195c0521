"""The H200 host-mode experiment (scripts/gpu_host_modes.sh) read in depth, with the runs of the
same day that carry chunk evidence: which setting shrinks the eager slow mode, with intervals over
blocks and processes; what the probe sees of the cores; the picture per CPU; baseline/patched
from steady rounds per setting; and the same cases in unpinned runs against the `--pin probe` run.

    python3 scripts/host_modes_analysis.py HOST_MODES_DIR [RUN_DIR...] [--out FILE]

HOST_MODES_DIR holds hm-N.jsonl.gz (scripts/host_modes_gpu.py run: one JSON line per block and
variant) and pin-run.tar.gz (one `dsabench run --pin probe`, unpacked here into a temporary
directory). RUN_DIRs: other runs of the same host with chunk evidence (schema 3). Benchmark
figures for a reader, not a test; what they mean is in docs/design.md note 15.

Units. A block is one process timing one configuration's two variants interleaved for a few
seconds under one setting (pinned or not, the second worker's load on or off); a block's share is
the fraction of its chunks on the upper level of their configuration and variant (levels from every
block: analysis/host_steady.levels). The four settings cycle ABCD DCBA in each process, so each
setting's mean position in time is the same, and paired contrasts take a process's two blocks of
one configuration that sit next to each other in that order. Intervals: Student t over the pairs
(blocks) and over the processes' mean contrasts (3 degrees of freedom with 4 processes).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import tarfile
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suite"))

from dsabench.analysis import host_steady as hs  # noqa: E402
from dsabench.store.rundir import read_manifest, read_records  # noqa: E402

SETTINGS = [(False, False), (True, False), (False, True), (True, True)]  # (pinned, load): A B C D
NAMES = {(False, False): "unpinned, no load", (True, False): "pinned, no load", (False, True): "unpinned, load",
         (True, True): "pinned, load"}
# The cases the pin run measured, in every run that has them: pr's b64 c4096 decode, eager
SAME_CASE = re.compile(r"^decode\.b64\.c4096\.p0\.n(8192|65536)\.bs64\.ch1\.h128\.k2048\.s0\.hot\."
                       r"(tensor-contiguous|scalar-view)\.eager$")


def t_interval(xs) -> tuple[float, float, float]:
    x = np.asarray(xs, dtype=float)
    m = float(x.mean())
    if x.size < 2:
        return m, float("nan"), float("nan")
    h = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return m, m - h, m + h


def fmt_t(xs, signed: bool = False) -> str:
    m, lo, hi = t_interval(xs)
    f = "+.3f" if signed else ".3f"
    return f"{m:{f}} ({lo:{f}} to {hi:{f}})"


def load_blocks(hm_dir: Path) -> list[dict]:
    rows = []
    for path in sorted(hm_dir.glob("hm-*.jsonl.gz")):
        proc = int(re.search(r"hm-(\d+)", path.name).group(1))
        for line in gzip.open(path, "rt"):
            r = json.loads(line)
            t = r["timing"]
            r["proc"], r["pos"] = proc, r["block"] // 2
            r["_p"] = hs.process_chunks(t["samples_ms"], t["chunks"], key=(r["pid"], r["block"]))
            rows.append(r)
    return rows


def annotate(rows: list[dict]) -> tuple[float, dict]:
    """Each block's shares against its configuration's levels; the experiment's reference probe."""
    procs = defaultdict(list)
    for r in rows:
        procs[(r["config"], r["variant"])].append(r["_p"])
    levels = {k: hs.side_levels(v) for k, v in procs.items()}
    ref = hs.probe_reference(r["_p"] for r in rows)
    for r in rows:
        lv = levels[(r["config"], r["variant"])]
        meds = np.asarray(r["_p"].medians_ms)
        probes = np.asarray([c["probe_us"] for c in r["timing"]["chunks"]])
        classes = hs.classify(r["_p"], lv, ref)
        r["upper"] = meds > lv.split_ms
        r["slow_probe"] = probes > hs.PROBE_SLOW * ref
        r["up"], r["sp"] = float(r["upper"].mean()), float(r["slow_probe"].mean())
        r["dist"] = float(np.mean([not c.steady for c in classes]))
        r["rel"] = float(np.median(meds) / lv.fast_ms)
    return ref, levels


def block_value(rows, key) -> dict:
    """(proc, config, pos) -> the block's `key`, averaged over its two variants (timed together)."""
    acc = defaultdict(list)
    for r in rows:
        acc[(r["proc"], r["config"], r["pos"])].append(r[key])
    return {k: float(np.mean(v)) for k, v in acc.items()}


def settings_section(rows) -> list[str]:
    out = ["== 1. Which setting shrinks the slow mode (hm-0..3: 4 processes x 16 blocks of ~5 s, blocks of a "
           "configuration, both variants averaged)",
           "   share of a block's chunks on the upper level (up), with a slow probe (probe), disturbed by the rule "
           "(rule); median chunk over the fast level (level x); mean over blocks, 95% t interval over blocks"]
    configs = sorted({r["config"] for r in rows})
    vals = {k: block_value(rows, k) for k in ("up", "sp", "dist", "rel")}
    for s in SETTINGS:
        keys = [(p, c, pos) for (p, c, pos) in vals["up"] if _setting_of(rows, pos) == s]
        cells = "  ".join(f"{k} {fmt_t([vals[k][x] for x in keys])}" for k in ("up", "sp", "dist", "rel"))
        out.append(f"   {NAMES[s]:18s} n={len(keys):2d}  {cells}")
    out.append("   by position in each process (order A B C D D C B A; A = unpinned, no load, first and last): up, "
               "mean over processes and configurations [each block]")
    for pos in range(8):
        xs = [v for (p, c, q), v in sorted(vals["up"].items()) if q == pos]
        out.append(f"   pos {pos} {NAMES[_setting_of(rows, pos)]:18s} {np.mean(xs):.2f}  [{' '.join(f'{x:.2f}' for x in xs)}]")
    out.append("   paired contrasts (the two blocks of a process and configuration next to each other in the order): "
               "mean difference, 95% t interval over the 16 pairs | over the 4 processes' means")
    contrasts = [("pinned - unpinned, no load", [(1, 0), (6, 7)]), ("pinned - unpinned, load", [(3, 2), (4, 5)]),
                 ("load - no load, pinned", [(3, 1), (4, 6)]), ("load - no load, unpinned", [(2, 0), (5, 7)]),
                 ("pinned no load - unpinned load", [(1, 2), (6, 5)])]
    procs = sorted({r["proc"] for r in rows})
    for key in ("up", "sp", "rel"):
        for name, pairs in contrasts:
            v = vals[key]
            d = [v[(p, c, a)] - v[(p, c, b)] for p in procs for c in configs for a, b in pairs]
            per = [np.mean([v[(p, c, a)] - v[(p, c, b)] for c in configs for a, b in pairs]) for p in procs]
            out.append(f"   {key:5s} {name:31s} {fmt_t(d, True)} | {fmt_t(per, True)}  processes "
                       f"[{' '.join(f'{x:+.2f}' for x in per)}]")
    out.append("   traced first (--profile-iters 5) vs never traced, per setting: up, mean over blocks (95% t), "
               "traced processes " + ",".join(str(p) for p in sorted({r['proc'] for r in rows if r['traced']})))
    for s in SETTINGS:
        parts = []
        for traced in (False, True):
            xs = [v for (p, c, pos), v in vals["up"].items()
                  if _setting_of(rows, pos) == s and _traced(rows, p) == traced]
            parts.append(f"{'traced' if traced else 'never traced'} {fmt_t(xs)}")
        out.append(f"   {NAMES[s]:18s} " + "; ".join(parts))
    out.append("   fast level per process (median of its lower-level chunks, all settings), traced processes marked T; "
               "traced over never traced (means of the two)")
    for key in sorted({(r["config"], r["variant"]) for r in rows}):
        per = {}
        for p in procs:
            meds = [m for r in rows if r["proc"] == p and (r["config"], r["variant"]) == key
                    for m, u in zip(r["_p"].medians_ms, r["upper"]) if not u]
            per[p] = float(np.median(meds))
        t = np.mean([v for p, v in per.items() if _traced(rows, p)])
        u = np.mean([v for p, v in per.items() if not _traced(rows, p)])
        out.append(f"   {key[0]:6s} {key[1]:8s} " + "  ".join(
            f"{p}{'T' if _traced(rows, p) else ' '} {v:.4f}" for p, v in per.items()) + f"  | {t / u - 1:+.1%}")
    return out


def _setting_of(rows, pos) -> tuple[bool, bool]:
    r = next(r for r in rows if r["pos"] == pos)
    return r["pinned"], r["load"]


def _traced(rows, proc) -> bool:
    return next(r["traced"] for r in rows if r["proc"] == proc)


def probe_section(rows, ref) -> list[str]:
    thr = hs.PROBE_SLOW * ref
    out = [f"== 2. The probe and the cores (reference probe {ref:.1f} us, slow above {thr:.1f} us)"]
    base = {(r["proc"], r["block"]): r for r in rows if r["variant"] == "baseline"}
    snaps = [(k, {int(c): v for c, v in r["pin"]["probe_us"].items()}, r["pin"]["core"])
             for k, r in sorted(base.items()) if r["pin"]]
    n_slow = Counter(sum(v > thr for v in pu.values()) for _, pu, _ in snaps)
    out.append(f"   repins (pinned blocks, each probes the {len(snaps[0][1])} candidate cores): {len(snaps)}; slow cores "
               f"per repin: {', '.join(f'{k}: {n_slow[k]}' for k in sorted(n_slow))}")
    per_core = defaultdict(list)
    for _, pu, _ in snaps:
        for c, v in pu.items():
            per_core[c].append(v > thr)
    out.append("   each core slow at repin (share of repins): " + ", ".join(
        f"{c} {np.mean(v):.2f}" for c, v in sorted(per_core.items())))
    pairs = [(a[1][c] > thr, b[1][c] > thr) for a, b in zip(snaps, snaps[1:]) if a[0][0] == b[0][0] for c in a[1]]
    pairs = np.asarray(pairs)
    out.append(f"   memory over ~5 s (consecutive repins of a process, same core): P(slow | slow before) "
               f"{pairs[pairs[:, 0], 1].mean():.2f} (n {int(pairs[:, 0].sum())}), P(slow | fast before) "
               f"{pairs[~pairs[:, 0], 1].mean():.2f} (n {int((~pairs[:, 0]).sum())})")
    busy, idle = [], []
    for (proc, block), pu, _ in snaps:
        prev = base.get((proc, block - 1))
        if prev is None:
            continue
        was = prev["timing"]["chunks"][-1]["cpu"]
        for c, v in pu.items():
            (busy if c == was else idle).append(v > thr)
    table = [[sum(busy), len(busy) - sum(busy)], [sum(idle), len(idle) - sum(idle)]]
    out.append(f"   at a repin, the core the timing thread had just been busy on: slow {sum(busy)}/{len(busy)} "
               f"({np.mean(busy):.0%}); the idle candidates: {sum(idle)}/{len(idle)} ({np.mean(idle):.0%}); "
               f"Fisher exact p {stats.fisher_exact(table)[1]:.3f}")
    chosen = Counter(core for _, _, core in snaps)
    moved = sum(1 for (proc, block), _, core in snaps
                if (proc, block - 1) in base and base[(proc, block - 1)]["timing"]["chunks"][-1]["cpu"] != core)
    out.append(f"   cores chosen: {', '.join(f'{c} x{n}' for c, n in sorted(chosen.items()))}; the thread moved at "
               f"{moved} of {len(snaps)} repins")
    inblock = sorted(r["sp"] for r in base.values() if r["pin"])
    out.append(f"   the chosen core during its block: slow-probe share median {np.median(inblock):.2f}, p90 "
               f"{np.percentile(inblock, 90):.2f}, blocks over half slow {sum(x > 0.5 for x in inblock)} of "
               f"{len(inblock)}")
    out += _episodes(rows)
    out += _cause(rows)
    return out


def _episodes(rows) -> list[str]:
    """Slow stretches: 1-s bins of a process's chunks (both configurations' blocks in time order), a bin
    slow when most of its chunks sit on the upper level; runs of slow bins."""
    runs, slow_bins, bins = [], 0, 0
    for proc in sorted({r["proc"] for r in rows}):
        pts = sorted((c["start_s"], u) for r in rows if r["proc"] == proc
                     for c, u in zip(r["timing"]["chunks"], r["upper"]))
        t0 = pts[0][0]
        flags = defaultdict(list)
        for t, u in pts:
            flags[int(t - t0)].append(u)
        seq = [np.mean(flags[s]) > 0.5 if s in flags else None for s in range(int(pts[-1][0] - t0) + 1)]
        n = 0
        for f in seq + [False]:
            if f:
                n += 1
            elif n:
                runs.append(n)
                n = 0
        slow_bins += sum(1 for f in seq if f)
        bins += sum(1 for f in seq if f is not None)
    return [f"   slow stretches (1-s bins, most chunks on the upper level): {slow_bins} of {bins} bins; {len(runs)} "
            f"stretches, length median {np.median(runs):.0f} s, p90 {np.percentile(runs, 90):.0f} s, max {max(runs)} s"]


def _cause(rows) -> list[str]:
    ev = [(c, u) for r in rows for c, u in zip(r["timing"]["chunks"], r["upper"])]
    cpu_wall = [c["cpu_ms"] / c["host_ms"] for c, _ in ev if c["host_ms"] > 0]
    delay = sum(c["run_delay_ms"] or 0.0 for c, _ in ev) / sum(c["host_ms"] for c, _ in ev)
    steal = sum(c["steal_ms"] or 0.0 for c, _ in ev)
    moved = sum(c["cpu"] != c["cpu_end"] for c, _ in ev)
    up_probe = [c["probe_us"] for c, u in ev if u]
    lo_probe = [c["probe_us"] for c, u in ev if not u]
    ref = hs.probe_reference(r["_p"] for r in rows)
    slow_up = np.mean(np.asarray(up_probe) > hs.PROBE_SLOW * ref)
    slow_lo = np.mean(np.asarray(lo_probe) > hs.PROBE_SLOW * ref)
    return [f"   what the evidence rules out, over {len(ev)} chunks: thread CPU time over wall time p1/p50 "
            f"{np.percentile(cpu_wall, 1):.3f}/{np.median(cpu_wall):.3f}; run delay {delay:.4%} of host time; steal "
            f"{steal:.0f} ms in all; chunks that changed CPU {moved}",
            f"   probe on the upper level vs the lower: median {np.median(up_probe):.1f} vs {np.median(lo_probe):.1f} us "
            f"({np.median(up_probe) / np.median(lo_probe):.2f}x); slow probe in {slow_up:.0%} of upper-level chunks, "
            f"{slow_lo:.0%} of lower-level ones"]


def cpu_section(rows, levels, runs) -> list[str]:
    out = ["== 3. Per CPU", "   hm: chunks per CPU, their upper-level share, and the positions they came from"]
    by_cpu = defaultdict(lambda: [0, 0, Counter(), []])
    for r in rows:
        lv = levels[(r["config"], r["variant"])]
        for c, u, m in zip(r["timing"]["chunks"], r["upper"], r["_p"].medians_ms):
            e = by_cpu[c["cpu"]]
            e[0] += 1
            e[1] += bool(u)
            e[2][f"{'P' if r['pinned'] else 'u'}{r['pos']}"] += 1
            e[3].append(m / lv.fast_ms)
    for cpu, (n, up, where, rel) in sorted(by_cpu.items()):
        out.append(f"   cpu {cpu:2d}: {n:5d} chunks, upper {up / n:.0%}, median {np.median(rel):.2f}x the fast level; "
                   f"positions {dict(sorted(where.items()))}")
    out.append("   unpinned runs of the day: each worker process's CPU (in order of start) and, per CPU, decode eager "
               "chunks / upper level / slow probe")
    for run_dir, recs, m in runs:
        sides = defaultdict(list)
        for r in recs:
            if r["status"] == "ok" and re.search(r"^decode.*\.eager$", r["case_id"]) and r["timing"].get("chunks"):
                sides[(r["case_id"], r.get("impl"), r.get("kernel"))].append(r)
        if not sides:
            continue
        ref = hs.probe_reference(hs.record_chunks(r) for v in sides.values() for r in v)
        per = defaultdict(lambda: [0, 0, 0])
        first = {}
        for v in sides.values():
            lv = hs.side_levels([hs.record_chunks(r) for r in v])
            for r in v:
                ch = r["timing"]["chunks"]
                first.setdefault(r["worker"]["pid"], ch[0]["cpu"])
                for c, med in zip(ch, hs.record_chunks(r).medians_ms):
                    e = per[c["cpu"]]
                    e[0] += 1
                    e[1] += lv.split_ms is not None and med > lv.split_ms
                    e[2] += (c.get("probe_us") or 0) > hs.PROBE_SLOW * ref
        workers = " ".join(str(first[p]) for p in sorted(first))
        out.append(f"   {run_dir.name:16s} pin {m['options'].get('pin', 'off'):5s} workers on {workers:9s} | " + "  ".join(
            f"cpu {c}: {n}/{u / n:.0%}/{s / n:.0%}" for c, (n, u, s) in sorted(per.items())))
    return out


def ratio_section(rows) -> list[str]:
    out = ["== 4. baseline/patched from rounds where both sides were steady, per setting: per block the median of "
           "its rounds' ratios; mean over blocks, 95% t interval over blocks (rounds used of all)"]
    ref = hs.probe_reference(r["_p"] for r in rows)
    blocks = defaultdict(dict)
    for r in rows:
        blocks[(r["proc"], r["block"])][r["variant"]] = r
    for config in sorted({r["config"] for r in rows}):
        for s in SETTINGS:
            steady, both, every, used, total = [], [], [], 0, 0
            sel = [b for b in blocks.values() if b["baseline"]["config"] == config
                   and (b["baseline"]["pinned"], b["baseline"]["load"]) == s]
            base = [b["baseline"]["_p"] for b in sel]
            cand = [b["patched"]["_p"] for b in sel]
            rr = hs.round_ratios(cand, base, ref)  # patched as base: patched/baseline inverted below
            by_block = defaultdict(list)
            for x in rr:
                by_block[x.key].append(x)
            for xs in by_block.values():
                ok = [x.ratio for x in xs if x.base.steady and x.cand.steady]
                bad = [x.ratio for x in xs if not x.base.steady and not x.cand.steady]
                used, total = used + len(ok), total + len(xs)
                if ok:
                    steady.append(statistics.median(ok))
                if bad:
                    both.append(statistics.median(bad))
                every.append(statistics.median(x.ratio for x in xs))
            out.append(f"   {config:6s} {NAMES[s]:18s} steady {fmt_t(steady)} ({used}/{total}); both disturbed "
                       f"{fmt_t(both)} ({len(both)} blocks); all rounds {fmt_t(every)}")
    return out


def same_case_section(runs) -> list[str]:
    out = ["== 5. The pin run's cases in every run that has them (b64 c4096 eager, Triton): per process its median "
           "over all chunks @ its CPU / share of its chunks with a slow probe, the spread (SD of process medians / mean) over all chunks and over steady chunks, the "
           "disturbed share; baseline/patched from steady rounds (rounds used of all)"]
    for run_dir, recs, m in runs:
        sides = defaultdict(list)
        for r in recs:
            if r["status"] == "ok" and SAME_CASE.search(r["case_id"]) and r.get("kernel") == "triton":
                sides[r["case_id"]].append(hs.record_chunks(r, (m.get("protocol") or {}).get("chunk")))
        if not sides:
            continue
        pin = m["options"].get("pin", "off")
        if m["options"].get("inject_delay"):
            out.append(f"   {run_dir.name:16s} pin {pin:5s} left out: a delay injected into every forward (calibrate's)")
            continue
        ref = hs.probe_reference(p for ps in sides.values() for p in ps)
        for case, ps in sorted(sides.items()):
            meds = [float(np.median([s for g in p.samples_ms for s in g])) for p in ps]
            where = [f"{m:.3f}@{p.evidence[0].get('cpu')}/{np.mean([(e.get('probe_us') or 0) > hs.PROBE_SLOW * ref for e in p.evidence]):.0%}"
                     for m, p in zip(meds, ps)]
            steady = [float(np.median(g)) for g in hs.steady_groups(ps, ref)]
            h = hs.case_host(ps, ref)
            short = case.split(".")[4] + " " + case.rsplit(".", 2)[-2]
            out.append(f"   {run_dir.name:16s} pin {pin:5s} {short:23s} processes {' '.join(where)} "
                       f"| spread all {_pct(_spread(meds))}, steady {_pct(_spread(steady))} ({len(steady)} processes) "
                       f"| disturbed {h.disturbed_share:.0%}")
        for config in sorted({c.split(".")[4] for c in sides}):
            b = [v for k, v in sides.items() if f".{config}." in k and "tensor-contiguous" in k]
            c = [v for k, v in sides.items() if f".{config}." in k and "scalar-view" in k]
            if b and c:
                sr = hs.steady_ratio(c[0], b[0], ref)  # baseline over patched
                text = "no steady round" if sr is None else (
                    f"{sr.ratio:.3f} (95% {sr.ci_low:.3f}-{sr.ci_high:.3f}; {sr.rounds_used}/{sr.rounds_total} rounds)")
                out.append(f"   {run_dir.name:16s} pin {pin:5s} {config:23s} baseline/patched, steady rounds: {text}")
    return out


def _pct(x: float) -> str:
    return f"{x:5.1%}" if x == x else "    -"


def _spread(xs) -> float:
    return statistics.pstdev(xs) / statistics.fmean(xs) if len(xs) > 1 else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("host_modes", type=Path)
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    rows = load_blocks(args.host_modes)
    if not rows:
        raise SystemExit(f"{args.host_modes}: no hm-N.jsonl.gz; expected scripts/gpu_host_modes.sh's output")
    ref, levels = annotate(rows)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = list(args.runs)
        tar = args.host_modes / "pin-run.tar.gz"
        if tar.exists():
            with tarfile.open(tar) as t:
                t.extractall(tmp, filter="data")
            dirs.append(Path(tmp) / "pin-run")
        runs = [(d, read_records(d)[0], read_manifest(d)) for d in dirs]
        lines = ["python3 scripts/host_modes_analysis.py " + " ".join(sys.argv[1:] if argv is None else argv),
                 f"rule: analysis/host_steady.py (PROBE_SLOW {hs.PROBE_SLOW}, LEVEL_GAP {hs.LEVEL_GAP}, LEVEL_R2 "
                 f"{hs.LEVEL_R2}); {len(rows)} block sides from {len({r['proc'] for r in rows})} processes; levels "
                 "per configuration and variant: " + "; ".join(
                     f"{k[0]} {k[1]} {lv.fast_ms:.3f}/{lv.slow_ms:.3f} ms" for k, lv in sorted(levels.items()))]
        for part in (settings_section(rows), probe_section(rows, ref), cpu_section(rows, levels, runs),
                     ratio_section(rows), same_case_section(runs)):
            lines += [""] + part
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
