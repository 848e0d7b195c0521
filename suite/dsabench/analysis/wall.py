"""Where a run's wall time went, from its own files: the manifest's attempts (wall time, worker
start-ups) and each record's `worker.stages_s` (seconds per stage in its worker).

Device-seconds are wall time x devices: what the run had to spend. Stages add up what the workers
spent on cases; start-ups what new processes cost before their first case; the rest is time no
worker was on a case: the pipe and record writing between cases, and devices idle at the end
while another finishes its last case. The timed pass is `timing`; everything else is overhead a
faster run can cut without touching what is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STAGES = ("inputs", "check", "capture", "timing", "phases", "memory", "trace")


@dataclass(frozen=True)
class WallBreakdown:
    wall_s: float  # the attempts' wall time together
    devices: int  # the most devices one attempt used
    device_s: float  # sum over attempts of wall x devices
    starts: dict = field(default_factory=dict)  # why -> (count, seconds)
    stages_s: dict = field(default_factory=dict)  # stage -> seconds, over every record of the run
    attempts: int = 0

    @property
    def start_s(self) -> float:
        return sum(s for _, s in self.starts.values())

    @property
    def other_s(self) -> float:
        return max(self.device_s - self.start_s - sum(self.stages_s.values()), 0.0)


def breakdown(records: list[dict], attempts: list[dict]) -> WallBreakdown | None:
    """`records`: every process's record (not merged across repeats); `attempts`: the manifest's.
    None when the run has no attempt on file (runs made before attempts were recorded)."""
    if not attempts:
        return None
    starts: dict[str, tuple[int, float]] = {}
    for a in attempts:
        for s in a.get("worker_starts") or ():
            n, t = starts.get(s["why"], (0, 0.0))
            starts[s["why"]] = (n + 1, t + float(s["seconds"]))
    stages: dict[str, float] = {}
    for r in records:
        for name, sec in ((r.get("worker") or {}).get("stages_s") or {}).items():
            stages[name] = stages.get(name, 0.0) + float(sec)
    ordered = {k: stages[k] for k in STAGES if k in stages} | {k: v for k, v in stages.items() if k not in STAGES}
    devices = [len(a.get("devices") or (None,)) for a in attempts]  # no device list: the default device
    return WallBreakdown(
        wall_s=sum(float(a["wall_s"]) for a in attempts), devices=max(devices),
        device_s=sum(float(a["wall_s"]) * n for a, n in zip(attempts, devices)),
        starts=starts, stages_s=ordered, attempts=len(attempts))
