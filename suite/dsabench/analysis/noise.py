"""Each case's own run-to-run noise, estimated from its history.

A nightly comparison meets the variance between runs: clocks, where the host stalls land
against queued device work, the allocator's layout. One run cannot see it, however many
samples it takes. Earlier runs of the same case can: the standard deviation of their log
levels is the case's run-to-run noise, with runs - 1 degrees of freedom, and the gate puts it
inside the interval with a Student t quantile of those degrees of freedom, which is what keeps
a spread estimated from 3 runs from being trusted like one from 30 (docs/statistics.md).

"The same case" means the same case id, device model, backend, attention kernel, impl and
injected delay (`HISTORY_KEY`): a fused kernel, a FastDeploy commit or a calibrate run's delay
is another series. Only runs made before the candidate count, and calibrate's runs only when asked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from dsabench.store.schema import INJECT_PREFIX

# Fewer earlier runs than this give no estimate: the sd of two values has one degree of freedom,
# and its t quantile (12.7) makes an interval too wide to call anything.
MIN_RUNS = 3

# The newest runs used: a noise level from a year ago may not hold for today's machine.
MAX_RUNS = 30

HISTORY_KEY = ("case_id", "device_name", "backend", "kernel", "impl", "inject_delay")


@dataclass(frozen=True)
class Noise:
    """Relative run-to-run spread of one case (sd of log run levels) and its support."""

    spread: float
    runs: int
    source: str  # "history" or "processes"

    @property
    def known(self) -> bool:
        return math.isfinite(self.spread)

    @property
    def df(self) -> int:
        """Degrees of freedom of the spread: one fewer than the runs it comes from."""
        return max(self.runs - 1, 0)


UNKNOWN = Noise(math.nan, 0, "none")


def series_noise(levels: Iterable[float]) -> Noise:
    """Noise of one case from its run levels (ms, oldest first; the newest MAX_RUNS are used):
    the sample standard deviation of their logs."""
    m = [float(v) for v in levels if v is not None and math.isfinite(float(v)) and float(v) > 0][-MAX_RUNS:]
    if len(m) < MIN_RUNS:
        return Noise(math.nan, len(m), "history")
    return Noise(float(np.std(np.log(m), ddof=1)), len(m), "history")


def run_level(process_samples, samples=None) -> float:
    """A run's level of one case: the geometric mean of its process medians (the gate's estimate)."""
    groups = [g for g in (process_samples if isinstance(process_samples, (list, tuple, np.ndarray)) else [])
              if isinstance(g, (list, tuple, np.ndarray)) and len(g)]
    if not groups and isinstance(samples, (list, tuple, np.ndarray)) and len(samples):
        groups = [samples]
    meds = [_median(g) for g in groups]
    meds = [m for m in meds if math.isfinite(m) and m > 0]
    return float(np.exp(np.mean(np.log(meds)))) if meds else math.nan


def _median(values) -> float:
    """numpy's median, bit for bit (the mean of the middle two for even n), of a list: np.median's
    per-call cost is most of a dashboard's time on a year of records of a few dozen samples."""
    x = sorted(np.asarray(values, dtype=float).ravel().tolist())
    n = len(x)
    if any(v != v for v in x):
        return math.nan
    return x[n // 2] if n % 2 else (x[n // 2 - 1] + x[n // 2]) / 2


def calibration_run(manifest: Mapping) -> bool:
    """A run `calibrate` made (marked in its options), or one with an injected delay: on every
    forward (`inject_delay`), or on an injected mirror's (`--impl mirror+inject=F`, whose rows would
    otherwise join the mirror's series, and whose plain mirror rows were timed beside them)."""
    opts = manifest.get("options") if isinstance(manifest.get("options"), Mapping) else {}
    impls = manifest.get("impls") if isinstance(manifest.get("impls"), list) else []
    injected = any(isinstance(i, Mapping) and str(i.get("label", "")).startswith(INJECT_PREFIX) for i in impls)
    return bool(opts.get("calibration")) or float(opts.get("inject_delay") or 0.0) > 0 or injected


def inject_of(manifest: Mapping) -> float:
    opts = manifest.get("options") if isinstance(manifest.get("options"), Mapping) else {}
    return float(opts.get("inject_delay") or 0.0)


def history_rows(df: pd.DataFrame, manifests: Mapping[str, Mapping], *, before=None, exclude: Iterable[str] = (),
                 include_calibration: bool = False) -> pd.DataFrame:
    """The ok rows of earlier runs that may vouch for a comparison's noise, with an `inject_delay`
    column: runs in `exclude` (the compared runs themselves) are left out, so are runs made at or
    after `before` (CAND's created_at) and, unless asked, calibrate's runs."""
    if df.empty:
        return df.assign(inject_delay=pd.Series(dtype=float))
    skip = set(exclude)
    if not include_calibration:
        skip |= {rid for rid, m in manifests.items() if calibration_run(m)}
    rows = df[(df["status"] == "ok") & df["median_ms"].notna() & ~df["run_id"].isin(skip)]
    if before is not None and not pd.isna(before):
        when = pd.to_datetime(rows["created_at"], utc=True, errors="coerce")
        rows = rows[when < pd.Timestamp(before)]
    inject = {r: inject_of(manifests.get(r) or {}) for r in rows["run_id"].unique()}  # once a run, not once a row
    return rows.assign(inject_delay=rows["run_id"].map(lambda r: inject[r]))


def _text(value, default: str) -> str:
    return str(value) if isinstance(value, str) and value else default


def case_key(row: Mapping, inject_delay: float) -> tuple:
    """The series a row belongs to (`HISTORY_KEY`), NaN-free so that it can be looked up."""
    return (str(row["case_id"]), _text(row.get("device_name"), "unknown"), _text(row.get("backend"), "unknown"),
            _text(row.get("kernel"), "reference"), _text(row.get("impl"), "mirror"), float(inject_delay or 0.0))


def _counts(level: float) -> bool:
    """A level `series_noise` uses: finite and positive."""
    return level is not None and math.isfinite(float(level)) and float(level) > 0


def history_noise(rows: pd.DataFrame, order_column: str = "created_at") -> Mapping[tuple, Noise]:
    """Per case key (`case_key`): the noise of its runs' levels in `rows` (from `history_rows`),
    ordered by order_column then run_id. Only the newest MAX_RUNS levels that count are used, so
    only they are computed (`run_level`), newest first: a year of nightly rows is 70,000 levels,
    of which a comparison uses ~6,000."""
    if rows.empty:
        return {}
    rows = rows.sort_values([order_column, "run_id"], kind="stable")
    names = [c for c in ("case_id", "device_name", "backend", "kernel", "impl") if c in rows.columns]
    places: dict[tuple, list[int]] = {}
    for i, (values, inject) in enumerate(zip(zip(*(rows[c].tolist() for c in names)), rows["inject_delay"].tolist())):
        places.setdefault(case_key(dict(zip(names, values)), inject), []).append(i)
    processes, samples = rows["process_samples"].tolist(), rows["samples_ms"].tolist()
    out = {}
    for key, where in places.items():
        newest: list[float] = []
        for i in reversed(where):
            level = run_level(processes[i], samples[i])
            if _counts(level):
                newest.append(level)
                if len(newest) == MAX_RUNS:
                    break
        out[key] = series_noise(newest[::-1])
    return out
