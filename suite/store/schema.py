"""The record of one measured case: what `cases.jsonl` holds, one JSON object a line.

Raw per-iteration samples are the record; medians and intervals are recomputed at analysis time.
Version history lives in `store.upgrade_record`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SCHEMA_VERSION = 1

STATUSES = ("ok", "capture_failed", "oom", "crashed", "unsupported", "invalid", "nonfinite")



@dataclass(frozen=True)
class Timing:
    """Per-iteration latencies: each sample is K back-to-back forwards divided by K.

    clock: `cuda_event` (device events around the K forwards) or `host` (perf_counter after a
    synchronize). stop_reason says which stopping rule ended the repetition.
    """

    samples_ms: tuple[float, ...]
    iters_per_sample: int
    warmup_iters: int
    warmup_ms: float
    clock: str
    stop_reason: str
    unit: str = "ms"


@dataclass(frozen=True)
class Record:
    run_id: str
    case_id: str
    config_id: str
    group_id: str
    params: dict
    status: str
    message: str
    backend: str
    device: dict
    timing: Timing | None = None
    phases_ms: dict = field(default_factory=dict)
    trace: dict | None = None
    memory: dict | None = None
    output: dict | None = None
    # which forward each figure came from: timing 'eager' | 'graph'; phases_ms and memory are
    # always 'eager' (a graph replay is one launch, not splittable by phase)
    sources: dict = field(default_factory=dict)
    started_at: str = ""
    wall_s: float = 0.0
    worker: dict = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    # where the forward came from: 'mirror' or 'fastdeploy:<sha12>'; impl_info says the commit's sha,
    # subject, dirty flag, ops ('fastdeploy' | 'dsabench') with the reason, and the stand-in modules
    impl: str = "mirror"
    impl_info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"record {self.case_id!r}: status {self.status!r}; expected one of {list(STATUSES)}")

    def to_json(self) -> dict:
        d = asdict(self)
        if self.timing is not None:
            d["timing"]["samples_ms"] = list(self.timing.samples_ms)
        return d


def record_key(case_id: str, impl: str | None = "mirror") -> str:
    """What identifies a record within a run: the case id, and the impl unless it is the mirror.

    One run holds one record per (case, impl); a mirror record keeps its bare case id, so runs made
    before impls existed load and resume unchanged."""
    return case_id if impl in (None, "", "mirror") else f"{case_id}@{impl}"
