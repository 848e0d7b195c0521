"""Each case's own run-to-run noise, estimated from its history.

A nightly comparison meets the variance between runs: clocks, where the host stalls land
against queued device work, the allocator's layout. One run cannot see it, however many
samples it takes. Earlier runs of the same case on the same device model and backend can: the
spread of their log medians is the case's run-to-run noise, and the gate widens its band to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from dsabench.analysis.hierarchy import robust_log_spread

# Fewer earlier runs than this give no estimate: the MAD of two values is their half-distance,
# and a spread estimated from it moves by a factor of two between histories.
MIN_RUNS = 3

# The newest runs used: a noise level from a year ago may not hold for today's machine.
MAX_RUNS = 30


@dataclass(frozen=True)
class Noise:
    """Relative run-to-run spread of one case (robust sd of log medians) and its support."""

    spread: float
    runs: int
    source: str  # "history" or "processes"

    @property
    def known(self) -> bool:
        return math.isfinite(self.spread)


UNKNOWN = Noise(math.nan, 0, "none")


def series_noise(medians: Iterable[float]) -> Noise:
    """Noise of one case from its medians, oldest first (the newest MAX_RUNS are used)."""
    m = [float(v) for v in medians if v is not None and math.isfinite(float(v)) and float(v) > 0][-MAX_RUNS:]
    if len(m) < MIN_RUNS:
        return Noise(math.nan, len(m), "history")
    return Noise(robust_log_spread(m), len(m), "history")


def history_noise(df: pd.DataFrame, key_columns: tuple[str, ...] = ("case_id", "device_name", "backend"),
                  order_column: str = "created_at") -> Mapping[tuple, Noise]:
    """Per case key: the noise of its ok runs' medians in `df` (a frame of earlier runs)."""
    if df.empty:
        return {}
    ok = df[(df["status"] == "ok") & df["median_ms"].notna()]
    out: dict[tuple, Noise] = {}
    for key, rows in ok.sort_values(order_column, kind="stable").groupby(list(key_columns), dropna=False, sort=False):
        out[key if isinstance(key, tuple) else (key,)] = series_noise(rows["median_ms"].to_numpy(dtype=float))
    return out


def pooled_spread(noises: Iterable[Noise]) -> float:
    """Median spread of the cases with a known noise: a machine-level figure for reports."""
    vals = [n.spread for n in noises if n.known]
    return float(np.median(vals)) if vals else math.nan
