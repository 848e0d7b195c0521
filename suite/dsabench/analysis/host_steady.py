"""Host-steady or host-disturbed: each timed chunk classified by a documented rule, and what a
case's figures rest on once the disturbed chunks are set aside (issue 22; docs/design.md note 15).

The rule, per chunk (`classify`); a chunk is host-disturbed when any of these holds, else steady:

- `probe`: the host speed probe timed just before it (bench/host.py) took more than PROBE_SLOW x
  the run's reference probe (its PROBE_REF_QUANTILE quantile over every chunk of the run): the
  CPU ran the same fixed work slower;
- `memory`: the memory probe timed just before it (random reads over a buffer larger than the cache,
  bench/host.memory_probe_us) took more than MEMORY_SLOW x the run's reference memory probe (its
  PROBE_REF_QUANTILE quantile), where every chunk compared recorded one: the host's memory system ran
  slower (on the H200 the slow mode tripled it while the interpreter probe rose 1.6x);
- `run_delay`: the thread waited for a CPU (schedstat) more than SHARE_LIMIT of the chunk's host time;
- `steal`: the hypervisor took more than SHARE_LIMIT of it from the vCPU (/proc/stat);
- `level`: the chunk's median lies on the upper of two levels of its case: the case side's chunk
  medians in the run (all its processes) split in two by the best one-dimensional two-means on
  their logarithms, the upper centre at least LEVEL_GAP x the lower, the split explaining at
  least LEVEL_R2 of the variance, and the chunk above the geometric middle of the two centres.

What the gate rests on (`steady_sides`, docs/statistics.md) is the evidence alone: a cross-run
comparison of an eager case is judged on the chunks whose probe, run delay and steal were steady,
never on `level`, which reads the chunk's own time: an intermittent slowdown of the code would
make an upper level of its own, and `level` would set it aside as the host's. Where too few chunks
are steady and the two runs' hosts differ by the same evidence (`host_change`), no verdict.

The first three need the evidence recorded since schema 3; `level` needs only the samples, so it
also classifies older runs, whose chunks are rebuilt as blocks of the protocol's chunk size in the
order taken (`ProcessChunks.rebuilt`). What `level` cannot see: a case slow in every chunk of a
run (one level, all slow); what the evidence cannot see: a slow mode that leaves the probe, run
delay and steal alone. Each covers the other's blind spot; neither proves the host steady.

Pure functions over plain data (record dicts, frame rows); no I/O, no framework.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from dsabench.analysis.chunk_evidence import (  # noqa: F401  (the rule's lines, read here by scripts and tests)
    MEMORY_SLOW, PROBE_REF_QUANTILE, PROBE_SLOW, SHARE_LIMIT, ProbeRef, evidence_reasons, probe_reference)
from dsabench.analysis.host_change import HostChange, host_change
from dsabench.analysis.stats import summarize

# Two levels of one case: the H200's slow mode sits 1.3-2.0x above the fast one (1.8x on the most
# host-bound cases, less where device time dilutes it); process-to-process spread of the fast
# level is a few percent. 1.2 keeps the spread on one level; 0.6 of the variance keeps a skewed
# single level from being cut in two.
LEVEL_GAP = 1.2
LEVEL_R2 = 0.6
LEVEL_MIN_CHUNKS = 6  # fewer chunks than this: no two levels are looked for


@dataclass(frozen=True)
class ProcessChunks:
    """One worker process's chunks of one case (impl, variant): key (repeat, pid); per chunk its
    round, the median of its samples and its recorded evidence (an empty dict when rebuilt)."""

    key: tuple
    rounds: tuple[int, ...]
    medians_ms: tuple[float, ...]
    samples_ms: tuple[tuple[float, ...], ...]
    evidence: tuple[Mapping, ...]
    rebuilt: bool


def process_chunks(samples_ms: Sequence[float], chunks: Sequence[Mapping] = (), chunk_size: int | None = None,
                   key: tuple = ()) -> ProcessChunks:
    """The chunks of one process: as recorded (schema 3), or rebuilt as consecutive blocks of
    `chunk_size` samples, block i in round i (older runs: the protocol took a chunk of each
    variant per round, all of the protocol's chunk size). Raises ValueError when neither fits."""
    samples = [float(s) for s in samples_ms]
    if chunks:
        sizes = [int(c["samples"]) for c in chunks]
        if sum(sizes) != len(samples):
            raise ValueError(f"chunks hold {sum(sizes)} samples; expected the {len(samples)} of samples_ms")
        rounds = [int(c["round"]) for c in chunks]
        evidence = tuple(dict(c) for c in chunks)
        rebuilt = False
    else:
        if not chunk_size or chunk_size < 1:
            raise ValueError(f"no recorded chunks and chunk size {chunk_size!r}; expected the protocol's chunk >= 1")
        sizes = [min(chunk_size, len(samples) - i) for i in range(0, len(samples), chunk_size)]
        rounds = list(range(len(sizes)))
        evidence = tuple({} for _ in sizes)
        rebuilt = True
    groups, at = [], 0
    for n in sizes:
        groups.append(tuple(samples[at:at + n]))
        at += n
    return ProcessChunks(tuple(key), tuple(rounds), tuple(float(np.median(g)) for g in groups), tuple(groups),
                         evidence, rebuilt)


def record_chunks(record: Mapping, chunk_size: int | None = None) -> ProcessChunks | None:
    """A record's (one process's) chunks, keyed by (repeat, pid); None without samples."""
    timing = record.get("timing") or {}
    samples = timing.get("samples_ms") or []
    if not samples:
        return None
    worker = record.get("worker") or {}
    return process_chunks(samples, timing.get("chunks") or (), chunk_size,
                          (int(record.get("repeat") or 0), worker.get("pid")))


def row_processes(row: Mapping) -> list[ProcessChunks]:
    """A frame row's (or merged record's) processes: `process_samples` beside `process_chunks`,
    rebuilt from `chunk_size` where a process recorded no chunks. Empty without samples."""
    groups = row.get("process_samples")
    if not isinstance(groups, (list, tuple)):
        return []
    entries = row.get("process_chunks")
    entries = entries if isinstance(entries, (list, tuple)) and len(entries) == len(groups) else [{}] * len(groups)
    size = row.get("chunk_size")
    size = int(size) if isinstance(size, (int, float)) and size == size else None
    out = []
    for i, (samples, entry) in enumerate(zip(groups, entries)):
        if not samples:
            continue
        chunks = entry.get("chunks") or ()
        if not chunks and size is None:
            return []  # neither recorded nor rebuildable: say nothing rather than guess
        out.append(process_chunks(samples, chunks, size, tuple(entry.get("key") or (i,))))
    return out


@dataclass(frozen=True)
class Levels:
    """A case side's levels: the fast one, and the slow one with the split between them when the
    chunks show two (`why` says why not otherwise)."""

    fast_ms: float
    slow_ms: float | None
    split_ms: float | None
    r2: float | None
    why: str


def levels(medians_ms: Sequence[float]) -> Levels:
    """Two-means on the log chunk medians (the exact one-dimensional optimum: the best cut of the
    sorted values), kept as two levels only under LEVEL_GAP and LEVEL_R2 (module docstring)."""
    x = np.sort(np.log(np.asarray(medians_ms, dtype=float)))
    n = x.size
    if n == 0:
        raise ValueError("levels: no chunks")
    one = float(np.exp(np.median(x)))
    if n < LEVEL_MIN_CHUNKS:
        return Levels(one, None, None, None, f"{n} chunks < {LEVEL_MIN_CHUNKS}: one level assumed")
    total = float(((x - x.mean()) ** 2).sum())
    if total == 0.0:
        return Levels(one, None, None, None, "all chunks equal")
    csum, csq = np.cumsum(x), np.cumsum(x * x)
    cut = np.arange(1, n)
    left_n, right_n = cut, n - cut
    left_sse = csq[cut - 1] - csum[cut - 1] ** 2 / left_n
    right_sse = (csq[-1] - csq[cut - 1]) - (csum[-1] - csum[cut - 1]) ** 2 / right_n
    i = int(np.argmin(left_sse + right_sse))
    k = int(cut[i])
    lo, hi = float(x[:k].mean()), float(x[k:].mean())
    r2 = 1.0 - float(left_sse[i] + right_sse[i]) / total
    gap = math.exp(hi - lo)
    if gap < LEVEL_GAP or r2 < LEVEL_R2:
        return Levels(one, None, None, r2, f"one level: upper/lower {gap:.2f} (two need >= {LEVEL_GAP}), "
                                          f"split explains {r2:.0%} (two need >= {LEVEL_R2:.0%})")
    return Levels(math.exp(lo), math.exp(hi), math.exp((lo + hi) / 2), r2,
                  f"two levels {math.exp(lo):.4g} and {math.exp(hi):.4g} ms ({gap:.2f}x), split explains {r2:.0%}")


@dataclass(frozen=True)
class ChunkClass:
    steady: bool
    reasons: tuple[str, ...]  # why disturbed: 'probe', 'memory', 'run_delay', 'steal', 'level'


def classify(process: ProcessChunks, side_levels: Levels, probe_ref_us: float | None) -> tuple[ChunkClass, ...]:
    """Each chunk of `process` by the rule of the module docstring."""
    out = []
    for median, ev in zip(process.medians_ms, process.evidence):
        reasons = evidence_reasons(ev, probe_ref_us)
        if side_levels.split_ms is not None and median > side_levels.split_ms:
            reasons.append("level")
        out.append(ChunkClass(not reasons, tuple(reasons)))
    return tuple(out)


@dataclass(frozen=True)
class CaseHost:
    """What a case side's chunks say about the host. disturbed_share: disturbed chunks over all;
    by_reason: chunks per reason (one chunk may have several); steady_median_ms: median of the
    steady chunks' samples (None when none is steady); host_bound_share: 1 - device busy time over
    forward time (None without a device trace)."""

    chunks: int
    disturbed: int
    by_reason: dict
    steady_median_ms: float | None
    host_bound_share: float | None
    levels: Levels
    rebuilt: bool

    @property
    def disturbed_share(self) -> float:
        return self.disturbed / self.chunks if self.chunks else math.nan


def host_bound_share(device_busy_ms: float | None, forward_ms: float | None) -> float | None:
    """1 - (device busy time per forward / forward time), clipped to [0, 1]: the share of a forward
    the device spends waiting for the host. None without both figures."""
    if device_busy_ms is None or forward_ms is None or not (forward_ms > 0) or not math.isfinite(device_busy_ms):
        return None
    return min(1.0, max(0.0, 1.0 - device_busy_ms / forward_ms))


def side_levels(processes: Sequence[ProcessChunks]) -> Levels:
    return levels([m for p in processes for m in p.medians_ms])


def case_host(processes: Sequence[ProcessChunks], probe_ref_us: float | None,
              device_busy_ms: float | None = None) -> CaseHost:
    """The chunk classification of one case side (all its processes in a run), summed up."""
    lv = side_levels(processes)
    classes = [classify(p, lv, probe_ref_us) for p in processes]
    flat = [c for cs in classes for c in cs]
    reasons = Counter(r for c in flat for r in c.reasons)
    steady = [s for p, cs in zip(processes, classes) for g, c in zip(p.samples_ms, cs) if c.steady for s in g]
    all_samples = [s for p in processes for g in p.samples_ms for s in g]
    forward = float(np.median(all_samples)) if all_samples else None
    return CaseHost(len(flat), sum(not c.steady for c in flat), dict(reasons),
                    float(np.median(steady)) if steady else None, host_bound_share(device_busy_ms, forward), lv,
                    any(p.rebuilt for p in processes))


def steady_groups(processes: Sequence[ProcessChunks], probe_ref_us: float | None) -> list[list[float]]:
    """The steady chunks' samples, grouped per process (processes with none left out): what a
    cross-run comparison of a host-bound case can rest on."""
    lv = side_levels(processes)
    out = []
    for p in processes:
        kept = [s for g, c in zip(p.samples_ms, classify(p, lv, probe_ref_us)) if c.steady for s in g]
        if kept:
            out.append(kept)
    return out


# A process keeps its place in the steady judgement only with this many evidence-steady chunks, and
# at least this share of its chunks. A process in the slow mode throughout (one of three in 4 of
# the H200's 6 gate runs) shows the odd chunk with a fast probe whose own time is still slow: the
# probe sees 76% of slow chunks, so where most chunks read slow, most of the few that read fast are
# slow too, and their median would be the slow mode's. With half or more reading steady, fewer
# than a third of those are slow (at the H200's rates), and their median stays on the fast level.
MIN_STEADY_CHUNKS = 3
MIN_STEADY_SHARE = 0.5


@dataclass(frozen=True)
class SteadySides:
    """What a cross-run comparison of an eager case rests on: per side, the samples of the chunks the
    evidence calls steady (`evidence_reasons`, one probe reference for both sides), grouped per
    process, each process with fewer than MIN_STEADY_CHUNKS such chunks or fewer than MIN_STEADY_SHARE
    of its own left out; the chunks kept of all, and the processes kept of all per side; host: the
    two sides' host states over all their chunks (`host_change`), for a fallback on all samples."""

    base: list
    cand: list
    chunks_kept: int
    chunks: int
    base_processes: tuple[int, int]
    cand_processes: tuple[int, int]
    host: HostChange | None = None
    machine: str | None = None  # `machine_change`: the two rows ran on two machines, in words

    @property
    def usable(self) -> bool:
        """Two processes or more a side: what a t interval over processes needs."""
        return len(self.base) >= 2 and len(self.cand) >= 2

    def text(self) -> str:
        (kb, nb), (kc, nc) = self.base_processes, self.cand_processes
        return (f"{self.chunks_kept} of {self.chunks} chunks host-steady by probe, run delay and steal "
                f"({kb} of {nb} processes base, {kc} of {nc} cand with half or more of theirs steady)")


def steady_side(processes: Sequence[ProcessChunks], probe_ref_us: float | None) -> tuple[list, int, int]:
    """One side of `steady_sides`: the evidence-steady chunks' samples per process kept (the
    MIN_STEADY_CHUNKS and MIN_STEADY_SHARE rule), the chunks they hold, all the side's chunks."""
    return kept_side(processes, [[not evidence_reasons(ev, probe_ref_us) for ev in p.evidence] for p in processes])


def kept_side(processes: Sequence[ProcessChunks], keep: Sequence[Sequence[bool]]) -> tuple[list, int, int]:
    """`steady_side` for any per-chunk choice `keep` (one flag a chunk, per process): the process
    filter alone, so that another choice of chunks is judged by the same rule."""
    groups, kept, total = [], 0, 0
    for p, flags in zip(processes, keep):
        steady = [g for g, k in zip(p.samples_ms, flags) if k]
        total += len(p.samples_ms)
        if len(steady) >= max(MIN_STEADY_CHUNKS, MIN_STEADY_SHARE * len(p.samples_ms)):
            groups.append([s for g in steady for s in g])
            kept += len(steady)
    return groups, kept, total


def steady_sides(base_row: Mapping, cand_row: Mapping) -> SteadySides | None:
    """The host-steady share of two frame rows (or merged records) of one eager case in two runs;
    None for a CUDA Graph case (a replay waits on the device, not the host) and when a side's chunks
    carry no evidence (runs before schema 3, rebuilt chunks) or no probe."""
    if base_row.get("graph") in (True, 1) or cand_row.get("graph") in (True, 1):  # numpy's bool too
        return None
    bp, cp = row_processes(base_row), row_processes(cand_row)
    if not bp or not cp or any(p.rebuilt for p in bp + cp):
        return None
    ref = probe_reference(bp + cp)
    if ref is None:
        return None
    b, kb, nb = steady_side(bp, ref)
    c, kc, nc = steady_side(cp, ref)
    return SteadySides(b, c, kb + kc, nb + nc, (len(b), len(bp)), (len(c), len(cp)), host_change(bp, cp),
                       machine_change(base_row, cand_row))


# A forward whose device waits on the host for more than this share (`row_host_bound`) measures its
# host: on the H200 the decode eager cases waited 7-75%, prefill and mixed ones (kernels 94% or more
# of the forward) spread 0.37% between processes and compare across machines as graph cases do.
HOST_BOUND_LIMIT = 0.10


def machine_change(base_row: Mapping, cand_row: Mapping) -> str | None:
    """Why two rows of an eager case ran on two machines whose hosts a verdict would compare, or None.
    Two GPUs (device uuid) are two machines unless both runs' hosts showed a GPU in common (frame
    column host_gpus, from the manifests): GPU 0 and GPU 1 of one host are one host. A nightly A/A
    pair of the H200 two machine starts apart (results/h200-2026-12-03d/night-aa/) called 7 of 138
    eager cases slower by 16-65%, each on chunks whose probes read steady: one host's fast level sat
    12% above the other's. A case whose device waited on the host at most HOST_BOUND_LIMIT of its
    forward on both sides (device-bound) is judged as ever; one without a trace counts as host-bound."""
    ids = base_row.get("device_uuid"), cand_row.get("device_uuid")
    if not all(isinstance(i, str) and i for i in ids) or ids[0] == ids[1]:
        return None
    hosts = [set(str(r.get("host_gpus") or "").split(",")) - {"", "nan", "None"} for r in (base_row, cand_row)]
    if hosts[0] & hosts[1]:  # two GPUs of one host (frame column host_gpus: every GPU each run's host showed)
        return None
    shares = [row_host_bound(base_row), row_host_bound(cand_row)]
    if all(share is not None and share <= HOST_BOUND_LIMIT for share in shares):
        return None
    bound = ", ".join("unknown (no trace)" if x is None else f"{x:.0%}" for x in shares)
    return (f"base ran on {ids[0][:12]}, cand on {ids[1][:12]}: two machines, and the device waited on the host "
            f"for {bound} of the forward (base, cand)")


@dataclass(frozen=True)
class RoundRatio:
    """cand/base of one round of one process: the two chunk medians' ratio and each side's class."""

    key: tuple
    round: int
    ratio: float
    base: ChunkClass
    cand: ChunkClass


def round_ratios(base: Sequence[ProcessChunks], cand: Sequence[ProcessChunks],
                 probe_ref_us: float | None) -> list[RoundRatio]:
    """Every round the two sides shared in one process (same repeat and pid: interleaved together)."""
    lb, lc = side_levels(base), side_levels(cand)
    cands = {p.key: p for p in cand}
    out = []
    for b in base:
        c = cands.get(b.key)
        if c is None:
            continue
        bc = dict(zip(b.rounds, zip(b.medians_ms, classify(b, lb, probe_ref_us))))
        cc = dict(zip(c.rounds, zip(c.medians_ms, classify(c, lc, probe_ref_us))))
        for r in sorted(set(bc) & set(cc)):
            out.append(RoundRatio(b.key, r, cc[r][0] / bc[r][0], bc[r][1], cc[r][1]))
    return out


@dataclass(frozen=True)
class SteadyPairs:
    """The samples of the rounds where both sides were host-steady, per process and in round order
    on both sides (sample i of a process pairs with sample i: the gate's paired interval can take
    them as they are), with the rounds used of all the sides shared."""

    base: list
    cand: list
    rounds_used: int
    rounds_total: int


def steady_pairs(base: Sequence[ProcessChunks], cand: Sequence[ProcessChunks],
                 probe_ref_us: float | None) -> SteadyPairs:
    """What a within-run comparison of two sides measured together can rest on once the host's
    disturbed rounds are set aside; a process left with no steady round is left out."""
    lb, lc = side_levels(base), side_levels(cand)
    cands = {p.key: p for p in cand}
    out_b, out_c, used, total = [], [], 0, 0
    for b in base:
        c = cands.get(b.key)
        if c is None:
            continue
        bc = {r: (g, k) for r, g, k in zip(b.rounds, b.samples_ms, classify(b, lb, probe_ref_us))}
        cc = {r: (g, k) for r, g, k in zip(c.rounds, c.samples_ms, classify(c, lc, probe_ref_us))}
        gb, gc = [], []
        for r in sorted(set(bc) & set(cc)):
            total += 1
            (sb, kb), (sc, kc) = bc[r], cc[r]
            if kb.steady and kc.steady:
                n = min(len(sb), len(sc))
                gb += sb[:n]
                gc += sc[:n]
                used += 1
        if gb:
            out_b.append(gb)
            out_c.append(gc)
    return SteadyPairs(out_b, out_c, used, total)


@dataclass(frozen=True)
class SteadyRatio:
    """cand/base within a run from the rounds where both sides were host-steady: the median of the
    per-round ratios with its distribution-free 95% interval (rounds treated as independent, which
    neighbouring rounds are not quite: the interval is a floor), the rounds used of all shared."""

    ratio: float
    ci_low: float
    ci_high: float
    rounds_used: int
    rounds_total: int
    processes: int


def steady_ratio(base: Sequence[ProcessChunks], cand: Sequence[ProcessChunks],
                 probe_ref_us: float | None) -> SteadyRatio | None:
    """None when no round had both sides steady."""
    rows = round_ratios(base, cand, probe_ref_us)
    used = [r for r in rows if r.base.steady and r.cand.steady]
    if not used:
        return None
    s = summarize([r.ratio for r in used])
    return SteadyRatio(s.median, s.ci_low, s.ci_high, len(used), len(rows), len({r.key for r in used}))


# What a comparison row carries about the host (compare's table, its JSON, the text notes): the
# share of disturbed chunks per side and, for two sides measured together, the ratio of the steady
# rounds (median of per-round cand/base) with the rounds it rests on. NaN where a side has no chunks.
HOST_COLUMNS = ("base_disturbed", "cand_disturbed", "steady_ratio", "steady_rounds", "rounds", "base_host_bound",
                "cand_host_bound")
# A frame row's device busy time per forward: kernels, copies and memsets of its profiled pass.
_BUSY_COLUMNS = ("kernel_ms", "htod_ms", "dtoh_ms", "dtod_ms", "memset_ms")


def row_host_bound(row: Mapping) -> float | None:
    """`host_bound_share` of a frame row: its trace's device busy time per forward against its median
    forward; None on the host clock (a CPU has no device to wait) or without a trace."""
    if row.get("clock") != "cuda_event":
        return None
    busy = [row.get(c) for c in _BUSY_COLUMNS]
    if not isinstance(busy[0], (int, float)) or busy[0] != busy[0]:
        return None
    total = sum(float(b) for b in busy if isinstance(b, (int, float)) and b == b)
    return host_bound_share(total, row.get("median_ms"))


def pair_host(base_row: Mapping, cand_row: Mapping, paired: bool) -> dict:
    """HOST_COLUMNS for one compared pair of frame rows. One probe reference for both sides, from
    both sides' chunks: a run whose CPU ran slower throughout (on the development machine a whole
    run's probe read 100 us against another's 60, its forwards' CPU time +30%) is then disturbed,
    not compared as steady; a run on a slower host has no steady chunk, and says so."""
    out = dict.fromkeys(HOST_COLUMNS, math.nan)
    for side, row in (("base", base_row), ("cand", cand_row)):
        share = row_host_bound(row)
        out[f"{side}_host_bound"] = math.nan if share is None else share
    bp, cp = row_processes(base_row), row_processes(cand_row)
    if not bp or not cp:
        return out
    ref = probe_reference(bp + cp)
    out["base_disturbed"] = case_host(bp, ref).disturbed_share
    out["cand_disturbed"] = case_host(cp, ref).disturbed_share
    if paired:
        rows = round_ratios(bp, cp, ref)
        used = [r.ratio for r in rows if r.base.steady and r.cand.steady]
        out["rounds"] = len(rows)
        out["steady_rounds"] = len(used)
        if used:
            out["steady_ratio"] = float(np.median(used))
    return out
