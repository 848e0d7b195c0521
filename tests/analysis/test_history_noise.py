"""A case's run-to-run noise uses the newest MAX_RUNS run levels that count (finite, positive), and
`history_noise` computes only those: the same noise as computing the level of every earlier run
(seeded synthetic rows: runs without samples among the newest, and fewer runs than the window)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dsabench.analysis.noise import MAX_RUNS, case_key, history_noise, run_level, series_noise


def _rows(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for case, runs in (("a", 45), ("b", 12), ("c", 2)):
        for day in range(runs):
            procs = [list(np.exp(rng.normal(0, 0.02, 8)) * (1 + day / 500)) for _ in range(2)]
            if rng.random() < 0.2:
                procs = []  # a run of the case without samples: no level
            rows.append({"case_id": case, "device_name": "H100" if case != "b" else None, "backend": "torch",
                         "kernel": "reference", "impl": "mirror", "inject_delay": 0.0, "run_id": f"r{day:03d}",
                         "created_at": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=day),
                         "process_samples": procs, "samples_ms": [s for p in procs for s in p]})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed)  # in no particular order


def _every_level(rows: pd.DataFrame) -> dict:
    series: dict = {}
    for r in rows.sort_values(["created_at", "run_id"], kind="stable").to_dict("records"):
        series.setdefault(case_key(r, r["inject_delay"]), []).append(run_level(r["process_samples"], r["samples_ms"]))
    return {k: series_noise(v) for k, v in series.items()}


def _plain(noise: dict) -> dict:
    return {k: (None if math.isnan(n.spread) else n.spread, n.runs, n.source) for k, n in noise.items()}


def test_the_newest_levels_that_count_give_the_noise_of_every_level():
    for seed in range(6):
        rows = _rows(seed)
        ours = history_noise(rows)
        assert _plain(ours) == _plain(_every_level(rows))
        assert ours[("a", "H100", "torch", "reference", "mirror", 0.0)].runs == MAX_RUNS
        assert not ours[("c", "H100", "torch", "reference", "mirror", 0.0)].known
