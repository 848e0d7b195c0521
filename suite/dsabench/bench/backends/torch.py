"""The DSA forward in PyTorch, the same phases and ops as backends/paddle.py in torch's idiom.

The lines PR #7253 changed read, in torch: `torch.tensor(200.0, device=...)` (a blocking
host-to-device copy) vs dividing by the float, and `.transpose(1, 2).contiguous()` vs `.view()`.
Torch treats the transposed [N, 1, B, 656] cache as contiguous (a size-1 dim's stride is
ignored), so its `.contiguous()` copies nothing: the suite measures and reports that as it is.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from dsabench.workload.cases import Case
from dsabench.errors import CaptureFailed, InvalidCase, Unsupported
from dsabench.workload.inputs import DEVICE_INPUTS, HostInputs, garbage_stripes
from dsabench.workload.dims import DEFAULT_DIMS, FP8_MAX
from dsabench.workload.variants import Variant
from dsabench.bench.backends.base import (
    NULL_MARKER, PROBE_N, Availability, Backend, Capability, Clock, Marker, MemoryProbe, probe_answer,
)
from dsabench.bench.backends.common import HostClock, view_refusal, visible_device
from dsabench.bench.kernels.attention import Attention, attention_for

FLT_MIN = float(np.finfo(np.float32).tiny)
L2_FLUSH_BYTES = 256 << 20  # well above the 50 MiB L2 of an H100


def _tensor(a: np.ndarray, device) -> torch.Tensor:
    """A tensor of its own (never a view of the host array: a worker reuses host inputs across items)."""
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.uint16).copy()).view(torch.bfloat16).to(device)
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.clone() if torch.device(device).type == "cpu" else t.to(device)


@dataclass
class TorchState:
    case: Case
    q: torch.Tensor
    compressed_kv: torch.Tensor
    k_pe: torch.Tensor
    prefill_kv: torch.Tensor
    block_tables: torch.Tensor
    position_ids: torch.Tensor
    batch_id_per_token: torch.Tensor
    decode_indices: torch.Tensor
    prefill_indices: torch.Tensor
    decode_token_mask: torch.Tensor
    latent_cache: torch.Tensor
    softmax_scale: float
    inputs_bytes: int = 0


def health_probe() -> str:
    """'' when this process's CUDA context still computes correctly, else what failed."""
    try:
        if torch.cuda.is_current_stream_capturing():
            return "the current stream is still capturing"
        torch.cuda.synchronize()
        total = int(torch.arange(PROBE_N, device="cuda", dtype=torch.int64).sum().item())
        torch.cuda.synchronize()
    except Exception as exc:  # noqa: BLE001 - any error is the answer
        return f"{type(exc).__name__}: {exc}"[:500]
    return probe_answer(total)


def compute_slot_mapping(block_tables, positions, batch_id_per_token, block_size: int) -> torch.Tensor:
    block_idx = positions // block_size
    block_ids = block_tables[batch_id_per_token.long(), block_idx.long()]
    block_offset = positions % block_size
    slot_mapping = block_ids * block_size + block_offset
    return slot_mapping.to(torch.int64)


def fp8_ds_mla_records(compressed_kv: torch.Tensor, k_pe: torch.Tensor) -> torch.Tensor:
    t = compressed_kv.shape[0]
    x = compressed_kv.float().reshape(t, DEFAULT_DIMS.num_tiles, -1)
    tile_scale = torch.clamp_min(x.abs().amax(dim=-1) / FP8_MAX, FLT_MIN)
    codes = torch.clamp(x / tile_scale.unsqueeze(-1), -FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    nope = codes.reshape(t, -1).view(torch.uint8)
    scales = tile_scale.contiguous().view(torch.uint8)
    rope = k_pe.reshape(t, -1).contiguous().view(torch.uint8)
    return torch.cat([nope, scales, rope], dim=-1)


def write_cache(compressed_kv, k_pe, latent_cache, slot_mapping, scale) -> None:
    """Same contract as the Paddle version: scale never read, slot < 0 skipped without a sync."""
    del scale
    _, heads, block_size, width = latent_cache.shape
    rows_view = latent_cache.view(-1, width)
    records = fp8_ds_mla_records(compressed_kv, k_pe)
    rows = (slot_mapping // block_size) * (heads * block_size) + slot_mapping % block_size
    valid = slot_mapping >= 0
    first = torch.argmax(valid.to(torch.int32)).reshape(1)  # a 0-d index would be read on the host
    any_valid = valid.any()
    first_row = rows.index_select(0, first)
    fallback_row = torch.where(any_valid, first_row, torch.zeros_like(first_row))
    fallback_rec = torch.where(any_valid, records.index_select(0, first), rows_view[:1])
    rows = torch.where(valid, rows, fallback_row)
    records = torch.where(valid.unsqueeze(-1), records, fallback_rec)
    rows_view.index_copy_(0, rows, records)


def _attend(q32, k, v, valid, scale: float):
    logits = torch.matmul(q32, k.transpose(-1, -2)) * scale
    logits = logits.masked_fill(~valid.unsqueeze(1), float("-inf"))
    m = logits.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    p = torch.exp(logits - m)
    denom = p.sum(dim=-1, keepdim=True)
    p = p / torch.where(denom > 0, denom, torch.ones_like(denom))
    return torch.matmul(p, v)


def sparse_decode(q, kv_cache, indices, scale: float):
    t, _, h, d = q.shape
    n, b, hk, width = kv_cache.shape
    dims = DEFAULT_DIMS
    records = kv_cache.reshape(n * b, hk, width)[:, 0, :]
    idx = indices.reshape(t, -1)
    valid = idx >= 0
    gathered = records.index_select(0, idx.clamp_min(0).reshape(-1).long())
    # A masked index gathered slot 0, whose bytes may be garbage (fp8 NaN codes, NaN scales):
    # zero those records so they dequantize to 0.0 and 0 * garbage never reaches the output.
    gathered = torch.where(valid.reshape(-1, 1), gathered, gathered.new_zeros(()))
    nope = gathered[:, : dims.kv_lora_rank].contiguous().view(torch.float8_e4m3fn).float()
    scales = gathered[:, dims.scale_offset : dims.rope_offset].contiguous().view(torch.float32)
    rope = gathered[:, dims.rope_offset :].contiguous().view(torch.bfloat16).float()
    latent = (nope.reshape(-1, dims.num_tiles, 128) * scales.unsqueeze(-1)).reshape(t, -1, dims.kv_lora_rank)
    key = torch.cat([latent, rope.reshape(t, -1, dims.qk_rope_head_dim)], dim=-1)
    out = _attend(q.reshape(t, h, d).float(), key, latent, valid, scale)
    return out.to(torch.bfloat16).reshape(t, 1, h, dims.kv_lora_rank)


def sparse_prefill(q, kv, indices, scale: float):
    t = q.shape[0]
    d_v = DEFAULT_DIMS.kv_lora_rank
    idx = indices.reshape(t, -1)
    valid = idx >= 0
    key = kv.reshape(t, -1).index_select(0, idx.clamp_min(0).reshape(-1).long()).float().reshape(t, idx.shape[1], -1)
    key = torch.where(valid.unsqueeze(-1), key, key.new_zeros(()))  # masked rows: never read
    out = _attend(q.float(), key, key[:, :, :d_v], valid, scale)
    return out.to(torch.bfloat16)


def merge_prefill_decode_output(prefill_out, decode_out, decode_token_mask) -> None:
    t, h, d = prefill_out.shape
    prefill_out.copy_(torch.where(decode_token_mask.reshape(t, 1, 1), decode_out.reshape(t, h, d), prefill_out))


def decode_layout(latent_cache: torch.Tensor, variant: Variant) -> torch.Tensor:
    """The cache as FlashMLA reads it, [N, B, h, 656]: the line #7253 changed."""
    if variant.layout == "contiguous":  # before #7253
        return latent_cache.transpose(1, 2).contiguous()
    new_cache_shape = list(latent_cache.shape)  # after #7253
    if new_cache_shape[1] != 1:
        raise InvalidCase(view_refusal(new_cache_shape))
    new_cache_shape[1], new_cache_shape[2] = new_cache_shape[2], new_cache_shape[1]
    return latent_cache.view(new_cache_shape)


REFERENCE = Attention("reference", sparse_decode, sparse_prefill)


def forward_mixed(st: TorchState, variant: Variant, mark: Marker = NULL_MARKER,
                  attention: Attention = REFERENCE) -> torch.Tensor:
    case = st.case
    compressed_kv, latent_cache = st.compressed_kv, st.latent_cache

    scale = None
    with mark("scale"):
        if variant.scale == "tensor":  # before #7253
            k_range = torch.tensor(200.0, device=compressed_kv.device)
            scale = torch.abs(compressed_kv).max() / k_range
        elif variant.scale == "scalar":  # after #7253
            scale = torch.abs(compressed_kv).max() / 200.0

    with mark("slot_mapping"):
        slot_mapping = compute_slot_mapping(st.block_tables, st.position_ids, st.batch_id_per_token, case.block_size)

    with mark("write_cache"):
        write_cache(compressed_kv, st.k_pe, latent_cache, slot_mapping, None if scale is None else scale.float())

    fmha_out_prefill = None
    if case.has_prefill:
        with mark("prefill"):
            fmha_out_prefill = attention.prefill(st.q, st.prefill_kv, st.prefill_indices, st.softmax_scale)

    if case.has_decode:
        with mark("layout"):
            kv_cache = decode_layout(latent_cache, variant)
        with mark("decode"):
            fmha_out_decode = attention.decode(st.q.unsqueeze(1).contiguous(), kv_cache, st.decode_indices,
                                               st.softmax_scale)
        if fmha_out_prefill is not None:
            with mark("merge"):
                merge_prefill_decode_output(fmha_out_prefill, fmha_out_decode, st.decode_token_mask)
            return fmha_out_prefill
        t, _, h, d = fmha_out_decode.shape
        return fmha_out_decode.reshape(t, h, d)
    return fmha_out_prefill


class TorchEventClock(Clock):
    """torch.cuda.Event pairs, made before the chunk, recorded on the current stream."""

    name = "cuda_event"

    def spans(self, n: int) -> list:
        return [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]

    def start(self, span) -> None:
        span[0].record()

    def stop(self, span) -> None:
        span[1].record()

    def elapsed_ms(self, span) -> float:
        span[1].synchronize()
        return float(span[0].elapsed_time(span[1]))

    def between_ms(self, first, last) -> float:
        last[1].synchronize()
        return float(first[0].elapsed_time(last[1]))


class TorchMemory(MemoryProbe):
    def allocated(self) -> int:
        return int(torch.cuda.memory_allocated())

    def reset_peak(self) -> None:
        torch.cuda.reset_peak_memory_stats()

    def peak(self) -> int:
        return int(torch.cuda.max_memory_allocated())


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, device: str | None = None) -> None:
        cuda = torch.cuda.is_available()
        if device == "gpu" and not cuda:
            raise Unsupported("backend torch: device 'gpu' asked for, but no CUDA device is visible")
        self.gpu = cuda and device in (None, "gpu")
        self.device = torch.device("cuda:0" if self.gpu else "cpu")
        if self.gpu:
            torch.cuda.set_device(self.device)
        self._flush_buf = None
        self._attention = REFERENCE

    def use_kernel(self, kernel: str) -> None:
        if kernel != "reference" and not self.gpu:
            raise Unsupported(f"kernel {kernel!r} needs a CUDA device; torch {torch.__version__} runs on the CPU here")
        self._attention = attention_for(kernel, "torch", REFERENCE)
        self.kernel = kernel

    def availability(self) -> Availability:
        nvtx_ok = Marker(None, True)._nvtx is not None
        reason = "" if self.gpu else f"CUDA Graph needs a CUDA device; torch {torch.__version__} sees none"
        return Availability(
            backend=self.name,
            framework_version=torch.__version__,
            device=Capability(True, str(self.device)),
            graph=Capability(self.gpu, reason),
            profiler_targets=("CPU", "CUDA") if self.gpu else ("CPU",),
            nvtx=Capability(nvtx_ok, "" if nvtx_ok else "the 'nvtx' package is not installed (pip install nvtx)"),
            details={"cuda": torch.version.cuda},
        )

    def device_identity(self) -> dict:
        if not self.gpu:
            return {"name": platform.processor() or platform.machine(), "index": None, "uuid": None, "kind": "cpu"}
        import os  # noqa: PLC0415

        p = torch.cuda.get_device_properties(self.device)
        index, uuid = visible_device(os.environ.get("CUDA_VISIBLE_DEVICES"), self.device.index)
        return {
            "name": p.name,
            "index": index,
            "uuid": uuid or (f"GPU-{p.uuid}" if getattr(p, "uuid", None) is not None else None),
            "sm_count": p.multi_processor_count,
            "memory_bytes": p.total_memory,
            "capability": f"{p.major}.{p.minor}",
            "kind": "gpu",
            "cuda_runtime": torch.version.cuda,
        }

    def prepare(self, case: Case, host: HostInputs) -> TorchState:
        """Inputs on the device; the cache is seeded garbage with NaN/inf stripes (inputs.py), then
        the context records."""
        dev, dims = self.device, DEFAULT_DIMS
        gen = torch.Generator(device=dev)
        gen.manual_seed(case.seed)
        shape = (case.num_blocks, case.cache_heads, case.block_size, dims.record_bytes)
        cache = torch.randint(0, 256, shape, dtype=torch.uint8, device=dev, generator=gen)
        words = cache.view(-1, dims.record_bytes).view(torch.int32)
        for rows, cols, word in garbage_stripes():  # NaN/inf garbage in unused records (inputs.py)
            words[rows, cols] = word
        if len(host.context_slots):
            rows = _tensor(host.context_rows, dev)
            cache.view(-1, dims.record_bytes).index_copy_(0, rows, _tensor(host.context_records, dev))
        inputs = {field: _tensor(getattr(host, name), dev) for field, name in DEVICE_INPUTS}
        st = TorchState(case=case, latent_cache=cache, softmax_scale=host.softmax_scale, **inputs)
        st.inputs_bytes = sum(t.numel() * t.element_size() for t in (*inputs.values(), cache))
        self.synchronize()
        return st

    def forward(self, state: TorchState, variant: Variant, mark: Marker = NULL_MARKER):
        return forward_mixed(state, variant, mark, self._attention)

    def layout_copy_bytes(self, state: TorchState, variant: Variant) -> int:
        kv = decode_layout(state.latent_cache, variant)
        return 0 if kv.data_ptr() == state.latent_cache.data_ptr() else kv.numel() * kv.element_size()

    def output_bytes(self, out) -> bytes:
        return out.contiguous().view(torch.uint8).cpu().numpy().tobytes()

    def all_finite(self, out) -> bool:
        return bool(torch.isfinite(out).all())

    def output_numpy(self, out) -> np.ndarray:
        return out.float().cpu().numpy()

    def cache_numpy(self, state: TorchState) -> np.ndarray:
        return state.latent_cache.cpu().numpy()

    def synchronize(self) -> None:
        if self.gpu:
            torch.cuda.synchronize()

    def clock(self) -> Clock:
        return TorchEventClock() if self.gpu else HostClock(self.synchronize)

    def capture(self, fn: Callable[[], Any]) -> tuple[Callable[[], None], Any]:
        """Warm up on a side stream, then capture one call of `fn` (torch.cuda.graph);
        (replay, static output). torch's replay launches on the current stream."""
        if not self.gpu:
            raise Unsupported(f"CUDA Graph capture needs a CUDA device; torch {torch.__version__} sees none")
        graph = torch.cuda.CUDAGraph()
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    fn()
            torch.cuda.current_stream().wait_stream(side)
            torch.cuda.synchronize()
            with torch.cuda.graph(graph):
                static_out = fn()
            torch.cuda.synchronize()
        except Exception as exc:  # the framework's own error text is the record's message
            raise CaptureFailed(f"{type(exc).__name__}: {exc}") from exc
        return graph.replay, static_out

    def flush_l2(self) -> None:
        if not self.gpu:
            return
        if self._flush_buf is None:
            self._flush_buf = torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device=self.device)
        self._flush_buf.zero_()

    def memory(self) -> MemoryProbe | None:
        return TorchMemory() if self.gpu else None

    def record_trace(self, step: Callable[[], None], iters: int, path: Path) -> Path:
        from dsabench.bench.backends.torch_profile import record_trace  # noqa: PLC0415

        return record_trace(step, iters, path, gpu=self.gpu)

    def marker(self, use_nvtx: bool) -> Marker:
        """NVTX (if asked) and torch profiler ranges: for the profiled pass, never a timed one."""
        return Marker(torch.profiler.record_function, use_nvtx)

    def unhealthy(self) -> str:
        """The stream is out of capture, a synchronize raises no pending device error, and a
        small reduction on the device gives its exact sum."""
        return health_probe() if self.gpu else ""

    def is_out_of_memory(self, exc: BaseException) -> bool:
        text = str(exc).lower()
        return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text
