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
from dsabench.workload.limits import gib, needed_bytes, over_capacity


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


def refuse_oversized(cases: Sequence[Case], devices: Sequence[str] | None, impls: int = 1) -> None:
    """Raise InputError naming the cases whose estimated memory, with the run's `impls` each holding
    its own inputs, exceeds the targeted device's."""
    from dsabench.bench.env import gpus  # noqa: PLC0415

    target = target_memory(devices, gpus())
    if target is None:
        return
    capacity, what = target
    over = over_capacity(cases, capacity, impls)
    if over:
        held = f"; {impls} impls, each with its own cache" if impls > 1 else ""
        raise InputError(
            f"{len(over)} of {len(cases)} cases {'needs' if len(over) == 1 else 'need'} more memory than {what} holds, {gib(capacity)}: the largest, "
            f"{over[0].id}, needs an estimated {gib(needed_bytes(over[0], impls))} (cache, its copy and activations{held}; "
            "an estimate, not a measurement); leave them out with --filter or an [[exclude]]"
        )
