"""The device's own ceilings, measured once per run: a device-to-device copy and a bf16 matmul.

Each phase's time is put against what this device reached in the same run, not against a
datasheet: clocks, power limits and the part's bin differ between cards. Copy: GB/s counting
bytes read plus bytes written (one read and one write per byte copied). Matmul: a square bf16
product of random values (never zeros, which run faster), TFLOP/s = 2 n^3 / time. Medians of
timed repetitions between device events, after a warm-up. GPU only; a CPU run records none.
"""

from __future__ import annotations

import statistics

COPY_BYTES = 1 << 31  # 2 GiB: far above any L2, so the copy streams through device memory
MATMUL_N = 8192
REPEATS = 20


def _median_ms(run, start_event, stop_event, sync, repeats: int) -> float:
    for _ in range(3):
        run()
    sync()
    times = []
    for _ in range(repeats):
        s, e = start_event(), stop_event()
        s.record()
        run()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    return statistics.median(times)


def torch_ceilings() -> dict:
    import torch  # noqa: PLC0415

    dev = torch.device("cuda")
    src = torch.randint(0, 255, (COPY_BYTES,), dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    ev = lambda: torch.cuda.Event(enable_timing=True)  # noqa: E731
    copy_ms = _median_ms(lambda: dst.copy_(src), ev, ev, torch.cuda.synchronize, REPEATS)
    del src, dst
    a = torch.randn(MATMUL_N, MATMUL_N, device=dev, dtype=torch.bfloat16)
    b = torch.randn(MATMUL_N, MATMUL_N, device=dev, dtype=torch.bfloat16)
    mm_ms = _median_ms(lambda: torch.matmul(a, b), ev, ev, torch.cuda.synchronize, REPEATS)
    del a, b
    torch.cuda.empty_cache()
    return _figures(copy_ms, mm_ms, "torch")


def paddle_ceilings() -> dict:
    """The same with Paddle's device events (written from Paddle 3.x's API; never ran on a GPU here)."""
    import paddle  # noqa: PLC0415

    src = paddle.randint(0, 255, [COPY_BYTES], dtype="int32").astype("uint8")
    dst = paddle.empty_like(src)
    ev = lambda: paddle.device.Event(enable_timing=True)  # noqa: E731
    copy_ms = _median_ms(lambda: paddle.assign(src, output=dst), ev, ev, paddle.device.synchronize, REPEATS)
    del src, dst
    a = paddle.randn([MATMUL_N, MATMUL_N]).astype("bfloat16")
    b = paddle.randn([MATMUL_N, MATMUL_N]).astype("bfloat16")
    mm_ms = _median_ms(lambda: paddle.matmul(a, b), ev, ev, paddle.device.synchronize, REPEATS)
    return _figures(copy_ms, mm_ms, "paddle")


def measure_ceilings(backend: str) -> dict:
    """The ceilings through `backend`'s framework; {"error": why} when they could not be measured
    (the run goes on: its roofline table then says there are no ceilings)."""
    try:
        return torch_ceilings() if backend == "torch" else paddle_ceilings()
    except Exception as exc:  # noqa: BLE001 - out of memory on a small card, a missing API
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def _figures(copy_ms: float, mm_ms: float, via: str) -> dict:
    return {
        "copy_gbs": 2 * COPY_BYTES / (copy_ms * 1e-3) / 1e9,
        "copy_ms": copy_ms,
        "copy_bytes": COPY_BYTES,
        "matmul_tflops": 2 * MATMUL_N**3 / (mm_ms * 1e-3) / 1e12,
        "matmul_ms": mm_ms,
        "matmul_n": MATMUL_N,
        "via": via,
    }
