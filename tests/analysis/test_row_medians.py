"""The bootstrap's medians of resampled rows (each row some numbers, NaN-padded) are numpy's
nanmedian bit for bit: odd and even counts, ties, a single number, rows wider than numpy's
600-column switch to another path (seeded synthetic rows)."""

from __future__ import annotations

import numpy as np

from dsabench.analysis.hierarchy import row_nanmedians


def test_row_medians_are_numpys_nanmedian_bit_for_bit():
    rng = np.random.default_rng(0)
    for _ in range(400):
        n, width = int(rng.integers(1, 40)), int(rng.choice([1, 2, 7, 60, 599, 600, 900]))
        values = rng.lognormal(0.0, float(rng.uniform(0.001, 1.0)), (n, width))
        if rng.random() < 0.3:
            values = np.round(values, 2)  # ties
        counts = rng.integers(1, width + 1, n)
        values[np.arange(width)[None, :] >= counts[:, None]] = np.nan
        ours, numpys = row_nanmedians(values, counts), np.nanmedian(values, axis=1)
        assert np.array_equal(ours.view(np.int64), numpys.view(np.int64))
