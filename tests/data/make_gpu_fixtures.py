"""Write the two GPU fixture traces (Paddle and torch) of one small, known scenario.

Neither profiler can record a GPU trace on a CPU-only machine, so these files are built here, field
for field in the layout each profiler's chrome exporter writes (see README.md for the sources).
Run from anywhere: `python3 tests/data/make_gpu_fixtures.py`; it rewrites both .json.gz files.

Scenario, 2 iterations on host thread 4242 (pid 4242), device 0, stream 7; times in us from the
start of each iteration (iteration i starts at 100 + 1000 * i):
  dsabench.iter [5, 405]
    scale       [10, 60]   cudaMemcpy (blocking) [20, 50]      -> Memcpy HtoD 4 B       [30, 31.5]
    write_cache [70, 120]  cudaMemsetAsync [80, 85]            -> Memset 1024 B         [90, 92]
    layout      [130, 220] cudaLaunchKernel [140, 146]         -> strided copy kernel   [150, 190]
                           cudaMemcpyAsync [160, 166]          -> Memcpy DtoD 65536 B   [195, 225]
    decode      [230, 330] cudaLaunchKernel [240, 246]         -> gemm kernel [250, +100 or +120]
                           cudaLaunchKernel [260, 266]         -> softmax kernel        [380, 430]
    merge       [340, 395] cudaStreamSynchronize [350, 390]
Outside the iterations: a warm-up cudaLaunchKernel [1, 3] -> kernel [3.5, 4.5] before iteration 0,
and the cudaDeviceSynchronize that record_trace issues before stopping, at 2010.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
PID, TID, DEV, STREAM = 4242, 4242, 0, 7
PHASES = [("scale", 10, 60), ("write_cache", 70, 120), ("layout", 130, 220), ("decode", 230, 330),
          ("merge", 340, 395)]
COPY_KERNEL = {"paddle": "void phi::StridedCopyCaseZeroFunc<phi::dtype::bfloat16, 4>(...)",
               "torch": "void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<"
                        "at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::...>(int, ...)"}
GEMM_KERNEL = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas"
SOFTMAX_KERNEL = {"paddle": "void phi::VectorizedSoftmaxForward<phi::dtype::bfloat16, float, 4>(...)",
                  "torch": "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, c10::BFloat16, float, c10::BFloat16, at::native::(anonymous namespace)::SoftMaxForwardEpilogue>(c10::BFloat16*, c10::BFloat16 const*, int)"}
# CUPTI runtime callback ids (cupti_runtime_cbid.h), which kineto writes as args.cbid.
CBID = {"cudaMemcpy": 31, "cudaMemcpyAsync": 41, "cudaMemsetAsync": 51, "cudaStreamSynchronize": 131,
        "cudaDeviceSynchronize": 165, "cudaLaunchKernel": 211}
# Paddle names runtime calls by CUPTI's callback name, version suffix included (cupti_data_process.cc).
PADDLE_API = {"cudaMemcpy": "cudaMemcpy_v3020", "cudaMemcpyAsync": "cudaMemcpyAsync_v3020",
              "cudaMemsetAsync": "cudaMemsetAsync_v3020", "cudaStreamSynchronize": "cudaStreamSynchronize_v3020",
              "cudaDeviceSynchronize": "cudaDeviceSynchronize_v3020", "cudaLaunchKernel": "cudaLaunchKernel_v7000"}


def scenario(flavor: str) -> list[dict]:
    """Host spans (range/op), runtime calls and their device work, times in us (absolute to the
    profiler start); each runtime call carries its correlation id and optional device event."""
    ev = []
    corr = iter(range(101, 1000))
    ev.append(_call("cudaLaunchKernel", 1, 3, next(corr), ("kernel", "warmup_kernel", 3.5, 4.5, None)))
    for i in range(2):
        o = 100 + 1000 * i
        ev.append({"type": "range", "name": "dsabench.iter", "start": o + 5, "end": o + 405})
        for name, s, e in PHASES:
            ev.append({"type": "range", "name": name, "start": o + s, "end": o + e})
        gemm = 100 if i == 0 else 120
        op = _ops(flavor)
        ev += [
            {"type": "op", "name": op["scale"], "start": o + 12, "end": o + 58},
            _call("cudaMemcpy", o + 20, o + 50, next(corr), ("memcpy", "HtoD", o + 30, o + 31.5, 4)),
            {"type": "op", "name": op["write_cache"], "start": o + 72, "end": o + 118},
            _call("cudaMemsetAsync", o + 80, o + 85, next(corr), ("memset", "", o + 90, o + 92, 1024)),
            {"type": "op", "name": op["layout"], "start": o + 132, "end": o + 218},
            _call("cudaLaunchKernel", o + 140, o + 146, next(corr), ("kernel", COPY_KERNEL[flavor], o + 150, o + 190, None)),
            _call("cudaMemcpyAsync", o + 160, o + 166, next(corr), ("memcpy", "DtoD", o + 195, o + 225, 65536)),
            {"type": "op", "name": op["decode"], "start": o + 232, "end": o + 328},
            _call("cudaLaunchKernel", o + 240, o + 246, next(corr), ("kernel", GEMM_KERNEL, o + 250, o + 250 + gemm, None)),
            _call("cudaLaunchKernel", o + 260, o + 266, next(corr), ("kernel", SOFTMAX_KERNEL[flavor], o + 380, o + 430, None)),
            {"type": "op", "name": op["merge"], "start": o + 342, "end": o + 393},
            _call("cudaStreamSynchronize", o + 350, o + 390, next(corr), None),
        ]
    ev.append(_call("cudaDeviceSynchronize", 2010, 2020, 900, None))
    return ev


def _ops(flavor: str) -> dict:
    if flavor == "paddle":
        return {"scale": "full dygraph", "write_cache": "fill_ dygraph", "layout": "contiguous dygraph",
                "decode": "matmul dygraph", "merge": "numpy dygraph"}
    return {"scale": "aten::copy_", "write_cache": "aten::zero_", "layout": "aten::contiguous",
            "decode": "aten::mm", "merge": "aten::item"}


def _call(api, start, end, corr, device) -> dict:
    return {"type": "runtime", "name": api, "start": start, "end": end, "corr": corr, "device": device}


# Paddle: paddle/fluid/platform/profiler/chrometracing_logger.cc -------------------------------

T0_NS = 1795593287443543168  # an absolute host time, as Paddle's ts are (whole us since epoch-ish)


def _ns(us: float) -> int:
    return T0_NS + round(us * 1000)


def _disp(dur_ns: int) -> str:
    ms = dur_ns / 1e6
    return f"{ms:.3f} ms" if ms > 1.0 else f"{ms * 1000:.3f} us"


def _ptimes(s_ns: int, e_ns: int, t0_ns: int) -> tuple:
    return (s_ns // 1000, (e_ns - s_ns) / 1000, (s_ns - t0_ns) / 1000, (e_ns - t0_ns) / 1000)


def _paddle_host(name, cat, s_ns, e_ns, t0, python: bool) -> str:
    ts, dur, rs, re_ = _ptimes(s_ns, e_ns, t0)
    extra = "" if cat != "Operator" else ',\n      "input_shapes": {},\n      "input_dtypes": {},\n      "callstack": ""'
    return f'''
  {{
    "name": "{name}[{_disp(e_ns - s_ns)}]", "pid": {PID}, "tid": "{TID}({'Python' if python else 'C++'})",
    "ts": {ts}, "dur": {dur:.3f},
    "ph": "X", "cat": "{cat}",
    "cname": "thread_state_runnable",
    "args": {{
      "start_time": "{rs:.3f} us",
      "end_time": "{re_:.3f} us"{extra}
    }}
  }},
  '''


def _paddle_runtime(name, corr, s_ns, e_ns, t0) -> str:
    ts, dur, rs, re_ = _ptimes(s_ns, e_ns, t0)
    return f'''
  {{
    "name": "{name}[{_disp(e_ns - s_ns)}]", "pid": {PID}, "tid": "{TID}(C++)",
    "ts": {ts}, "dur": {dur:.3f},
    "ph": "X", "cat": "CudaRuntime",
    "cname": "thread_state_running",
    "args": {{
      "correlation id": {corr},
      "start_time": "{rs:.3f} us",
      "end_time": "{re_:.3f} us"
    }}
  }},
  
  {{
    "name": "launch", "id": {corr}, "pid": {PID}, "tid": "{TID}(C++)",
    "ts": {(s_ns + e_ns) // 2 // 1000},
    "ph": "s", "cat": "async"
  }},
  '''


def _paddle_device(kind, name, corr, s_ns, e_ns, nbytes, t0) -> str:
    ts, dur, rs, re_ = _ptimes(s_ns, e_ns, t0)
    cat = {"kernel": "Kernel", "memcpy": "Memcpy", "memset": "Memset"}[kind]
    if kind == "kernel":
        args = (f'"device": {DEV}, "context": 1,\n      "stream": {STREAM}, "correlation id": {corr},\n'
                '      "registers per thread": 128,\n      "shared memory": 49152,\n'
                '      "blocks per SM": 1.000000,\n      "warps per SM": 4.000000,\n'
                '      "grid": [132, 1, 1],\n      "block": [128, 1, 1],\n'
                '      "theoretical achieved occupancy %": 6.250')
    elif kind == "memcpy":
        bw = nbytes / (e_ns - s_ns)
        args = f'"stream": {STREAM}, "correlation id": {corr},\n      "bytes": {nbytes}, "memory bandwidth (GB/s)": {bw:.3f}'
    else:
        args = (f'"device": {DEV}, "context": 1,\n      "stream": {STREAM}, "correlation id": {corr},\n'
                f'      "bytes": {nbytes}, "value": 0')
    return f'''
  {{
    "name": "{name}[{_disp(e_ns - s_ns)}]", "pid": {DEV}, "tid": {STREAM},
    "ts": {ts}, "dur": {dur:.3f},
    "ph": "X", "cat": "{cat}",
    "cname": "cq_build_failed",
    "args": {{
      "start_time": "{rs:.3f} us",
      "end_time": "{re_:.3f} us",
      {args}
    }}
  }},
  
  {{
    "name": "launch", "id": {corr}, "pid": {DEV}, "tid": {STREAM},
    "ts": {(s_ns + e_ns) // 2 // 1000},
    "ph": "f", "cat": "async", "bp": "e"
  }},
  '''


def paddle_trace() -> str:
    ev = scenario("paddle")
    step_s, step_e = _ns(0.0), _ns(2030.0)  # ProfileStep#0 spans the whole pass
    t0 = step_s  # start_time_: the earliest first host node of any thread
    out = ['''
  {
    "displayTimeUnit": "ms",
    "schemaVersion": "1.0.2",
    "span_index": "0",
  
    "deviceProperties": [
  
    {
       "id": 0, "name": "NVIDIA H100 80GB HBM3", "totalGlobalMem": 85029158912,
      "computeMajor": 9, "computeMinor": 0,
      "maxThreadsPerBlock": 1024, "maxThreadsPerMultiprocessor": 2048,
      "regsPerBlock": 65536, "regsPerMultiprocessor": 65536, "warpSize": 32,
      "sharedMemPerBlock": 49152, "sharedMemPerMultiprocessor": 233472,
      "smCount": 132, "sharedMemPerBlockOptin": 232448
    }],
  
    "traceEvents": [
  ''']
    out.append(_paddle_host("ProfileStep#0", "ProfileStep", step_s, step_e, t0, True))
    for e in ev:
        s, f = _ns(e["start"]), _ns(e["end"])
        if e["type"] == "range":
            out.append(_paddle_host(e["name"], "PythonUserDefined", s, f, t0, True))
        elif e["type"] == "op":
            out.append(_paddle_host(e["name"], "Operator", s, f, t0, False))
        else:
            out.append(_paddle_runtime(PADDLE_API[e["name"]], e["corr"], s, f, t0))
            if e["device"]:
                kind, what, ds, de, nbytes = e["device"]
                name = {"memcpy": f"MEMCPY_{what}", "memset": "MEMSET"}.get(kind, what)
                out.append(_paddle_device(kind, name, e["corr"], _ns(ds), _ns(de), nbytes, t0))
    out.append(f'''
  {{
    "name": "process_name", "pid": {PID}, "tid": "{TID}(Python)",
    "ph": "M",
    "args": {{
      "name": "Process {PID} (CPU)"
    }}
  }},
  {{
    "name": "thread_name", "pid": {PID}, "tid": "{TID}(Python)",
    "ph": "M",
    "args": {{
      "name": "thread {TID}:MainThread(Python)"
    }}
  }},
  {{
    "name": "thread_name", "pid": {PID}, "tid": "{TID}(C++)",
    "ph": "M",
    "args": {{
      "name": "thread {TID}:MainThread(C++)"
    }}
  }},
  
  {{
    "name": "process_name", "pid": {DEV}, "tid": {STREAM},
    "ph": "M",
    "args": {{
      "name": "Device {DEV} (GPU)"
    }}
  }},
   {{
    "name": "thread_name", "pid": {DEV}, "tid": {STREAM},
    "ph": "M",
    "args": {{
      "name": "stream {STREAM}"
    }}
  }},
  
  {{}}
  ],
  
  "ExtraInfo": {{
     "{TID}": "MainThread"
   
  }}
  }}
  ''')
    return "".join(out)


# torch: pytorch/kineto libkineto/src/output_json.cpp + CuptiActivity.h ------------------------

BASE_US = 4736277184000.0  # kineto ts: us since ChromeTraceBaseTime, three decimals
_ext = iter(range(1, 10_000))


def _ts(us: float) -> str:
    ns = round((BASE_US + us) * 1000)
    return f"{ns // 1000}.{ns % 1000:03d}"


def _dur(us: float) -> str:
    ns = round(us * 1000)
    return f"{ns // 1000}.{ns % 1000:03d}"


def _torch_x(cat, name, pid, tid, s, e, args: str) -> str:
    render = f',\n    "args": {{\n      {args}\n    }}' if args else ""
    return f'''
  {{
    "ph": "X", "cat": "{cat}", "name": "{name}", "pid": {pid}, "tid": {tid},
    "ts": {_ts(s)}, "dur": {_dur(e - s)}{render}
  }},'''


def _torch_flow(ph, corr, pid, tid, t) -> str:
    bp = ', "bp": "e"' if ph == "f" else ""
    return f'''
  {{
    "ph": "{ph}", "id": {corr}, "pid": {pid}, "tid": {tid}, "ts": {_ts(t)},
    "cat": "ac2g", "name": "ac2g"{bp}
  }},'''


def _torch_device(kind, what, corr, ext, s, e, nbytes) -> str:
    ext_arg = f'"External id": {ext},\n      ' if ext else ""
    if kind == "kernel":
        args = (f'{ext_arg}"queued": 0, "device": {DEV}, "context": 1,\n'
                f'      "stream": {STREAM}, "correlation": {corr},\n      "registers per thread": 128,\n'
                '      "shared memory": 49152,\n      "blocks per SM": 1,\n      "warps per SM": 4,\n'
                '      "grid": [132, 1, 1],\n      "block": [128, 1, 1],\n      "est. achieved occupancy %": 6')
        return _torch_x("kernel", what, DEV, STREAM, s, e, args)
    bw = nbytes / ((e - s) * 1000)
    args = (f'{ext_arg}"device": {DEV}, "context": 1,\n'
            f'      "stream": {STREAM}, "correlation": {corr},\n'
            f'      "bytes": {nbytes}, "memory bandwidth (GB/s)": {bw}')
    if kind == "memcpy":
        src, dst = {"HtoD": ("Pageable", "Device"), "DtoD": ("Device", "Device")}[what]
        return _torch_x("gpu_memcpy", f"Memcpy {what} ({src} -> {dst})", DEV, STREAM, s, e, args)
    return _torch_x("gpu_memset", "Memset (Device)", DEV, STREAM, s, e, args)


def torch_trace() -> str:
    ev = scenario("torch")
    out = ['''{
  "schemaVersion": 1,
  "deviceProperties": [
    {
      "id": 0, "name": "NVIDIA H100 80GB HBM3", "totalGlobalMem": 85029158912,
      "computeMajor": 9, "computeMinor": 0,
      "maxThreadsPerBlock": 1024, "maxThreadsPerMultiprocessor": 2048,
      "regsPerBlock": 65536, "warpSize": 32,
      "sharedMemPerBlock": 49152, "numSms": 132,
      "regsPerMultiprocessor": 65536, "sharedMemPerBlockOptin": 232448
    }
  ],
  "cupti_version": 26,
  "cuda_runtime_version": 12080,
  "cuda_driver_version": 12080,
  "trace_id": "2C3D1A7F5B8E4C1D9E0F1A2B3C4D5E6F",
  "displayTimeUnit": "ms",
  "baseTimeNanoseconds": 1790857026000000000,
  "traceEvents": [''']
    op_ext = 0
    for e in ev:
        if e["type"] in ("range", "op"):
            op_ext = next(_ext)
            cat = "user_annotation" if e["type"] == "range" else "cpu_op"
            args = f'"External id": {op_ext}, "Record function id": 0, "Ev Idx": {op_ext - 1}'
            out.append(_torch_x(cat, e["name"], PID, TID, e["start"], e["end"], args))
            if e["type"] == "range" and e["name"] != "dsabench.iter":
                # record_function also shows on the stream it launched work to (gpu_user_annotation)
                out.append(_torch_x("gpu_user_annotation", e["name"], DEV, STREAM, e["start"] + 20,
                                    e["end"] + 30, f'"External id": {op_ext}'))
            continue
        corr = e["corr"]
        # kineto writes "External id" only for calls made inside a profiled op (output_json.cpp)
        ext = f'"External id": {op_ext},\n      ' if op_ext else ""
        args = f'{ext}"cbid": {CBID[e["name"]]}, "correlation": {corr}'
        out.append(_torch_x("cuda_runtime", e["name"], PID, TID, e["start"], e["end"], args))
        if e["device"]:
            kind, what, ds, de, nbytes = e["device"]
            out.append(_torch_flow("s", corr, PID, TID, e["start"]))
            out.append(_torch_device(kind, what, corr, op_ext, ds, de, nbytes))
            out.append(_torch_flow("f", corr, DEV, STREAM, ds))
    out.append(f'''
  {{
    "ph": "M", "name": "process_name", "ts": {_ts(0)}, "pid": {PID}, "tid": 0,
    "args": {{
      "name": "python3"
    }}
  }},
  {{
    "ph": "M", "name": "process_name", "ts": {_ts(0)}, "pid": {DEV}, "tid": 0,
    "args": {{
      "name": "GPU {DEV}"
    }}
  }},
  {{
    "ph": "M", "name": "thread_name", "ts": {_ts(0)}, "pid": {DEV}, "tid": {STREAM},
    "args": {{
      "name": "stream {STREAM}"
    }}
  }},
  {{
    "ph": "X", "cat": "Trace", "name": "PyTorch Profiler (0)", "pid": "Spans", "tid": "PyTorch Profiler",
    "ts": {_ts(0)}, "dur": {_dur(2030)},
    "args": {{
      "Op count": 0
    }}
  }},
  {{
    "ph": "i", "s": "g", "name": "Iteration Start: PyTorch Profiler", "pid": "Traces", "tid": "Trace PyTorch Profiler",
    "ts": {_ts(0)}
  }},
  {{
    "ph": "i", "s": "g", "name": "Record Window End", "pid": "", "tid": "",
    "ts": {_ts(2040)}
  }}
  ],"traceName": "gpu.pt.trace.json" }}''')
    return "".join(out)


def _write(name: str, text: str) -> None:
    json.loads(text)  # both exporters write valid JSON; so must we
    with gzip.GzipFile(HERE / name, "wb", mtime=0) as f:  # mtime=0: byte-identical reruns
        f.write(text.encode())


if __name__ == "__main__":
    _write("paddle_gpu.paddle_trace.json.gz", paddle_trace())
    _write("torch_gpu.pt.trace.json.gz", torch_trace())
