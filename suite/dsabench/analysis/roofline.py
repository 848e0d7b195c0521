"""The work each phase of the forward must do, and how close a measured time comes to the
device's ceilings measured in the same run.

FLOPs count the matrix work of attention over the indices a token really uses (masked top-k
entries do no work); bytes are the fewest a phase must move through device memory (each input
read once, each output written once). Ceilings are what this device reached in the same run
(a device-to-device copy, read + write, and a large bf16 matmul: `bench.ceilings`), not
datasheet figures. A fraction of ceiling near 1 says the phase is at its floor; far below 1,
there is room, and which ceiling it is nearer says whether bytes or arithmetic bind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from dsabench.workload.dims import DEFAULT_DIMS, Dims

BF16 = 2


@dataclass(frozen=True)
class Work:
    flops: float
    bytes: float


def _requests(p: Mapping) -> list[tuple[int, int, bool]]:
    batch, phase = int(p["batch"]), p["phase"]
    decode = [(int(p["context_len"]), 1, False)] * (batch if phase != "prefill" else 0)
    if phase == "decode":
        return decode
    if phase == "prefill":
        return [(0, int(p["prefill_len"]), True)] * batch
    return [(0, int(p["prefill_len"]), True)] + decode


def phase_work(params: Mapping, *, layout_copy_bytes: float = 0.0, dims: Dims = DEFAULT_DIMS) -> dict[str, Work]:
    """Floor work per phase of one forward of the case described by `params` (a record's params)."""
    h, k = int(params["heads"]), int(params["topk"])
    qk, v, rec = dims.q_head_dim, dims.kv_lora_rank, dims.record_bytes
    reqs = _requests(params)
    t = sum(new for _, new, _ in reqs)
    dec_idx = sum(min(k, cached + 1) for cached, new, pre in reqs if not pre)
    pre_idx = sum(min(k, j + 1) for cached, new, pre in reqs if pre for j in range(new))
    dec_t = sum(1 for _, _, pre in reqs if not pre)
    pre_t = t - dec_t
    per_index = 2 * h * (qk + v)  # logits over 576 dims, then P.V over 512
    out: dict[str, Work] = {
        "scale": Work(t * v, t * v * BF16),
        "write_cache": Work(0, t * (v + dims.qk_rope_head_dim) * BF16 + t * rec),
        "layout": Work(0, 2 * layout_copy_bytes),
    }
    if dec_t:
        out["decode"] = Work(per_index * dec_idx, dec_idx * rec + dec_t * h * (qk + v) * BF16)
    if pre_t:
        out["prefill"] = Work(per_index * pre_idx, pre_idx * qk * BF16 + pre_t * h * (qk + v) * BF16)
    if dec_t and pre_t:
        out["merge"] = Work(0, 3 * t * h * v * BF16)
    return out


@dataclass(frozen=True)
class RooflineRow:
    phase: str
    ms: float
    flops: float
    bytes: float
    tflops: float
    gbs: float
    of_matmul: float  # achieved TFLOP/s over the measured matmul ceiling
    of_copy: float  # achieved GB/s over the measured copy ceiling
    floor_ms: float  # max(flops / matmul ceiling, bytes / copy ceiling)


def roofline(params: Mapping, phase_ms: Mapping[str, float], *, copy_gbs: float, matmul_tflops: float,
             layout_copy_bytes: float = 0.0) -> list[RooflineRow]:
    """One row per phase with a time: achieved rates and their fraction of the ceilings."""
    rows = []
    for phase, w in phase_work(params, layout_copy_bytes=layout_copy_bytes).items():
        ms = phase_ms.get(phase)
        if ms is None or not math.isfinite(ms) or ms <= 0:
            continue
        tflops = w.flops / (ms * 1e-3) / 1e12
        gbs = w.bytes / (ms * 1e-3) / 1e9
        floor = max(w.flops / (matmul_tflops * 1e12) if matmul_tflops > 0 else 0.0,
                    w.bytes / (copy_gbs * 1e9) if copy_gbs > 0 else 0.0) * 1e3
        rows.append(RooflineRow(phase, ms, w.flops, w.bytes, tflops, gbs,
                                tflops / matmul_tflops if matmul_tflops > 0 else math.nan,
                                gbs / copy_gbs if copy_gbs > 0 else math.nan, floor))
    return rows


def saving_per_token_us(baseline_ms: float, patched_ms: float, layers: int = 61) -> tuple[float, float]:
    """(µs saved per layer per decode step, µs saved per generated token over `layers` layers):
    the absolute figure beside a ratio. DeepSeek-V3.2 has 61 layers."""
    per_layer = (baseline_ms - patched_ms) * 1e3
    return per_layer, per_layer * layers
