"""Correctness verdicts over records: outputs bit-identical within each config (all variants,
impls and worker processes, eager and graph), no non-finite output, no crashed case, the float64
oracle's relative error against its bound, and which cases missed a comparison and why (a check
says nothing about a case it skipped).

It reads the raw records, one per case, impl and repeat (`run --repeats`), never the merged ones:
a merged case is ok when any of its processes was, which would let a NaN or a different digest in
another process pass. Every failure names the case, the impl and the repeat."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from dsabench.store.schema import NO_CHECK, axis_kernel

# Statuses whose record carries the output digest: the cases a bit-identity check can compare.
WITH_OUTPUT = ("ok", "nonfinite")
# A status that fails a check by itself: the impl raised or its worker died, so nothing of its output
# can be vouched for. (oom is a capacity limit, not a wrong result; expected findings are not failures.)
FAILS_CHECK = ("crashed",)
# Records written before the worker named why it skipped the oracle say nothing: say so, never guess.
NO_REASON = "the record gives no reason (written before records named one)"


@dataclass(frozen=True)
class CheckResult:
    """What was compared, what disagreed, and what was not compared.

    configs_checked / cases_compared: configs with outputs of two or more cases, and those cases,
    compared bit for bit. oracle_checked: cases compared with the float64 oracle (oracle_worst is
    the worst of those). skipped: (case_id, reason) of every case that missed the bit-identity or
    the oracle comparison, in record order.
    """

    configs_checked: int
    mismatches: tuple[str, ...]
    oracle_worst: float | None
    oracle_bound: float | None
    oracle_failures: tuple[str, ...]
    nonfinite: tuple[str, ...] = ()
    cases_compared: int = 0
    oracle_checked: int = 0
    skipped: tuple[tuple[str, str], ...] = ()
    crashed: tuple[str, ...] = ()
    # on a kernel axis: (kernel, worst relative error, cases compared) per kernel, in record order
    oracle_by_kernel: tuple[tuple[str, float, int], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.oracle_failures and not self.nonfinite and not self.crashed


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _skip_reason(r: dict, compared_configs: set[str]) -> str | None:
    """Why `r` missed a comparison, or None when it got both."""
    out = r.get("output") or {}
    if r["status"] not in WITH_OUTPUT or "digest" not in out:
        detail = _first_line(r.get("message", ""))
        return f"no output ({r['status']}{': ' + detail if detail else ''})"
    missed = []
    if _config(r) not in compared_configs:
        missed.append("no bit-identity comparison: no other case of its config has an output")
    if "oracle_rel_error" not in out:
        missed.append(f"no oracle comparison: {out.get('oracle_skipped', NO_REASON)}")
    return "; ".join(missed) or None


def _named(r: dict, repeats: bool = False) -> str:
    """The case id, the impl where it is not the mirror (one case id per impl of a run), the
    kernel on a kernel axis, and the repeat (worker-process pass) where the run has several."""
    impl = r.get("impl") or "mirror"
    name = r["case_id"] + ("" if impl == "mirror" else f" [{impl}]")
    name += f" [{kernel}]" if (kernel := axis_kernel(r)) else ""
    return name + (f" (repeat {r.get('repeat', 0)})" if repeats else "")


def _config(r: dict) -> str:
    """What must give identical bytes: a config; on a kernel axis, a config and kernel (two kernels
    round differently, and each is compared with the oracle instead)."""
    kernel = axis_kernel(r)
    return r["config_id"] + (f" [{kernel}]" if kernel else "")


def check_outputs(records: list[dict]) -> CheckResult:
    """The verdict over raw records (one per case, impl and repeat)."""
    digests: dict[str, dict[str, str]] = defaultdict(dict)
    worst, bound, failures, nonfinite, oracle_checked = None, None, [], [], 0
    by_kernel: dict[str, tuple[float, int]] = {}
    repeats = any(r.get("repeat", 0) for r in records)
    crashed = [f"{_named(r, repeats)}: {_first_line(r.get('message', '')) or '(no message)'}"
               for r in records if r["status"] in FAILS_CHECK]
    for r in records:
        out = r.get("output") or {}
        if r["status"] not in WITH_OUTPUT or "digest" not in out:
            continue
        # per impl and repeat too: two commits' outputs are compared, and each process's with the others
        digests[_config(r)][_named(r, repeats)] = out["digest"]
        if r["status"] == "nonfinite":
            nonfinite.append(f"{_named(r, repeats)}: {r.get('message', '')}")
        if "oracle_rel_error" in out:
            oracle_checked += 1
            err, bound = out["oracle_rel_error"], out.get("oracle_bound")
            worst = err if worst is None else max(worst, err)
            if (kernel := axis_kernel(r)) is not None:
                w, n = by_kernel.get(kernel, (err, 0))
                by_kernel[kernel] = (max(w, err), n + 1)
            if bound is not None and not err <= bound:
                failures.append(f"{_named(r, repeats)}: relative error {err:.3e} > bound {bound:.1e}")
    mismatches = []
    for config, by_case in digests.items():
        if len(set(by_case.values())) > 1:
            groups = defaultdict(list)
            for cid, d in by_case.items():
                groups[d[:12]].append(cid.removeprefix(config.split(" [")[0] + "."))
            mismatches.append(f"{config}: outputs differ: " + "; ".join(f"{d}: {', '.join(c)}" for d, c in groups.items()))
    compared = {config for config, by_case in digests.items() if len(by_case) > 1}
    skipped = tuple((_named(r, repeats), why) for r in records if (why := _skip_reason(r, compared)) is not None)
    return CheckResult(
        configs_checked=len(compared),
        mismatches=tuple(mismatches),
        oracle_worst=worst,
        oracle_bound=bound,
        oracle_failures=tuple(failures),
        nonfinite=tuple(nonfinite),
        cases_compared=sum(len(digests[c]) for c in compared),
        oracle_checked=oracle_checked,
        skipped=skipped,
        crashed=tuple(crashed),
        oracle_by_kernel=tuple((k, w, n) for k, (w, n) in by_kernel.items()),
    )
