"""Decide, case by case, whether a candidate is faster, slower or the same as a base.

Two ways to pair cases:
- run vs run (`compare_runs`): the same case id in a BASE run and a CAND run, e.g. two commits;
- variant vs variant (`compare_variants`): inside one run, the cases of one group (same config
  and graph mode) measured with two variants, patched against baseline by default;
- impl vs impl (`compare_impls.compare_impls`): inside one run, the cases of one group measured
  by two implementations (two FastDeploy commits, or the mirror and a commit);
- kernel vs kernel (`compare_kernels.compare_kernels`): inside one run of a kernel axis, each case
  measured with two attention kernels. On a kernel axis every other pairing stays within a kernel.

Every pair is judged by the one gate (`gate.decide`): the ratio cand / base with an interval
that includes the variance between worker processes (and between runs, with history), held
against a band around 1 (1 / (1 + threshold) to 1 + threshold, `gate.edges`; or each case's own
band, `--threshold auto`). Only an
interval entirely outside the band is a change, whatever the case's noise; one inside it is
"same"; one crossing its edge is "undecided", never quietly rounded to either. A case whose own
spread exceeds the threshold carries `noisy` beside its verdict. An eager case across runs that
falls back on all samples while the host evidence says the two runs' hosts differ gets no verdict
(`host_changed`, `Comparison.withheld`). docs/statistics.md has the measured coverage, false alarms
and power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum

import pandas as pd

from dsabench.analysis.defaults import DEFAULT_THRESHOLD
from dsabench.errors import InputError, quoted
from dsabench.store.frames import Frame, manifest_commit
from dsabench.analysis.gate import Threshold, check_threshold, decide
from dsabench.analysis.host_steady import HOST_COLUMNS, SteadySides, pair_host, steady_sides
from dsabench.analysis.pairing import judged_sides, process_groups  # noqa: F401 - process_groups: re-exported
from dsabench.analysis.noise import UNKNOWN, Noise, case_key, history_noise, history_rows, inject_of, run_level
from dsabench.analysis.profiler_residue import kept_the_profiler, profiler_residue
from dsabench.analysis.run_keys import keyed
from dsabench.analysis.unmeasured import run_gaps, unmeasured
from dsabench.store.schema import axis_kernel, record_key
from dsabench.analysis.stats import CONFIDENCE, N_BOOT, SEED
from dsabench.workload.variants import BASELINE, PATCHED, Variant, parse_variant


class Verdict(str, Enum):
    FASTER = "faster"
    SLOWER = "slower"
    SAME = "same"
    UNDECIDED = "undecided"
    NEW = "new"
    MISSING = "missing"
    FAILED = "failed"
    NOT_COMPARABLE = "not_comparable"


class Reason(str, Enum):
    CI_ABOVE = "ci_above_threshold"
    CI_BELOW = "ci_below_threshold"
    CI_WITHIN = "ci_within_threshold"
    CI_CROSSES = "ci_crosses_threshold"
    TOO_FEW_SAMPLES = "too_few_samples"
    ONLY_IN_CAND = "only_in_cand"
    ONLY_IN_BASE = "only_in_base"
    BASE_FAILED = "base_failed"
    CAND_FAILED = "cand_failed"
    BOTH_FAILED = "both_failed"
    NO_SAMPLES = "no_samples"
    CLOCK_DIFFERS = "clock_differs"
    WITHIN_RUN_ONLY = "within_run_precision_only"
    HOST_CHANGED = "host_changed"  # an eager case across runs on all samples, the two runs' hosts differing
    CAND_INCOMPLETE = "cand_incomplete"  # only in base, planned by cand and never recorded (analysis.unmeasured)


# Order of rows in tables: what needs attention first.
SEVERITY = (
    Verdict.SLOWER, Verdict.FAILED, Verdict.NOT_COMPARABLE, Verdict.UNDECIDED, Verdict.MISSING,
    Verdict.NEW, Verdict.FASTER, Verdict.SAME,
)  # fmt: skip


class NotComparable(InputError):
    """The two sides ran on different device models or backends (CLI exit code 2)."""


@dataclass(frozen=True)
class Decision:
    """The verdict on one pair of sample sets, its reason (code and words), and the numbers behind it.

    why: the reason in words without the figures; noisy: the case's own spread (noise) exceeds
    the threshold, a qualifier beside any verdict; band: the band the interval was held against;
    base_level, cand_level: the levels (ms) the ratio is formed from (`gate.levels`); p_value: the
    gate's two-sided p, of the very test its interval comes from (`GateResult.p_value`); se, df: the
    interval's standard error of the log ratio and its degrees of freedom (`unjudged` sizes --repeats from them).
    """

    verdict: Verdict
    reason: Reason
    message: str
    ratio: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    why: str = ""
    noisy: bool = False
    noise: float = math.nan
    band: float = math.nan
    processes: int = 0
    rests_on: str = ""  # what the verdict was judged on: all samples, or the host-steady chunks (gate.decide)
    base_level: float = math.nan
    cand_level: float = math.nan
    se: float = math.nan
    df: float = math.nan

    def __post_init__(self) -> None:
        if not self.why:
            object.__setattr__(self, "why", self.message)


@dataclass(frozen=True)
class Comparison:
    """A comparison table (one row per pair, most severe first) and what it was run with.

    mismatches lists the run-level differences tolerated with allow_mismatch=True (empty
    otherwise: a mismatch without it raises NotComparable). frozen=True does not freeze table.
    """

    table: pd.DataFrame
    mode: str  # "runs", "variants", "impls" or "kernels"
    base_label: str
    cand_label: str
    threshold: Threshold
    confidence: float
    device: str = ""
    backend: str = ""
    kernel: str = ""  # the attention kernel (frame column `kernel`); both sides', joined, when they differ
    mismatches: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    unmeasured: tuple[str, ...] = ()  # within one run: what it planned and holds no record of (run_gaps)

    def counts(self) -> dict[str, int]:
        """Pairs per verdict, in SEVERITY order, verdicts with no pair left out."""
        found = self.table["verdict"].value_counts().to_dict() if len(self.table) else {}
        return {v.value: int(found[v.value]) for v in SEVERITY if found.get(v.value)}

    @property
    def regressions(self) -> int:
        """Pairs that gate a change: SLOWER, and FAILED where only the candidate failed."""
        t = self.table
        if not len(t):
            return 0
        slower = t["verdict"] == Verdict.SLOWER.value
        broke = (t["verdict"] == Verdict.FAILED.value) & (t["reason"] == Reason.CAND_FAILED.value)
        return int((slower | broke).sum())

    def withheld(self) -> pd.DataFrame:
        """Pairs given no verdict because the two runs' hosts differ (`host_changed`, gate.decide):
        their all-sample interval measures the host; a change up to its upper end may hide there.
        `compare --fail-on-regression` does not let them pass silently (exit 4 when nothing is slower;
        `unjudged` counts them with the undecided that may hide a material slowdown)."""
        t = self.table
        return t[t["reason"] == Reason.HOST_CHANGED.value] if len(t) else t


# base/cand_level_ms: the levels the ratio is formed from (gate.levels: geometric mean of process
# medians, on the host-steady chunks where the verdict rests on them), so level_ms cand / base is
# the ratio; base/cand_pooled_median_ms: the median of every sample of the side's record, which
# says a different change wherever processes differ (never printed beside the ratio).
TABLE_COLUMNS = (
    "case", "config_id", "base_case_id", "cand_case_id", "base_status", "cand_status",
    "base_level_ms", "cand_level_ms", "base_pooled_median_ms", "cand_pooled_median_ms", "base_n", "cand_n",
    "ratio", "ci_low", "ci_high", "p_value", "verdict", "reason", "message", "why", "noisy", "noise", "band",
    "processes", "rests_on", "se", "df",
)  # fmt: skip
# Trace figures carried into the table as base_<name> / cand_<name> when either side has them:
# the evidence of what a variant removed (host-to-device copies, layout copies, memory).
EVIDENCE_COLUMNS = ("htod_count", "sync_calls", "layout_copy_bytes", "peak_bytes")
# What each side was, carried as base_<name> / cand_<name>, so a reader can tell an expected
# result of a case (no CUDA Graph on a CPU, the tensor scale's failed capture) from a failure.
CONTEXT_COLUMNS = ("graph", "scale_mode", "layout_mode")


def gate_decision(base_groups, cand_groups, threshold: Threshold, *, noise: Noise = UNKNOWN, paired: bool = False,
                  steady: SteadySides | None = None, confidence: float = CONFIDENCE, n_boot: int = N_BOOT,
                  seed: int | None = SEED) -> Decision:
    """The gate (`gate.decide`) as a Decision; its p is the gate's own (`GateResult.p_value`: the test
    its interval inverts, over process levels), never a test over all samples, which would treat the
    samples of one worker process as independent."""
    if not sum(len(g) for g in base_groups) or not sum(len(g) for g in cand_groups):
        side = "base" if not sum(len(g) for g in base_groups) else "cand"
        return Decision(Verdict.NOT_COMPARABLE, Reason.NO_SAMPLES, f"{side} has status ok but no timing samples")
    r = decide(base_groups, cand_groups, threshold, noise=noise, paired=paired, steady=steady, confidence=confidence,
               n_boot=n_boot, seed=seed)
    return Decision(Verdict(r.verdict), Reason(r.reason), r.message, r.ratio, r.ci_low, r.ci_high, r.p_value, r.why,
                    r.noisy, r.noise, r.band, r.processes, r.rests_on, r.base_level, r.cand_level, r.se, r.df)


def _pair(key: str, base, cand, threshold: Threshold, confidence: float, n_boot: int, seed, *,
          noise: Noise = UNKNOWN, paired: bool = False) -> dict:
    """One table row; base or cand is None when the pair has only one side."""
    row: dict = {c: math.nan for c in TABLE_COLUMNS}
    row["case"] = key
    for side, r in (("base", base), ("cand", cand)):
        if r is None:
            row[f"{side}_case_id"] = None
            row[f"{side}_status"] = None
            row[f"{side}_n"] = 0
            for name in EVIDENCE_COLUMNS + CONTEXT_COLUMNS:
                row[f"{side}_{name}"] = math.nan if name in EVIDENCE_COLUMNS else None
            continue
        row["config_id"] = r["config_id"]
        row[f"{side}_case_id"] = r["case_id"]
        row[f"{side}_status"] = r["status"]
        row[f"{side}_pooled_median_ms"] = r["median_ms"]
        row[f"{side}_n"] = int(r["n_samples"]) if r["n_samples"] == r["n_samples"] else 0
        for name in EVIDENCE_COLUMNS:
            row[f"{side}_{name}"] = r.get(name, math.nan)
        for name in CONTEXT_COLUMNS:
            row[f"{side}_{name}"] = r.get(name)
    if base is None:
        d = Decision(Verdict.NEW, Reason.ONLY_IN_CAND, "only in cand")
    elif cand is None:
        d = Decision(Verdict.MISSING, Reason.ONLY_IN_BASE, "only in base")
    elif base["status"] != "ok" or cand["status"] != "ok":
        failed = [(side, r) for side, r in (("base", base), ("cand", cand)) if r["status"] != "ok"]
        if len(failed) == 2:
            reason = Reason.BOTH_FAILED
        else:
            reason = Reason.BASE_FAILED if base["status"] != "ok" else Reason.CAND_FAILED
        if len(failed) == 2 and (base["status"], base["message"]) == (cand["status"], cand["message"]):
            message = f"both {base['status']}: {base['message'] or '(no message)'}"  # said once, not twice
        else:
            message = "; ".join(f"{side} {r['status']}: {r['message'] or '(no message)'}" for side, r in failed)
        d = Decision(Verdict.FAILED, reason, message)
    elif base["clock"] != cand["clock"] and isinstance(base["clock"], str) and isinstance(cand["clock"], str):
        d = Decision(
            Verdict.NOT_COMPARABLE,
            Reason.CLOCK_DIFFERS,
            f"base timed with clock {base['clock']!r}, cand with {cand['clock']!r}; "
            "latencies of two clocks do not compare",
        )
    else:
        steady = None if paired else steady_sides(base, cand)  # paired rounds share the host already
        sides = judged_sides(base, cand, paired)  # paired: process with process, by identity
        d = gate_decision(sides.base, sides.cand, threshold, noise=noise, paired=sides.paired, steady=steady,
                          confidence=confidence, n_boot=n_boot, seed=seed)
        if sides.rests_on:  # the row says which processes the verdict left out
            d = replace(d, rests_on=sides.rests_on)
        row.update(pair_host(base, cand, paired))  # what the host did: disturbed chunks, steady rounds
    row.update(
        ratio=d.ratio, ci_low=d.ci_low, ci_high=d.ci_high, p_value=d.p_value,
        verdict=d.verdict.value, reason=d.reason.value, message=d.message, why=d.why, noisy=d.noisy,
        noise=d.noise, band=d.band, processes=d.processes, rests_on=d.rests_on, base_level_ms=d.base_level,
        cand_level_ms=d.cand_level, se=d.se, df=d.df,
    )  # fmt: skip
    if not d.ratio == d.ratio:  # no ratio formed (one side, a failure, too few samples): each ok side's own level
        row.update(base_level_ms=_level_of(base), cand_level_ms=_level_of(cand))
    return row


def _level_of(record) -> float:
    """An ok record's level (`noise.run_level`: the geometric mean of its process medians, as the
    gate's ratio forms it); NaN without one."""
    if record is None or record["status"] != "ok":
        return math.nan
    return run_level(record.get("process_samples"), record.get("samples_ms"))


def _unmeasured(pairs: list[dict], why) -> list[dict]:
    """Rows only in base whose case cand planned and never recorded (`why(key)`: the reason, or None
    where cand left it out on purpose: `analysis.unmeasured`); `unjudged` counts them."""
    out = []
    for r in pairs:
        text = why(r["case"]) if r["reason"] == Reason.ONLY_IN_BASE.value else None
        out.append({**r, "reason": Reason.CAND_INCOMPLETE.value, "message": text, "why": text} if text else r)
    return out


def _table(pairs: list[dict]) -> pd.DataFrame:
    cols = list(TABLE_COLUMNS) + [f"{s}_{n}" for s in ("base", "cand") for n in EVIDENCE_COLUMNS + CONTEXT_COLUMNS]
    cols += HOST_COLUMNS
    df = pd.DataFrame(pairs, columns=cols)
    order = {v.value: i for i, v in enumerate(SEVERITY)}
    df["_order"] = df["verdict"].map(order)
    df = df.sort_values(["_order", "case"], kind="stable").drop(columns="_order").reset_index(drop=True)
    return df


def _single(values: pd.Series) -> list[str]:
    return sorted({str(v) for v in values.dropna()})


def _one_run(frame: Frame, side: str) -> str:
    ids = list(frame.manifests)
    if len(ids) != 1:
        raise InputError(
            f"{side}: holds {len(ids)} runs ({', '.join(map(repr, ids)) or 'none'}); expected exactly one "
            "(pass one run directory, or the directories of its shards)"
        )
    return ids[0]


def _label(frame: Frame, run_id: str) -> str:
    commit = manifest_commit(frame.manifests[run_id])
    return f"{run_id} ({commit[:12]})" if commit else run_id


WORKER_DEVICE = ("workers", 0, "device", "name")  # the device the run's first worker reported


def _values(frame: Frame, run_id: str, column: str, manifest_path: tuple[str | int, ...]) -> list[str]:
    found = _single(frame.df[column])
    if not found:
        m = frame.manifests[run_id]
        for key in manifest_path:
            if isinstance(key, int):
                m = m[key] if isinstance(m, list) and len(m) > key else None
            else:
                m = m.get(key) if isinstance(m, dict) else None
        if m:
            found = [str(m)]
    return found


def check_comparable(base: Frame, cand: Frame) -> list[str]:
    """Run-level differences that make latencies incomparable: device model, backend and attention
    kernel (a fused kernel changes the size of every phase around the ones a patch touches).

    Returns one message per difference, naming both values; empty when the runs match. A run
    without records has no device to compare: InputError says so instead.
    """
    base_id, cand_id = _one_run(base, "BASE"), _one_run(cand, "CAND")
    for side, frame, run_id in (("BASE", base, base_id), ("CAND", cand, cand_id)):
        if frame.df.empty:
            raise InputError(f"{side} {quoted(run_id)} holds no records (nothing was measured); expected a run with "
                             "at least one finished case")
    problems = []
    for what, column, path in (
        ("device", "device_name", WORKER_DEVICE),
        ("backend", "backend", ("backend",)),
        ("attention kernel", "kernel", ("options", "kernel")),
    ):
        b, c = _values(base, base_id, column, path), _values(cand, cand_id, column, path)
        if b != c:
            problems.append(
                f"{what} differs: BASE {base_id!r} ran on {' + '.join(map(repr, b)) or 'unknown'}, "
                f"CAND {cand_id!r} on {' + '.join(map(repr, c)) or 'unknown'}"
            )
    inj_b, inj_c = (float(((f.manifests[i].get("options") or {}).get("inject_delay")) or 0.0)
                    for f, i in ((base, base_id), (cand, cand_id)))
    if inj_b != inj_c:
        problems.append(f"injected delay differs: BASE {base_id!r} has {inj_b:g} x the forward added to every forward, "
                        f"CAND {cand_id!r} {inj_c:g} (a calibrate run, not a measurement of the code)")
    return problems


def compare_runs(
    base: Frame,
    cand: Frame,
    *,
    threshold: Threshold = DEFAULT_THRESHOLD,
    confidence: float = CONFIDENCE,
    allow_mismatch: bool = False,
    history: Frame | None = None,
    include_calibration: bool = False,
    n_boot: int = N_BOOT,
    seed: int | None = SEED,
) -> Comparison:
    """Pair cases by case id between a BASE run and a CAND run and judge each pair.

    history: earlier runs; each case's run-to-run noise is estimated from the runs of the same
    case, device model, backend, kernel, impl and injected delay made before CAND (BASE and CAND
    themselves left out, calibrate's runs too unless include_calibration), and goes into that
    case's interval (`noise`, `gate.decide`).

    Raises NotComparable when the runs used different device models or backends, unless
    allow_mismatch, in which case the differences are kept in Comparison.mismatches.
    """
    check_threshold(threshold, "compare")
    base_id, cand_id = _one_run(base, "BASE"), _one_run(cand, "CAND")
    mismatches = check_comparable(base, cand)
    if mismatches and not allow_mismatch:
        raise NotComparable("; ".join(mismatches) + "; pass --allow-mismatch to compare anyway")
    b, c = keyed(base.df.to_dict("records")), keyed(cand.df.to_dict("records"))  # one FastDeploy commit a side: paired
    noise = {}
    if history is not None:
        created = pd.to_datetime(cand.manifests[cand_id].get("created_at"), utc=True, errors="coerce")
        noise = history_noise(history_rows(history.df, history.manifests, before=created, exclude=(base_id, cand_id),
                                           include_calibration=include_calibration))
    inject = inject_of(cand.manifests[cand_id])

    def noise_of(row) -> Noise:
        return UNKNOWN if row is None else noise.get(case_key(row, inject), UNKNOWN)

    residue = tuple(profiler_residue(side, f.manifests[rid], rid)
                    for side, f, rid in (("BASE", base, base_id), ("CAND", cand, cand_id)) if kept_the_profiler(f.manifests[rid]))
    pairs = [_pair(k, b.get(k), c.get(k), threshold, confidence, n_boot, seed, noise=noise_of(c.get(k)))
             for k in sorted(b.keys() | c.keys())]
    plan = cand.plans.get(cand_id)

    def never_recorded(key: str) -> str | None:
        why = unmeasured(plan, b[key]["case_id"], b[key].get("group_id"), b[key].get("impl"))
        return why and f"only in base; cand's run is incomplete: {why}"

    if plan is not None:
        pairs = _unmeasured(pairs, never_recorded)
    devices = _values(base, base_id, "device_name", WORKER_DEVICE)
    backends = _values(base, base_id, "backend", ("backend",))
    kernels = sorted({k for f, rid in ((base, base_id), (cand, cand_id)) for k in _values(f, rid, "kernel", ("options", "kernel"))})
    return Comparison(
        _table(pairs), "runs", _label(base, base_id), _label(cand, cand_id), threshold, confidence,
        " + ".join(devices), " + ".join(backends), " + ".join(kernels), tuple(mismatches),
        base.warnings + cand.warnings + residue,
    )  # fmt: skip


def compare_variants(
    frame: Frame,
    base_variant: str | Variant = BASELINE,
    cand_variant: str | Variant = PATCHED,
    *,
    threshold: Threshold = DEFAULT_THRESHOLD,
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int | None = SEED,
) -> Comparison:
    """Inside one run, pair the cases of each group_id measured with two variants and judge them.

    Variants are 'baseline', 'patched' or SCALE+LAYOUT (e.g. 'scalar+contiguous'). A group with
    only the base variant is MISSING, one with only the candidate is NEW. Only the mirror's cases
    are paired: a FastDeploy commit of the run has one variant per group (its own code's), and is
    compared with another impl by `compare_impls`.
    """
    check_threshold(threshold, "compare")
    run_id = _one_run(frame, "BASE")
    try:
        bv = parse_variant(base_variant) if isinstance(base_variant, str) else base_variant
        cv = parse_variant(cand_variant) if isinstance(cand_variant, str) else cand_variant
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if bv == cv:
        raise InputError(f"variants: base and cand are both {bv.name!r}; expected two different variants")
    df = frame.df[frame.df["impl"].fillna("mirror") == "mirror"]

    def rows_of(v: Variant) -> dict:
        out = rows_by_group(df[(df["scale_mode"] == v.scale) & (df["layout_mode"] == v.layout)])
        for key, rows in out.items():
            if len(rows) > 1:
                raise InputError(
                    f"run {run_id!r}: group {key!r} has two {v.name!r} cases "
                    f"({rows[0]['case_id']!r} and {rows[1]['case_id']!r})"
                )
        return {k: rows[0] for k, rows in out.items()}

    b, c = rows_of(bv), rows_of(cv)
    return within_run(frame, run_id, "variants", bv.name, cv.name, pair_rows(b, c, threshold, confidence, n_boot, seed),
                      threshold, confidence)


def rows_by_group(df: pd.DataFrame, with_impl: bool = True) -> dict[str, list[dict]]:
    """Rows keyed by group id (the case id where a record has none), the impl appended unless
    it is the mirror or `with_impl` is False, the kernel on a kernel axis (variants and impls
    are paired within a kernel); each key's rows in frame order."""
    out: dict[str, list[dict]] = {}
    for r in df.to_dict("records"):
        key = r["group_id"] if isinstance(r["group_id"], str) else r["case_id"]
        key = record_key(key, r.get("impl") if with_impl else None, axis_kernel(r))
        out.setdefault(key, []).append(r)
    return out


def pair_rows(b: dict, c: dict, threshold: Threshold, confidence: float, n_boot: int, seed) -> list[dict]:
    """One judged row per key of either side (a side without the key: NEW or MISSING). Eager cases
    of one group are timed in the same worker processes, in rounds: paired. Graph cases are not."""
    return [_pair(k, b.get(k), c.get(k), threshold, confidence, n_boot, seed,
                  paired=bool(b.get(k) is not None and c.get(k) is not None and not b[k].get("graph")))
            for k in sorted(b.keys() | c.keys())]


def within_run(frame: Frame, run_id: str, mode: str, base: str, cand: str, pairs: list[dict], threshold: Threshold,
               confidence: float) -> Comparison:
    """The Comparison of two sides of one run (variants or impls): labels name the run once."""
    gaps = run_gaps(frame.plans[run_id], absent_shards=False) if run_id in frame.plans else ()
    why = "only in base; the run is incomplete: " + "; ".join(gaps)
    return Comparison(
        _table(_unmeasured(pairs, lambda _: why if gaps else None)), mode, f"{base} in {_label(frame, run_id)}",
        f"{cand} in {run_id}", threshold, confidence,
        " + ".join(_values(frame, run_id, "device_name", WORKER_DEVICE)),
        " + ".join(_values(frame, run_id, "backend", ("backend",))),
        " + ".join(_values(frame, run_id, "kernel", ("options", "kernel"))), (),
        frame.warnings + tuple(f"the run is incomplete: {g}" for g in gaps), gaps,
    )  # fmt: skip
