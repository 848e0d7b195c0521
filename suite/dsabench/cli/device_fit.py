"""Refuse a run whose cases cannot fit the memory of the devices it targets, before allocating.

Choice: refuse the run with one line (exit 2), rather than record those cases `oom` without
trying. The estimate (`Case.estimated_bytes`: cache, the baseline's copy of it, activations) is a
plan, not a measurement, and an `oom` record would claim a failure that never happened; refusing
names the cases up front, before a run directory exists, so the user can leave them out with
--filter or an [[exclude]]. A case that fits the estimate but not the device at run time is still
recorded `oom` by its worker.

Device memory: GPU total memory from NVML when the run targets GPUs (the smallest of them, since
any case can land on any worker; indices are NVML's, which match CUDA's when the GPUs are alike
or CUDA_DEVICE_ORDER=PCI_BUS_ID); the host's physical memory when it targets the CPU. When a GPU
is asked for but NVML cannot describe it, nothing is checked here.
"""

from __future__ import annotations

import os
from typing import Sequence

from dsabench.errors import InputError
from dsabench.workload.cases import Case
from dsabench.workload.limits import gib, needed_bytes


def host_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gpu(gpus: list[dict], device: str) -> dict | None:
    for g in gpus:
        if device.isdigit() and g.get("index") == int(device):
            return g
        if device.startswith("GPU-") and str(g.get("uuid", "")).startswith(device):
            return g
    return None


def target_memory(devices: Sequence[str] | None, gpus: list[dict]) -> tuple[int, str] | None:
    """(bytes, what they are) of the smallest device the run targets; None when unknown."""
    if devices is None:
        if not gpus:
            return host_memory_bytes(), "the host's memory (a CPU run)"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
        devices = (visible or "0",)
    found = []
    for device in devices:
        if device.startswith("cpu:"):
            found.append((host_memory_bytes(), "the host's memory (a CPU worker)"))
            continue
        g = _gpu(gpus, device)
        if g is None or not g.get("memory_total_bytes"):
            return None
        found.append((int(g["memory_total_bytes"]), f"the memory of GPU {device} ({g.get('name', 'unknown')})"))
    return min(found) if found else None


def held_at_once(planned: Sequence[tuple], interleave: bool) -> list[tuple[Case, int]]:
    """Each planned case (with its impl's variant: a FastDeploy commit's case is the variant its
    code runs, copy and all) with how many impls' inputs are held while it runs: an eager group
    timed in rounds keeps every impl's state at once (kernels of an impl share one); a CUDA Graph
    case, or any case without interleaving, is a work item of its own (one state)."""
    impls: dict[str, set[str]] = {}
    for case, impl, *_ in planned:
        impls.setdefault(case.group_id, set()).add(impl)
    out: dict[tuple[str, str], tuple[Case, int]] = {}
    for case, impl, *_ in planned:
        states = len(impls[case.group_id]) if interleave and not case.graph else 1
        out[(case.id, impl)] = (case, states)
    return list(out.values())


def refuse_oversized(planned: Sequence[tuple], devices: Sequence[str] | None, interleave: bool = True) -> None:
    """Raise InputError naming the planned cases ((case, impl, kernel): `impls.plan.plan`) whose
    estimated memory, with the impls' inputs held at once (`held_at_once`), exceeds the targeted device's."""
    from dsabench.bench.env import gpus  # noqa: PLC0415

    target = target_memory(devices, gpus())
    if target is None:
        return
    capacity, what = target
    items = held_at_once(planned, interleave)
    over = sorted(((c, n) for c, n in items if needed_bytes(c, n) > capacity), key=lambda cn: -needed_bytes(*cn))
    if over:
        (case, states), total = over[0], len({c.id for c, _ in items})
        n = len({c.id for c, _ in over})
        held = f"; {states} impls timed together, each with its own cache" if states > 1 else ""
        raise InputError(
            f"{n} of {total} cases {'needs' if n == 1 else 'need'} more memory than {what} holds, {gib(capacity)}: the largest, "
            f"{case.id}, needs an estimated {gib(needed_bytes(case, states))} (cache, its copy and activations{held}; "
            "an estimate, not a measurement); leave them out with --filter or an [[exclude]]"
        )
