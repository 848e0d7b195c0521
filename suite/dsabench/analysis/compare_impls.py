"""Impl vs impl inside one run: two FastDeploy commits (or the mirror and a commit), case by case.

A run made with `--impl A --impl B` measured both on the same inputs, interleaved per case group
in one worker. Pairs are made per case group (`compare.rows_by_group`, judged by the gate,
`gate.decide`, through `compare.pair_rows`; eager groups paired by process): a FastDeploy commit
has one case per group (the variant its code implies); where one side has several (the mirror
runs every variant), its case of the other side's variant is taken; where both have several (the
mirror and an injected mirror, `mirror+inject=F`), each variant is paired with the same variant,
keyed by its case id. The labels name each commit's SHA and subject.
"""

from __future__ import annotations

import pandas as pd

from dsabench.analysis.compare import (
    DEFAULT_THRESHOLD,
    Comparison,
    Threshold,
    _one_run,
    pair_rows,
    rows_by_group,
    within_run,
)
from dsabench.analysis.gate import check_threshold
from dsabench.analysis.stats import CONFIDENCE, N_BOOT, SEED
from dsabench.errors import InputError
from dsabench.store.frames import Frame
from dsabench.store.schema import INJECT_PREFIX, axis_kernel, record_key


def impls_of(frame: Frame) -> list[str]:
    """The impls of the run, in the manifest's order (then any only the records name)."""
    run_id = _one_run(frame, "RUN")
    listed = [i.get("label") for i in frame.manifests[run_id].get("impls") or [] if isinstance(i, dict)]
    found = [str(v) for v in frame.df["impl"].dropna().unique()]
    return [x for x in listed if x in found] + [x for x in found if x not in listed]


def _same_injection(name: str, label: str) -> bool:
    """'mirror+inject=0.250' names the impl labelled 'mirror+inject=0.25': the same fraction."""
    if not (name.startswith(INJECT_PREFIX) and label.startswith(INJECT_PREFIX)):
        return False
    try:
        return float(name[len(INJECT_PREFIX):]) == float(label[len(INJECT_PREFIX):])
    except ValueError:
        return False


def _resolve(name: str, impls: list[str], flag: str) -> str:
    """An impl by its label (an injected mirror by its fraction however spelt), or by a prefix of
    the commit SHA in its label."""
    if name in impls:
        return name
    same = [x for x in impls if _same_injection(name, x)]
    if len(same) == 1:
        return same[0]
    hits = [x for x in impls if x.startswith(f"fastdeploy:{name}") or x == f"fastdeploy:{name}"]
    if len(hits) == 1:
        return hits[0]
    raise InputError(f"{flag} {name!r}: the run's impls are {', '.join(impls) or 'none'}; expected one of them "
                     "(a label, or fastdeploy's SHA prefix)")


def _describe(df: pd.DataFrame, impl: str) -> str:
    rows = df[df["impl"] == impl]
    sha = next((str(s) for s in rows["impl_sha"].dropna()), "")
    subject = next((str(s) for s in rows["impl_subject"].dropna()), "")
    ops = next((str(s) for s in rows["impl_ops"].dropna()), "")
    parts = [impl] + ([f"{sha[:12]} {subject!r}"] if sha else []) + ([f"ops: {ops}"] if ops else [])
    return parts[0] + (f" ({'; '.join(parts[1:])})" if len(parts) > 1 else "")


def _pick(rows: list[dict], other: list[dict]) -> dict | None:
    if len(rows) == 1:
        return rows[0]
    want = {r["variant"] for r in other}
    mine = [r for r in rows if r["variant"] in want]
    return mine[0] if len(mine) == 1 else None


def compare_impls(
    frame: Frame,
    base_impl: str | None = None,
    cand_impl: str | None = None,
    *,
    threshold: Threshold = DEFAULT_THRESHOLD,
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int | None = SEED,
) -> Comparison:
    """Inside one run, pair each case group's cases of two impls and judge them (cand vs base).

    Without names the run must hold exactly two impls: the first given to `dsabench run` is base.
    """
    check_threshold(threshold, "compare")
    run_id = _one_run(frame, "RUN")
    impls = impls_of(frame)
    if base_impl is None and cand_impl is None:
        if len(impls) != 2:
            raise InputError(f"--impls: run {run_id!r} holds {len(impls)} impl(s) ({', '.join(impls) or 'none'}); "
                             "expected two, or name them with --base-impl and --cand-impl")
        base, cand = impls
    else:
        if base_impl is None or cand_impl is None:
            raise InputError("--impls: give both --base-impl and --cand-impl, or neither (a run of two impls)")
        base, cand = _resolve(base_impl, impls, "--base-impl"), _resolve(cand_impl, impls, "--cand-impl")
    if base == cand:
        raise InputError(f"--impls: base and cand are both {base!r}; expected two different impls")
    df = frame.df
    b = rows_by_group(df[df["impl"] == base], with_impl=False)
    c = rows_by_group(df[df["impl"] == cand], with_impl=False)
    bp, cp = {}, {}
    for key in b.keys() | c.keys():
        bs, cs = b.get(key, []), c.get(key, [])
        if len(bs) > 1 and len(cs) > 1:  # every variant on both sides: variant with variant
            bp.update((record_key(r["case_id"], None, axis_kernel(r)), r) for r in bs)
            cp.update((record_key(r["case_id"], None, axis_kernel(r)), r) for r in cs)
            continue
        if (one := _pick(bs, cs)) is not None:
            bp[key] = one
        if (one := _pick(cs, bs)) is not None:
            cp[key] = one
    pairs = pair_rows(bp, cp, threshold, confidence, n_boot, seed)
    return within_run(frame, run_id, "impls", _describe(df, base), _describe(df, cand), pairs, threshold, confidence)
