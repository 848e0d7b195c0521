"""The evidence's speed sections: patched vs baseline (compare's table), every variant vs
baseline, and the headline that sums them up without overclaiming.

How far a verdict inside one run can be trusted depends on how its two sides were timed:
- interleaved: the variants of an eager case rotate in one worker (`options.interleave`), so
  drift and run order hit both alike;
- in turn: each side timed in its own turn (every CUDA Graph case, and every case of a run made
  without interleaving). The interval then holds only the precision within each turn: it
  excludes turn-to-turn and run-to-run variance, and a run-order artefact can pass for a change.
Either way a single run says nothing about run-to-run variance. Verdicts of groups timed in
turn are marked, and the headline never counts them as regressions.
"""

from __future__ import annotations

from dsabench.analysis.compare import DEFAULT_THRESHOLD, Comparison, Verdict, compare_variants
from dsabench.analysis.roofline import saving_per_token_us
from dsabench.present.compare_text import format_markdown, pair_finding
from dsabench.present.runset import RunSet
from dsabench.present.text import md_table, md_text
from dsabench.store.frames import Frame
from dsabench.workload.variants import ALL_VARIANTS, BASELINE, PATCHED


def variant_comparisons(frame: Frame, threshold: float = DEFAULT_THRESHOLD) -> dict[str, Comparison]:
    """compare_variants of every variant of the run (other than baseline) against baseline,
    keyed by variant name; empty when the run has no baseline case."""
    present = set(frame.df["variant"].dropna())
    if BASELINE.name not in present:
        return {}
    return {v.name: compare_variants(frame, BASELINE, v, threshold=threshold)
            for v in ALL_VARIANTS if v != BASELINE and v.name in present}  # fmt: skip


def timed_in_turn(rs: RunSet) -> set[str]:
    """Group ids whose variants were timed in separate turns: every CUDA Graph group (a graph case
    always runs alone), and every group of a shard made without interleaving (manifests before
    the option existed did not interleave); on a kernel axis also as `group#kernel`, the key
    compare_variants gives each kernel's pair."""
    interleaved = {str(s.path) for s in rs.shards if (s.manifest.get("options") or {}).get("interleave") is True}
    df = rs.frame.df
    turn = df[(df["graph"] == True) | ~df["run_dir"].isin(interleaved)]  # noqa: E712 - a column of Python bools
    axis = turn[turn["kernel_axis"].fillna(False).astype(bool)]
    return {str(g) for g in turn["group_id"].dropna()} | {f"{g}#{k}" for g, k in zip(axis["group_id"], axis["kernel"])}


def _group(key: str) -> tuple[str, str]:
    """(group id, ' [kernel]' or '') of a table key: on a kernel axis compare_variants pairs each
    kernel's variants apart, keyed `group#kernel` (store.schema.record_key)."""
    group, _, kernel = key.partition("#")
    return group, f" [{kernel}]" if kernel else ""


def _speedup_cell(r: dict, in_turn: bool) -> str:
    if r["verdict"] == "missing":
        return "not run"
    if r["verdict"] == "new":
        return "no baseline"
    if r["base_status"] != "ok" or r["cand_status"] != "ok":
        label = pair_finding(r)
        if label is not None:
            side = "baseline" if r["base_status"] != "ok" else "variant"
            return md_text(f"{label} ({side})")
        side = "baseline" if r["base_status"] != "ok" else "variant"
        status = r["base_status"] if r["base_status"] != "ok" else r["cand_status"]
        return md_text(f"{side} {status}")
    ratio, lo, hi = r["ratio"], r["ci_low"], r["ci_high"]
    if not ratio == ratio or not ratio:
        return md_text(r["verdict"])
    text = f"{1 / ratio:.2f}x"
    if lo == lo and hi == hi and lo > 0:
        text += f" ({1 / hi:.2f}-{1 / lo:.2f})"
    turn = " (in turn)" if in_turn and r["verdict"] in (Verdict.FASTER.value, Verdict.SLOWER.value) else ""
    return md_text(f"{text} {r['verdict']}{turn}")


def speedup_section(rs: RunSet, comps: dict[str, Comparison], labels: dict[str, str]) -> list[str]:
    lines = ["## Speedup: patched vs baseline", ""]
    in_turn = timed_in_turn(rs)
    if PATCHED.name not in comps:
        lines += ["No patched-vs-baseline pair in this run (it needs cases of both variants)."
                  if comps else "No baseline cases in this run: nothing to compare against.", ""]  # fmt: skip
    else:
        lines += [format_markdown(comps[PATCHED.name], in_turn).rstrip(), ""]
        lines += saving_lines(rs, comps[PATCHED.name], labels)
    if not comps:
        return lines
    lines += ["How far to trust these verdicts: every interval spans this run's worker processes (`--repeats`; "
              "with one process a side the gate calls no change, its interval being one process's precision); "
              "none includes variance between runs. A verdict marked *(in turn)* compares sides timed in separate turns "
              "(CUDA Graph cases always; eager cases of a run made without interleaving): its interval also "
              "excludes turn-to-turn variance, so a run-order artefact can pass for a change. Such a verdict is not "
              "a regression verdict; repeat the run or time the variants interleaved to settle it.", ""]  # fmt: skip
    lines += ["### Every variant vs baseline", "",
              "Speedup = baseline / the variant (above 1: faster than baseline), with the 95% interval of "
              "compare's ratio and its verdict; a cell names the side that did not run, "
              "and an expected finding of the case (n/a, finding) in plain words.",
              ""]  # fmt: skip
    groups = rs.frame.df.drop_duplicates("group_id").set_index("group_id")
    order = list(labels)
    keys = sorted({k for c in comps.values() for k in c.table["case"]},
                  key=lambda k: (order.index(groups.loc[g, "config_id"]) if (g := _group(k)[0]) in groups.index and
                                 groups.loc[g, "config_id"] in order else 999, bool(groups.loc[g, "graph"])
                                 if g in groups.index else False, k))  # fmt: skip
    by = {name: {r["case"]: r for r in c.table.to_dict("records")} for name, c in comps.items()}
    rows = []
    for k in keys:
        g, kernel = _group(k)
        label = (labels.get(groups.loc[g, "config_id"], g) if g in groups.index else g) + kernel
        mode = ("CUDA Graph" if bool(groups.loc[g, "graph"]) else "eager") if g in groups.index else ""
        cells = [_speedup_cell(by[n][k], g in in_turn) if k in by[n] else "-" for n in comps]
        rows.append([md_text(label), md_text(mode)] + cells)
    lines += md_table(["config", "mode"] + [md_text(n) for n in comps], rows)
    return lines + [""]


LAYERS = 61  # DeepSeek-V3.2's layers: forward_mixed runs once per layer per step


def saving_lines(rs: RunSet, comp: Comparison, labels: dict[str, str]) -> list[str]:
    """The absolute saving beside each ratio: µs per layer per step (one forward_mixed), and per
    step over the model's 61 layers (for a decode step: the time each generated token saves)."""
    groups = rs.frame.df.drop_duplicates("group_id").set_index("group_id")
    rows = []
    for r in comp.table.to_dict("records"):
        base, cand, (g, kernel) = r.get("base_level_ms"), r.get("cand_level_ms"), _group(r["case"])
        if not (isinstance(base, float) and isinstance(cand, float) and base == base and cand == cand
                and r["ratio"] == r["ratio"]):  # no ratio (too few samples): no speedup to put a saving beside
            continue
        per_layer, per_step = saving_per_token_us(base, cand, LAYERS)
        known = g in groups.index
        label = (labels.get(groups.loc[g, "config_id"], g) if known else g) + kernel
        mode = ("CUDA Graph" if bool(groups.loc[g, "graph"]) else "eager") if known else ""
        phase = str(groups.loc[g, "phase"]) if known else ""
        unit = "per token" if phase == "decode" else "per step"
        rows.append([md_text(label), md_text(mode), f"{base:.4f}", f"{cand:.4f}", f"{base / cand:.2f}x" if cand else "-",
                     f"{per_layer:+.1f}", f"{per_step:+.0f} ({unit})"])
    if not rows:
        return []
    return ["Absolute saving (positive: patched takes less time), from each side's level: the geometric mean of "
            "its process medians, the levels compare's ratio is formed from (eager cases, paired by round: patched = "
            "baseline x the ratio), so the speedup here is the table's; not medians of all samples. Per layer: one "
            "forward_mixed, i.e. "
            f"one layer of one step; over {LAYERS} layers: the whole model's step, which for a decode case is the "
            "time every generated token of each request saves (its requests decode in parallel), for a prefill or "
            "mixed case the time of that step.", "",
            *md_table(["config", "mode", "baseline ms", "patched ms", "speedup", "saved µs per layer per step",
                       f"saved µs over {LAYERS} layers"], rows), ""]


def headline(rs: RunSet, comps: dict[str, Comparison]) -> str | None:
    """'patched vs baseline, per case group: 4 faster, 1 same; 1 slower timed in turn (...)':
    verdicts of groups timed in turn are counted apart, and expected findings are named as such."""
    if PATCHED.name not in comps:
        return None
    in_turn = timed_in_turn(rs)
    firm: dict[str, int] = {}
    turn: dict[str, int] = {}
    findings: dict[str, int] = {}
    for r in comps[PATCHED.name].table.to_dict("records"):
        label = pair_finding(r)
        if label is not None:
            findings[label] = findings.get(label, 0) + 1
        elif _group(r["case"])[0] in in_turn and r["verdict"] in (Verdict.FASTER.value, Verdict.SLOWER.value):
            turn[r["verdict"]] = turn.get(r["verdict"], 0) + 1
        else:
            firm[r["verdict"]] = firm.get(r["verdict"], 0) + 1
    parts = [", ".join(f"{n} {k}" for k, n in firm.items())] if firm else []
    if turn:
        parts.append(", ".join(f"{n} {k}" for k, n in turn.items()) + " on within-run precision only (sides timed "
                     "in turn: not regression verdicts, see the speedup section)")  # fmt: skip
    parts += [f"{k} in {n} group{'s' if n != 1 else ''}" for k, n in findings.items()]
    return "patched vs baseline, per case group of this one run (no interval includes run-to-run variance): " + \
        "; ".join(parts)
