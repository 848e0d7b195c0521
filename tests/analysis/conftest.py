"""Real run directories on disk for the analysis tests: store.create_run_dir + append_record with
the writer's own types (manifests from tests/run_files.py, records from real Cases), seeded
lognormal samples. No GPU, no framework."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from msgspec import structs

from dsabench.workload.cases import Case
from dsabench.store.schema import Record, Timing
from dsabench.store.rundir import append_record, create_run_dir
from dsabench.store.schema import key_of
from dsabench.workload.variants import BASELINE, Variant
from run_files import gpu, manifest

H100 = "NVIDIA H100 80GB HBM3"
H200 = "NVIDIA H200"


def make_case(batch: int = 8, variant: Variant = BASELINE, graph: bool = True, context_len: int = 4096) -> Case:
    return Case("smoke", "decode", batch, context_len, 0, 1024, 64, 1, 128, 2048, variant, graph, 0)


def lognormal(seed: int, median_ms: float = 1.0, sigma: float = 0.01, n: int = 30) -> list[float]:
    """n seeded samples around median_ms with relative spread sigma (x = median * exp(N(0, sigma)))."""
    return [float(v) for v in median_ms * np.exp(np.random.default_rng(seed).normal(0.0, sigma, n))]


class RunBuilder:
    """Writes runs under one directory; each run gets a fresh subdirectory."""

    H100 = H100
    H200 = H200
    case = staticmethod(make_case)
    samples = staticmethod(lognormal)

    def __init__(self, root: Path):
        self.root = root

    def record(
        self,
        case: Case,
        run_id: str,
        samples=None,
        status: str = "ok",
        message: str = "",
        backend: str = "paddle",
        device: str = H100,
        clock: str = "cuda_event",
        trace: dict | None = None,
        memory: dict | None = None,
        repeat: int = 0,
    ) -> dict:
        timing = None if samples is None else Timing(tuple(samples), 10, 5, 25.0, clock, "min_samples")
        return Record(
            run_id, case.id, case.config_id, case.group_id, case.params(), status, message, backend,
            {"name": device, "index": 0, "uuid": "GPU-0000"}, timing, trace=trace, memory=memory, repeat=repeat,
        ).to_json()

    def processes(self, case: Case, run_id: str, samples: list[float], n: int = 3, **kw) -> list[dict]:
        """The records of one case measured in n worker processes (`run --repeats n`)."""
        return [self.record(case, run_id, samples[rep::n], repeat=rep, **kw) for rep in range(n)]

    def run(
        self,
        name: str,
        records: list[dict],
        run_id: str | None = None,
        backend: str = "paddle",
        device: str = H100,
        created_at: str = "2025-01-01T00:00:00+00:00",
        commit: str | None = "a" * 40,
        shard: str | None = None,
        workers: tuple = (),
        options: dict | None = None,
        cases_planned: int | None = None,
    ) -> Path:
        """A run directory; `shard` is "K/N" (the manifest stores [K, N]); `workers`: WorkerInfo hellos;
        `options`: RunOptions fields to set (inject_delay, calibration, kernel, ...); `cases_planned`: what
        the manifest says the run planned (default: the cases its records hold, a finished run)."""
        k_n = tuple(int(x) for x in shard.split("/")) if shard else None
        written = manifest(run_id or name, backend=backend, created_at=created_at, shard=k_n, commit=commit,
                           gpus=(gpu(device),), cases_planned=len({key_of(r) for r in records}) if cases_planned is None else cases_planned)  # fmt: skip
        written = structs.replace(written, workers=tuple(workers))
        if options:
            written = structs.replace(written, options=structs.replace(written.options, **options))
        path = create_run_dir(self.root / name, written)
        for r in records:
            append_record(path, r)
        return path

    def simple_run(self, name: str, cases: dict[Case, list[float]], processes: int = 3, **kw) -> Path:
        """A run whose cases are all ok with the given samples, measured in `processes` worker
        processes (`run --repeats`): each case's samples are dealt out to that many records."""
        run_id = kw.get("run_id") or name
        rec_kw = {k: kw[k] for k in ("backend", "device") if k in kw}
        records = [self.record(c, run_id, s[rep::processes], repeat=rep, **rec_kw)
                   for c, s in cases.items() for rep in range(processes)]
        return self.run(name, records, **kw)


@pytest.fixture
def builder(tmp_path: Path) -> RunBuilder:
    return RunBuilder(tmp_path)
