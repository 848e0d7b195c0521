"""The DSA forward in Paddle, mirroring FastDeploy's `DSAAttentionBackend.forward_mixed`.

FastDeploy's custom CUDA ops (`dsk_attn_write_cache`, `flash_mla.flash_mla_with_kvcache`,
`flash_mla.flash_mla_sparse_fwd`, `merge_prefill_decode_output`) are written here in plain Paddle
with the same inputs, outputs and byte layout; the two lines PR #7253 changed are written exactly
as before and after it. GPU-only paths (device events, CUDA Graph, GPU profiler target, memory
statistics) follow Paddle 3.x's documented APIs and are guarded by capability checks; see
README "What ran where" for which of them ran on a GPU.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import paddle

from dsabench.workload.cases import Case
from dsabench.errors import CaptureFailed, InvalidCase, Unsupported
from dsabench.workload.inputs import DEVICE_INPUTS, HostInputs, garbage_stripes
from dsabench.workload.dims import DEFAULT_DIMS, FP8_MAX
from dsabench.workload.variants import Variant
from dsabench.bench.backends.base import (
    NULL_MARKER, PROBE_N, Availability, Backend, Capability, Clock, Marker, MemoryProbe, probe_answer,
)
from dsabench.bench.backends.common import HostClock, view_refusal, visible_device

FLT_MIN = float(np.finfo(np.float32).tiny)
L2_FLUSH_BYTES = 256 << 20  # well above the 50 MiB L2 of an H100


def host_scalar_tensor(value: float) -> paddle.Tensor:
    """`paddle.tensor(value)` as FastDeploy wrote it before #7253 (callable in Paddle 3.3).

    On versions where `paddle.tensor` is only a module, `paddle.to_tensor` is the same
    host-to-device copy.
    """
    if callable(paddle.tensor):
        return paddle.tensor(value)
    return paddle.to_tensor(value)


def abs_max(x: paddle.Tensor) -> paddle.Tensor:
    """`paddle.abs(x).max()`; Paddle's CPU build has no bf16 `abs` kernel, so there it upcasts first.

    The upcast is one extra op in the CPU `scale` phase only; on GPU the line is FastDeploy's.
    """
    if x.dtype == paddle.bfloat16 and x.place.is_cpu_place():
        x = x.cast(paddle.float32)
    return paddle.abs(x).max()


def _tensor(a: np.ndarray, place) -> paddle.Tensor:
    """NumPy -> Paddle; bf16 (ml_dtypes) travels as its uint16 bits and is viewed back."""
    if a.dtype.name == "bfloat16":
        return paddle.to_tensor(a.view(np.uint16), place=place).view(paddle.bfloat16)
    return paddle.to_tensor(a, place=place)


@dataclass
class PaddleState:
    case: Case
    q: paddle.Tensor
    compressed_kv: paddle.Tensor
    k_pe: paddle.Tensor
    prefill_kv: paddle.Tensor
    block_tables: paddle.Tensor
    position_ids: paddle.Tensor
    batch_id_per_token: paddle.Tensor
    decode_indices: paddle.Tensor
    prefill_indices: paddle.Tensor
    decode_token_mask: paddle.Tensor
    latent_cache: paddle.Tensor
    softmax_scale: float
    inputs_bytes: int


# ---- FastDeploy's ops, in plain Paddle ---------------------------------------------------


def compute_slot_mapping(block_tables, positions, batch_id_per_token, block_size: int) -> paddle.Tensor:
    """FastDeploy's compute_slot_mapping, line for line."""
    block_idx = positions // block_size
    block_ids = block_tables[batch_id_per_token, block_idx]
    block_offset = positions % block_size
    slot_mapping = block_ids * block_size + block_offset
    return slot_mapping.cast(paddle.int64)


def fp8_ds_mla_records(compressed_kv: paddle.Tensor, k_pe: paddle.Tensor) -> paddle.Tensor:
    """656-byte records [T, 656] uint8 as the fp8_ds_mla branch of the write-cache kernel makes them.

    Per 128-value tile: scale = max(amax / 448, FLT_MIN) in float32; fp8 = e4m3fn(clamp(x / scale,
    -448, 448)); then the 4 float32 scales, then the 64 bf16 rope values raw.
    """
    t = compressed_kv.shape[0]
    tiles = DEFAULT_DIMS.num_tiles
    x = compressed_kv.cast(paddle.float32).reshape([t, tiles, -1])
    tile_scale = paddle.maximum(x.abs().max(axis=-1) / FP8_MAX, paddle.full([], FLT_MIN, paddle.float32))
    codes = paddle.clip(x / tile_scale.unsqueeze(-1), -FP8_MAX, FP8_MAX).cast(paddle.float8_e4m3fn)
    nope = codes.reshape([t, -1]).view(paddle.uint8)
    scales = tile_scale.contiguous().view(paddle.uint8)
    rope = k_pe.reshape([t, -1]).contiguous().view(paddle.uint8)
    return paddle.concat([nope, scales, rope], axis=-1)


def write_cache(compressed_kv, k_pe, latent_cache, slot_mapping, scale) -> None:
    """dsk_attn_write_cache(..., "fp8_ds_mla"): each token's record at its slot, head 0.

    `scale` is accepted and, as in FastDeploy's kernel, never read. A slot < 0 is skipped:
    such a token rewrites the record of the first valid token at that token's own row (or row 0
    with its own bytes when none is valid), so the write stays one device-side scatter with no
    host sync, which CUDA Graph capture needs, and its result does not depend on write order.
    """
    del scale  # the fp8_ds_mla branch of the kernel never reads it
    _, heads, block_size, width = latent_cache.shape
    rows_view = latent_cache.view([-1, width]).view(paddle.int32)  # scatter has no uint8 kernel
    records = fp8_ds_mla_records(compressed_kv, k_pe).view(paddle.int32)
    rows = (slot_mapping // block_size) * (heads * block_size) + slot_mapping % block_size
    valid = slot_mapping >= 0
    first = paddle.argmax(valid.cast(paddle.int32)).reshape([1])  # a 0-d index would be read on the host
    any_valid = valid.any()
    first_row = paddle.gather(rows, first)
    fallback_row = paddle.where(any_valid, first_row, paddle.zeros_like(first_row))
    fallback_rec = paddle.where(any_valid, paddle.gather(records, first), rows_view[:1])
    rows = paddle.where(valid, rows, fallback_row)
    records = paddle.where(valid.unsqueeze(-1), records, fallback_rec)
    paddle.scatter_(rows_view, rows, records, overwrite=True)


def _attend(q32: paddle.Tensor, k: paddle.Tensor, v: paddle.Tensor, valid: paddle.Tensor, scale: float):
    """softmax(scale * q k^T) v over the selected keys; rows with no valid key give zeros."""
    logits = paddle.matmul(q32, k, transpose_y=True) * scale  # [T, H, topk]
    neg = paddle.full([], float("-inf"), paddle.float32)
    logits = paddle.where(valid.unsqueeze(1), logits, neg)
    m = logits.max(axis=-1, keepdim=True)
    m = paddle.where(paddle.isfinite(m), m, paddle.zeros_like(m))
    p = paddle.exp(logits - m)
    denom = p.sum(axis=-1, keepdim=True)
    p = p / paddle.where(denom > 0, denom, paddle.ones_like(denom))
    return paddle.matmul(p, v)  # [T, H, d_v]


def sparse_decode(q: paddle.Tensor, kv_cache: paddle.Tensor, indices: paddle.Tensor, scale: float):
    """flash_mla_with_kvcache, sparse fp8 mode: q [T, 1, H, 576], cache [N, B, h_k, 656], indices
    [T, 1, topk] of global slots (block * B + offset, -1 masked) -> out [T, 1, H, 512] bf16.
    """
    t, _, h, d = q.shape
    n, b, hk, width = kv_cache.shape
    dims = DEFAULT_DIMS
    records = kv_cache.reshape([n * b, hk, width])[:, 0, :]  # latent head 0 of each slot
    idx = indices.reshape([t, -1])
    valid = idx >= 0
    gathered = paddle.gather(records, paddle.clip(idx, min=0).reshape([-1]))  # [T*topk, 656]
    # A masked index gathered slot 0, whose bytes may be garbage (fp8 NaN codes, NaN scales):
    # zero those records (as int32 words: `where` has no uint8 kernel) so they dequantize to 0.0
    # and 0 * garbage never reaches the output.
    words = paddle.where(valid.reshape([-1, 1]), gathered.view(paddle.int32), paddle.zeros([], paddle.int32))
    gathered = words.view(paddle.uint8)
    nope = gathered[:, : dims.kv_lora_rank].contiguous().view(paddle.float8_e4m3fn).cast(paddle.float32)
    scales = gathered[:, dims.scale_offset : dims.rope_offset].contiguous().view(paddle.float32)
    rope = gathered[:, dims.rope_offset :].contiguous().view(paddle.bfloat16).cast(paddle.float32)
    latent = (nope.reshape([-1, dims.num_tiles, 128]) * scales.unsqueeze(-1)).reshape([t, -1, dims.kv_lora_rank])
    key = paddle.concat([latent, rope.reshape([t, -1, dims.qk_rope_head_dim])], axis=-1)
    out = _attend(q.reshape([t, h, d]).cast(paddle.float32), key, latent, valid, scale)
    return out.cast(paddle.bfloat16).reshape([t, 1, h, dims.kv_lora_rank])


def sparse_prefill(q: paddle.Tensor, kv: paddle.Tensor, indices: paddle.Tensor, scale: float):
    """flash_mla_sparse_fwd: q [T, H, 576], kv [T, 1, 576] bf16, indices [T, 1, topk] -> [T, H, 512]."""
    t = q.shape[0]
    d_v = DEFAULT_DIMS.kv_lora_rank
    idx = indices.reshape([t, -1])
    valid = idx >= 0
    key = paddle.gather(kv.reshape([t, -1]), paddle.clip(idx, min=0).reshape([-1])).cast(paddle.float32)
    key = key.reshape([t, idx.shape[1], -1])
    key = paddle.where(valid.unsqueeze(-1), key, paddle.zeros([], paddle.float32))  # masked rows: never read
    out = _attend(q.cast(paddle.float32), key, key[:, :, :d_v], valid, scale)
    return out.cast(paddle.bfloat16)


def merge_prefill_decode_output(prefill_out, decode_out, decode_token_mask) -> None:
    """Decode rows written into the prefill output in place (merge_prefill_decode_output).

    Selects on the bits (bf16 pairs viewed as int32), which copies values exactly and needs no
    bf16 `where` kernel (Paddle's CPU build has none).
    """
    t, h, d = prefill_out.shape
    dst = prefill_out.view(paddle.int32)
    src = decode_out.reshape([t, h, d]).contiguous().view(paddle.int32)
    paddle.assign(paddle.where(decode_token_mask.reshape([t, 1, 1]), src, dst), output=dst)


def decode_layout(latent_cache: paddle.Tensor, variant: Variant) -> paddle.Tensor:
    """The cache as FlashMLA reads it, [N, B, h, 656]: the line #7253 changed."""
    if variant.layout == "contiguous":  # before #7253
        return latent_cache.transpose([0, 2, 1, 3]).contiguous()
    new_cache_shape = list(latent_cache.shape)  # after #7253
    if new_cache_shape[1] != 1:
        raise InvalidCase(view_refusal(new_cache_shape))
    new_cache_shape[1], new_cache_shape[2] = new_cache_shape[2], new_cache_shape[1]
    return latent_cache.view(new_cache_shape)


def forward_mixed(st: PaddleState, variant: Variant, mark: Marker = NULL_MARKER, attention=None) -> paddle.Tensor:
    """forward_mixed of one layer, phase by phase; the variant picks the lines #7253 changed.
    `attention` (kernels/attention.py): FlashMLA when chosen; None: the plain ops below."""
    prefill_fn, decode_fn = (attention.prefill, attention.decode) if attention else (sparse_prefill, sparse_decode)
    case = st.case
    compressed_kv, latent_cache = st.compressed_kv, st.latent_cache

    scale = None
    with mark("scale"):
        if variant.scale == "tensor":  # before #7253
            k_range = host_scalar_tensor(200.0)
            scale = abs_max(compressed_kv) / k_range
        elif variant.scale == "scalar":  # after #7253
            scale = abs_max(compressed_kv) / 200.0

    with mark("slot_mapping"):
        slot_mapping = compute_slot_mapping(st.block_tables, st.position_ids, st.batch_id_per_token, case.block_size)

    with mark("write_cache"):
        write_cache(
            compressed_kv, st.k_pe, latent_cache, slot_mapping, None if scale is None else scale.cast(paddle.float32)
        )

    fmha_out_prefill = None
    if case.has_prefill:
        with mark("prefill"):
            fmha_out_prefill = prefill_fn(st.q, st.prefill_kv, st.prefill_indices, st.softmax_scale)

    if case.has_decode:
        with mark("layout"):
            kv_cache = decode_layout(latent_cache, variant)
        with mark("decode"):
            fmha_out_decode = decode_fn(st.q.unsqueeze(1).contiguous(), kv_cache, st.decode_indices, st.softmax_scale)
        if fmha_out_prefill is not None:
            with mark("merge"):
                merge_prefill_decode_output(fmha_out_prefill, fmha_out_decode, st.decode_token_mask)
            return fmha_out_prefill
        t, _, h, d = fmha_out_decode.shape
        return fmha_out_decode.reshape([t, h, d])
    return fmha_out_prefill


# ---- timing, capture, memory, profiler -----------------------------------------------------


class PaddleEventClock(Clock):
    """paddle.device.Event pairs, made before the chunk, recorded on `stream` (None: the current
    stream; a graph case's capture stream, where its replays run)."""

    name = "cuda_event"

    def __init__(self, stream=None) -> None:
        self._stream = stream

    def spans(self, n: int) -> list:
        return [(paddle.device.Event(enable_timing=True), paddle.device.Event(enable_timing=True)) for _ in range(n)]

    def start(self, span) -> None:
        span[0].record(self._stream)

    def stop(self, span) -> None:
        span[1].record(self._stream)

    def elapsed_ms(self, span) -> float:
        span[1].synchronize()
        return float(span[0].elapsed_time(span[1]))

    def between_ms(self, first, last) -> float:
        """The chunk's device time from the same events: `paddle.device.Event.elapsed_time(end)` is
        cudaEventElapsedTime between two events of one device (Paddle 3.x `paddle/device/__init__.py`;
        annotated int there, a float in milliseconds from the CUDA event; written from Paddle's docs
        and source, never ran on a GPU here)."""
        last[1].synchronize()
        return float(first[0].elapsed_time(last[1]))


class PaddleMemory(MemoryProbe):
    def allocated(self) -> int:
        return int(paddle.device.cuda.memory_allocated())

    def reset_peak(self) -> None:
        paddle.device.cuda.reset_max_memory_allocated()

    def peak(self) -> int:
        return int(paddle.device.cuda.max_memory_allocated())


class PaddleBackend(Backend):
    name = "paddle"

    def __init__(self, device: str | None = None) -> None:
        self.gpu = self._gpu_usable() if device in (None, "gpu") else False
        if device == "gpu" and not self.gpu:
            raise Unsupported("backend paddle: device 'gpu' asked for, but " + self._gpu_reason())
        paddle.set_device("gpu:0" if self.gpu else "cpu")
        self.place = paddle.CUDAPlace(0) if self.gpu else paddle.CPUPlace()
        self._flush_buf = None
        self._graph_stream = None  # the capture stream of the current graph case: its replays run there
        self._attention = None  # reference ops; FlashMLA after use_kernel("flashmla")

    @staticmethod
    def _gpu_usable() -> bool:
        return bool(paddle.is_compiled_with_cuda()) and paddle.device.cuda.device_count() > 0

    @staticmethod
    def _gpu_reason() -> str:
        if not paddle.is_compiled_with_cuda():
            return f"this Paddle ({paddle.__version__}) is a CPU build"
        return "no CUDA device is visible"

    # availability -------------------------------------------------------------------------
    def availability(self) -> Availability:
        from dsabench.bench.backends.base import Marker  # noqa: PLC0415

        gpu = self.gpu
        nvtx_ok = Marker(None, True)._nvtx is not None
        return Availability(
            backend=self.name,
            framework_version=paddle.__version__,
            device=Capability(True, "gpu:0" if gpu else "cpu"),
            graph=Capability(gpu, "" if gpu else f"CUDA Graph needs a CUDA device; {self._gpu_reason()}"),
            profiler_targets=("CPU", "GPU") if gpu else ("CPU",),
            nvtx=Capability(nvtx_ok, "" if nvtx_ok else "the 'nvtx' package is not installed (pip install nvtx)"),
            details={"cuda": paddle.version.cuda() if gpu else None},
        )

    def device_identity(self) -> dict:
        if not self.gpu:
            return {"name": platform.processor() or platform.machine(), "index": None, "uuid": None, "kind": "cpu"}
        props = paddle.device.cuda.get_device_properties(0)
        index, uuid = visible_device(os.environ.get("CUDA_VISIBLE_DEVICES"), 0)
        return {
            "name": props.name,
            "index": index,
            "uuid": uuid or getattr(props, "uuid", None),
            "kind": "gpu",
        }

    # inputs -------------------------------------------------------------------------------
    def prepare(self, case: Case, host: HostInputs) -> PaddleState:
        """Inputs on the device; the cache is seeded garbage with NaN/inf stripes (inputs.py), filled
        in 64 MiB chunks, then the context records."""
        self._graph_stream = None
        place = self.place
        dims = DEFAULT_DIMS
        paddle.seed(case.seed)
        shape = [case.num_blocks, case.cache_heads, case.block_size, dims.record_bytes]
        cache = paddle.empty(shape, dtype=paddle.uint8)
        rows_per_block = case.cache_heads * case.block_size
        chunk = max(1, (64 << 20) // (rows_per_block * dims.record_bytes))
        for start in range(0, case.num_blocks, chunk):  # garbage, as a serving cache holds (inputs.py)
            end = min(case.num_blocks, start + chunk)
            part = paddle.randint(0, 256, [end - start] + shape[1:], dtype="int32").cast(paddle.uint8)
            words = part.view([-1, dims.record_bytes]).view(paddle.int32)
            for rows, cols, word in garbage_stripes(start * rows_per_block):
                words[rows, cols] = paddle.full([], word, paddle.int32)  # a Python int would pass through float
            cache[start:end] = part
        if len(host.context_slots):
            paddle.scatter_(
                cache.view([-1, dims.record_bytes]).view(paddle.int32),
                _tensor(host.context_rows, place),
                _tensor(host.context_records, place).view(paddle.int32),
                overwrite=True,
            )
        inputs = {field: _tensor(getattr(host, name), place) for field, name in DEVICE_INPUTS}
        st = PaddleState(case=case, latent_cache=cache, softmax_scale=host.softmax_scale, inputs_bytes=0, **inputs)
        st.inputs_bytes = sum(int(np.prod(t.shape)) * t.element_size() for t in (*inputs.values(), cache))
        self.synchronize()
        return st

    def use_kernel(self, kernel: str) -> None:
        """FlashMLA through paddle.enable_compat (never ran here: no GPU build of FlashMLA)."""
        from dsabench.bench.kernels.attention import attention_for  # noqa: PLC0415

        self._attention = None if kernel == "reference" else attention_for(kernel, "paddle", None)
        self.kernel = kernel

    def forward(self, state: PaddleState, variant: Variant, mark: Marker = NULL_MARKER):
        return forward_mixed(state, variant, mark, self._attention)

    def layout_copy_bytes(self, state: PaddleState, variant: Variant) -> int:
        kv = decode_layout(state.latent_cache, variant)
        return 0 if kv.data_ptr() == state.latent_cache.data_ptr() else int(np.prod(kv.shape)) * kv.element_size()

    def output_bytes(self, out) -> bytes:
        return out.contiguous().view(paddle.uint8).numpy().tobytes()

    def all_finite(self, out) -> bool:
        return bool(paddle.isfinite(out).all())

    def output_numpy(self, out) -> np.ndarray:
        return out.cast(paddle.float32).numpy()

    def cache_numpy(self, state: PaddleState) -> np.ndarray:
        return state.latent_cache.numpy()

    # device -------------------------------------------------------------------------------
    def synchronize(self) -> None:
        if self.gpu:
            paddle.device.synchronize()

    def unhealthy(self) -> str:
        """As torch's probe, through Paddle: a synchronize and an exact reduction on the device
        (written from Paddle 3.x's API; never ran on a GPU here)."""
        if not self.gpu:
            return ""
        try:
            paddle.device.synchronize()
            total = int(paddle.arange(PROBE_N, dtype="int64").sum().item())
            paddle.device.synchronize()
        except Exception as exc:  # noqa: BLE001 - any error is the answer
            return f"{type(exc).__name__}: {exc}"[:500]
        return probe_answer(total)

    def clock(self) -> Clock:
        return PaddleEventClock(self._graph_stream) if self.gpu else HostClock(self.synchronize)

    def capture(self, fn: Callable[[], Any]) -> tuple[Callable[[], None], Any]:
        """Capture one call of `fn` on a side stream after a warm-up there; (replay, static output).

        Paddle's CUDAGraph replays on the stream it was captured on (cudaGraphLaunch on the
        captured stream_), where torch's replays on the current stream. So that both time the same
        thing, the replay is the bare `graph.replay` (no cross-stream waits in a timed loop) and
        this case's clock records its events on the capture stream. The streams are ordered once,
        here, by a device synchronize; the timing protocol synchronizes the device before its
        timed loop and after every cold-mode flush, so work on the current stream never overlaps
        a timed replay.
        """
        if not self.gpu:
            raise Unsupported(f"CUDA Graph capture needs a CUDA device; {self._gpu_reason()}")
        from paddle.device.cuda.graphs import CUDAGraph  # noqa: PLC0415

        graph = CUDAGraph(place=self.place, mode="thread_local")
        stream = paddle.device.Stream()
        try:
            stream.wait_stream(paddle.device.current_stream())
            with paddle.device.stream_guard(stream):
                for _ in range(3):
                    fn()
                stream.synchronize()
                graph.capture_begin()
                try:
                    static_out = fn()
                except Exception:
                    try:
                        graph.capture_end()
                    except Exception:  # noqa: BLE001 - the capture's own error is the one to report
                        pass
                    raise
                graph.capture_end()
            paddle.device.synchronize()
        except Exception as exc:  # the framework's own error text is the record's message
            raise CaptureFailed(f"{type(exc).__name__}: {exc}") from exc
        self._graph_stream = stream
        return graph.replay, static_out

    def flush_l2(self) -> None:
        if not self.gpu:
            return
        if self._flush_buf is None:
            self._flush_buf = paddle.empty([L2_FLUSH_BYTES // 4], dtype=paddle.int32)
        self._flush_buf.fill_(1)

    def memory(self) -> MemoryProbe | None:
        return PaddleMemory() if self.gpu else None

    def record_trace(self, step: Callable[[], None], iters: int, path: Path) -> Path:
        from dsabench.bench.backends.paddle_profile import record_trace  # noqa: PLC0415

        return record_trace(step, iters, path, gpu=self.gpu)

    def marker(self, use_nvtx: bool) -> Marker:
        """NVTX (if asked) and Paddle profiler ranges: for the profiled pass, never a timed one."""
        return Marker(paddle.profiler.RecordEvent, use_nvtx)

    def is_out_of_memory(self, exc: BaseException) -> bool:
        text = f"{type(exc).__name__} {exc}"
        return isinstance(exc, MemoryError) or "ResourceExhausted" in text or "Out of memory" in text
