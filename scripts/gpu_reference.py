#!/usr/bin/env python3
"""Cross-check the suite's GPU timing of one CUDA-graph case against independent timers.

    python3 scripts/gpu_reference.py --out DIR [--case-filter REGEX] [--repeats 5]

On one GPU with the torch backend, for ONE patched graph case of a preset (default `pr`, first
case whose id matches --case-filter):

1. builds its inputs once (`make_host_inputs`, `TorchBackend().prepare`) and captures the patched
   forward as a CUDA graph (`backend.capture`);
2. times the replay with the suite's own protocol (`measure.measure(..., GPU_PROTOCOL)`) --repeats
   times, each a fresh call of measure on the same graph: each repeat's median, and the spread
   max/min - 1 of those medians (target <= 1%);
3. times the EAGER patched forward with `triton.testing.do_bench_cudagraph(fn, rep, return_mode=
   "median")`, which captures its own graph of n_repeat = rep / estimate calls of fn, replays it
   10 times and takes time / n_repeat of each replay (back to back, no L2 flush: hot, per call);
   relative difference of its median to the suite's (target <= 3%). Extra: `triton.testing.do_bench`
   (eager, events around each call, L2 cleared before each call: cold, per call) against the
   suite's eager protocol, hot and cold;
4. times the same graph replay with cuda-bench (nvbench's Python API): a registered benchmark
   whose launcher replays the graph on nvbench's stream; nvbench's "cold" measurement flushes L2
   and times one replay per sample (reported as its median and mean), its "batch" (hot)
   measurement times batches of back-to-back replays between two events and reports the mean
   per replay, which is what the suite's hot protocol measures;
5. writes DIR/reference.json with every number and prints a short table last.

The number crunching (spread, relative difference, nvbench JSON parsing, the table) is in pure
functions that import nothing beyond the standard library, so tests run them on a CPU machine;
torch, triton and cuda.bench are imported inside main only.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import math
import platform
import re
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_PRESET = "pr"
DEFAULT_CASE_REGEX = r"decode\.b64\..*n65536.*scalar-view\.graph"
DEFAULT_REPEATS = 5

SPREAD_TARGET = 0.01  # suite: max/min - 1 of the repeat medians
TRITON_TARGET = 0.03  # |do_bench_cudagraph median / suite median - 1|
NVBENCH_TARGET = 0.03  # same bound, applied by this script to nvbench's hot (batch) mean

# Time caps (the whole GPU run stays well under ~3 minutes; the suite's own protocol caps each
# measure at GPU_PROTOCOL.max_time_s).
DEFAULT_TRITON_REP_MS = 100
DEFAULT_TRITON_WARMUP_MS = 25
DEFAULT_NVBENCH_TIMEOUT_S = 10.0
DEFAULT_NVBENCH_MAX_NOISE_PCT = 0.5
DEFAULT_NVBENCH_MIN_SAMPLES = 10
DEFAULT_NVBENCH_BATCH_TARGET_S = 0.5

NVBENCH_BENCHMARK_NAME = "dsabench_graph_replay"

# nvbench summary tags (nvbench/detail/measure_cold.cu, measure_hot.cu at tag python-0.3.0).
# Durations are stored in seconds, percentages as ratios (1.0 = 100%).
NVBENCH_TAGS: dict[str, dict[str, str]] = {
    "cold": {
        "samples": "nv/cold/sample_size",
        "walltime_s": "nv/cold/walltime",
        "gpu_mean_ms": "nv/cold/time/gpu/mean",
        "gpu_median_ms": "nv/cold/time/gpu/median",
        "gpu_min_ms": "nv/cold/time/gpu/min",
        "gpu_max_ms": "nv/cold/time/gpu/max",
        "gpu_q1_ms": "nv/cold/time/gpu/q1",
        "gpu_q3_ms": "nv/cold/time/gpu/q3",
        "gpu_noise_rel": "nv/cold/time/gpu/stdev/relative",
        "cpu_mean_ms": "nv/cold/time/cpu/mean",
        "cpu_median_ms": "nv/cold/time/cpu/median",
        "sm_clock_hz": "nv/cold/sm_clock_rate/mean",
    },
    "batch": {
        "samples": "nv/batch/sample_size",
        "walltime_s": "nv/batch/walltime",
        "gpu_mean_ms": "nv/batch/time/gpu/mean",
    },
}

NVBENCH_COUNTING = {
    "cold": "one graph replay per sample between CUDA events on nvbench's stream, L2 flushed "
            "(cudaMemsetAsync of an L2-sized buffer) and stream synchronized before each sample, "
            "launch queued behind nvbench's blocking kernel; median and mean over the samples",
    "batch": "batches of back-to-back graph replays between two CUDA events, no L2 flush, first "
             "two launches queued behind the blocking kernel; total GPU time / total replays "
             "(a mean per replay): the hot measurement",
}

TRITON_COUNTING = {
    "do_bench_cudagraph": "captures n_repeat = max(1, int(rep / estimate_ms)) calls of the eager fn "
                          "in ONE CUDA graph (on a side stream), replays it 10 times between CUDA "
                          "events, each sample = replay time / n_repeat; no L2 flush (hot, per call); "
                          "return_mode='median' is the median of the 10 samples",
    "do_bench": "eager fn, CUDA events around each single call, L2 cleared (256 MB buffer zeroed) "
                "before each call (cold, per call); warmup/rep in ms; return_mode='median'",
}

SUITE_COUNTING = (
    "suite GPU_PROTOCOL (hot): K = ceil(1 ms / estimate) back-to-back steps between CUDA events per "
    "sample, sample / K per iteration, no L2 flush; stops when the 95% CI of the median is within 1%"
)


# --- Pure functions (no torch / triton / cuda.bench) -----------------------------------------


def spread(values: Sequence[float]) -> float:
    """max / min - 1 of positive values (0.0 for a single value)."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("spread: no values")
    if any(not math.isfinite(v) or v <= 0 for v in xs):
        raise ValueError(f"spread: expected finite positive values, got {xs}")
    return max(xs) / min(xs) - 1.0


def rel_diff(value: float, reference: float) -> float:
    """value / reference - 1 (signed: positive when `value` is slower)."""
    if not math.isfinite(reference) or reference <= 0:
        raise ValueError(f"rel_diff: reference {reference!r}; expected a finite positive time")
    return float(value) / float(reference) - 1.0


def within(x: float | None, target: float) -> bool | None:
    """|x| <= target, or None when x is missing."""
    if x is None or not math.isfinite(x):
        return None
    return abs(x) <= target


def median(values: Iterable[float]) -> float:
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("median: no values")
    return float(statistics.median(xs))


def pick_case(cases: Iterable[Any], pattern: str) -> Any:
    """First case whose id matches `pattern` (re.search); it must be a graph case.

    Cases are anything with `.id` and `.graph`; the variant check (patched) is the caller's.
    """
    rx = re.compile(pattern)
    cases = list(cases)
    matches = [c for c in cases if rx.search(c.id)]
    if not matches:
        sample = ", ".join(c.id for c in cases if getattr(c, "graph", False))[:600]
        raise LookupError(f"no case id matches {pattern!r}; graph cases are: {sample}")
    graph = [c for c in matches if getattr(c, "graph", False)]
    if not graph:
        raise LookupError(f"{len(matches)} case(s) match {pattern!r} but none is a graph case: "
                          f"{', '.join(c.id for c in matches[:5])}")
    return graph[0]


def nvbench_argv(json_path: str | Path, *, device: int = 0, timeout_s: float = DEFAULT_NVBENCH_TIMEOUT_S,
                 max_noise_pct: float = DEFAULT_NVBENCH_MAX_NOISE_PCT,
                 min_samples: int = DEFAULT_NVBENCH_MIN_SAMPLES,
                 batch_target_s: float = DEFAULT_NVBENCH_BATCH_TARGET_S) -> list[str]:
    """The argv for `cuda.bench.run_all_benchmarks` (nvbench's CLI, docs/cli_help.md).

    The first element is a program name (nvbench skips a first argument not starting with '-').
    Options given before any --benchmark apply to every benchmark. --max-noise is in percent.
    """
    return [
        "gpu_reference",
        "--json", str(json_path),
        "--devices", str(int(device)),
        "--timeout", repr(float(timeout_s)),
        "--min-samples", str(int(min_samples)),
        "--max-noise", repr(float(max_noise_pct)),
        "--batch-target-time", repr(float(batch_target_s)),
    ]


def _summary_value(summary: dict, field: str = "value") -> Any:
    """A summary's field as Python: nvbench writes int64 and float64 as strings."""
    for item in summary.get("data") or []:
        if item.get("name") != field:
            continue
        kind, raw = item.get("type"), item.get("value")
        if raw is None:
            return None
        if kind == "int64":
            return int(raw)
        if kind == "float64":
            return float(raw)  # accepts "inf" / "nan" (nvbench's noise sentinel is +inf)
        if kind == "string":
            return str(raw)
        raise ValueError(f"summary {summary.get('tag')!r} field {field!r}: unknown type {kind!r}")
    return None


def parse_nvbench_state(state: dict) -> dict:
    """One nvbench state -> {'name', 'device', 'is_skipped', 'skip_reason', 'summaries',
    'cold': {...}, 'batch': {...}} with times in milliseconds (None where nvbench gave none)."""
    summaries = {s["tag"]: s for s in state.get("summaries") or [] if "tag" in s}
    out: dict[str, Any] = {
        "name": state.get("name"),
        "device": state.get("device"),
        "is_skipped": bool(state.get("is_skipped", False)),
        "skip_reason": state.get("skip_reason"),
        "summaries": {tag: _summary_value(s) for tag, s in summaries.items()},
    }
    for measurement, fields in NVBENCH_TAGS.items():
        values: dict[str, Any] = {}
        for key, tag in fields.items():
            v = _summary_value(summaries[tag]) if tag in summaries else None
            if v is not None and key.endswith("_ms"):
                v = float(v) * 1e3
            values[key] = v
        out[measurement] = values if any(v is not None for v in values.values()) else None
    return out


def parse_nvbench_json(doc: dict | str | Path, benchmark: str | None = None) -> dict:
    """nvbench's --json output (file path or loaded dict) -> the states of one benchmark.

    Returns {'json_version', 'nvbench_version', 'devices': {id: name}, 'benchmark', 'states': [...]}
    with each state as `parse_nvbench_state` gives it. `benchmark` picks by name (default: the first).
    """
    if not isinstance(doc, dict):
        with open(doc, encoding="utf-8") as f:
            doc = json.load(f)
    benches = doc.get("benchmarks") or []
    if not benches:
        raise ValueError("nvbench JSON holds no benchmarks")
    if benchmark is None:
        bench = benches[0]
    else:
        found = [b for b in benches if b.get("name") == benchmark]
        if not found:
            raise ValueError(f"nvbench JSON has no benchmark {benchmark!r}; it has "
                             f"{[b.get('name') for b in benches]}")
        bench = found[0]
    meta = doc.get("meta") or {}
    version = meta.get("version") or {}
    return {
        "json_version": (version.get("json") or {}).get("string"),
        "nvbench_version": (version.get("nvbench") or {}).get("string"),
        "argv": meta.get("argv"),
        "devices": {d.get("id"): d.get("name") for d in doc.get("devices") or []},
        "benchmark": bench.get("name"),
        "states": [parse_nvbench_state(s) for s in bench.get("states") or []],
    }


def nvbench_reference(state: dict) -> tuple[str, float] | None:
    """The nvbench number to compare with the suite's hot median: the batch (hot) mean when
    nvbench ran it, else the cold median, else the cold mean. (measurement name, ms) or None."""
    if state.get("is_skipped"):
        return None
    batch, cold = state.get("batch") or {}, state.get("cold") or {}
    if batch.get("gpu_mean_ms") is not None:
        return "batch/gpu/mean (hot)", float(batch["gpu_mean_ms"])
    if cold.get("gpu_median_ms") is not None:
        return "cold/gpu/median (L2 flushed)", float(cold["gpu_median_ms"])
    if cold.get("gpu_mean_ms") is not None:
        return "cold/gpu/mean (L2 flushed)", float(cold["gpu_mean_ms"])
    return None


def _fmt_ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _fmt_pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x * 100:+.2f}%"


def _verdict(ok: bool | None) -> str:
    return {True: "ok", False: "MISS", None: "-"}[ok]


def summary_rows(report: dict) -> list[tuple[str, str, str, str, str]]:
    """(reference, what, ms, vs suite, check) rows from a report as main builds it."""
    rows: list[tuple[str, str, str, str, str]] = []
    suite = report.get("suite") or {}
    ref = suite.get("median_of_medians_ms")
    if ref is not None:
        sp = suite.get("spread")
        rows.append(("suite graph replay", f"hot, median of {len(suite.get('medians_ms') or [])} medians",
                     _fmt_ms(ref), "ref",
                     f"spread {sp * 100:.2f}% <= {SPREAD_TARGET:.0%}: {_verdict(within(sp, SPREAD_TARGET))}"))
    tri = report.get("triton") or {}
    cg = tri.get("do_bench_cudagraph") or {}
    if cg.get("median_ms") is not None:
        rows.append(("triton do_bench_cudagraph", "eager fn x n in 1 graph, hot",
                     _fmt_ms(cg["median_ms"]), _fmt_pct(cg.get("rel_diff")),
                     f"<= {TRITON_TARGET:.0%}: {_verdict(within(cg.get('rel_diff'), TRITON_TARGET))}"))
    elif cg.get("error"):
        rows.append(("triton do_bench_cudagraph", "error", "-", "-", cg["error"][:60]))
    nvb = report.get("nvbench") or {}
    if nvb.get("error") and not nvb.get("state"):
        rows.append(("cuda-bench (nvbench)", "error", "-", "-", str(nvb["error"])[:60]))
    st = nvb.get("state") or {}
    batch, cold = st.get("batch") or {}, st.get("cold") or {}
    if batch.get("gpu_mean_ms") is not None:
        rd = nvb.get("rel_diff_batch")
        rows.append(("nvbench batch", "graph replay, hot, mean", _fmt_ms(batch["gpu_mean_ms"]), _fmt_pct(rd),
                     f"<= {NVBENCH_TARGET:.0%}: {_verdict(within(rd, NVBENCH_TARGET))}"))
    if cold.get("gpu_median_ms") is not None:
        rows.append(("nvbench cold", "graph replay, L2 flushed, median", _fmt_ms(cold["gpu_median_ms"]),
                     _fmt_pct(nvb.get("rel_diff_cold_median")), "info"))
    eager = report.get("eager") or {}
    if eager.get("suite_hot_median_ms") is not None:
        rows.append(("suite eager", "hot, median", _fmt_ms(eager["suite_hot_median_ms"]),
                     _fmt_pct(eager.get("suite_hot_vs_graph")), "info"))
    if eager.get("suite_cold_median_ms") is not None:
        rows.append(("suite eager", "cold (L2 flushed), median", _fmt_ms(eager["suite_cold_median_ms"]),
                     _fmt_pct(eager.get("suite_cold_vs_graph")), "info"))
    db = (tri.get("do_bench") or {})
    if db.get("median_ms") is not None:
        rows.append(("triton do_bench", "eager, L2 cleared, median", _fmt_ms(db["median_ms"]),
                     _fmt_pct(db.get("rel_diff_vs_suite_eager_cold")), "vs suite eager cold"))
    return rows


def format_table(report: dict) -> str:
    rows = summary_rows(report)
    head = ("reference", "measurement", "ms", "vs suite", "check")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    title = f"case {report.get('case_id')} on {report.get('device', {}).get('name')}"
    return "\n".join([title, line(head), line(tuple("-" * w for w in widths))] + [line(r) for r in rows])


# --- GPU side (imports torch, triton and cuda.bench lazily) ----------------------------------


def _import_suite():
    """`dsabench` as installed, else the package from this checkout's suite/dsabench folder."""
    try:
        return importlib.import_module("dsabench")
    except ImportError:
        pkg = REPO_ROOT / "suite" / "dsabench"
        spec = importlib.util.spec_from_file_location("dsabench", pkg / "__init__.py",
                                                      submodule_search_locations=[str(pkg)])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["dsabench"] = mod
        spec.loader.exec_module(mod)
        return mod


def _timing_dict(timing, summarize) -> dict:
    s = summarize(timing.samples_ms)
    return {
        "median_ms": s.median,
        "ci_low_ms": s.ci_low,
        "ci_high_ms": s.ci_high,
        "rel_ci_halfwidth": s.rel_ci_halfwidth,
        "n": s.n,
        "iters_per_sample": timing.iters_per_sample,
        "warmup_iters": timing.warmup_iters,
        "stop_reason": timing.stop_reason,
    }


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _free(torch) -> None:
    torch.cuda.synchronize()
    gc.collect()
    torch.cuda.empty_cache()


def _import_cuda_bench(torch, notes: list[str]):
    """Import cuda.bench and load its native module (cuda-bindings picks cu12 or cu13)."""
    try:
        import cuda.bench as bench  # noqa: PLC0415
    except ImportError:
        # A `cuda` package with an __init__.py elsewhere on sys.path hides cuda/bench: extend it.
        import cuda  # noqa: PLC0415

        for p in sys.path:
            d = Path(p or ".") / "cuda"
            if (d / "bench" / "__init__.py").is_file() and str(d) not in list(cuda.__path__):
                cuda.__path__.append(str(d))
                notes.append(f"extended cuda.__path__ with {d}")
        import cuda.bench as bench  # noqa: PLC0415
    try:
        bench._load_nvbench_module()
    except ImportError as exc:
        if "cuda-bindings" not in str(exc) or not torch.version.cuda:
            raise
        # No cuda-bindings: pick the extension from torch's CUDA major instead.
        major = int(torch.version.cuda.split(".")[0])
        notes.append(f"cuda-bindings missing ({exc}); loaded cuda.bench's cu{major} extension from torch's CUDA")
        bench._get_cuda_major_version = lambda: major
        bench._load_nvbench_module.cache_clear()
        bench._load_nvbench_module()
    return bench


def run_nvbench(torch, replay: Callable[[], None], device_index: int, json_path: Path, args) -> dict:
    """Time `replay` (a captured graph's replay) with cuda-bench; everything guarded."""
    out: dict[str, Any] = {"json_path": str(json_path), "notes": [], "counting": NVBENCH_COUNTING}
    try:
        bench = _import_cuda_bench(torch, out["notes"])
        out["cuda_bench_version"] = getattr(bench, "__version__", None)
    except Exception as exc:  # noqa: BLE001
        out["error"] = f"import cuda.bench failed: {_err(exc)}"
        return out

    dev = torch.device("cuda", device_index)
    streams: dict[int, Any] = {}

    def launcher(launch) -> None:
        # nvbench hands its own stream; torch's CUDAGraph.replay launches on torch's current
        # stream (cudaGraphLaunch(graph_exec, getCurrentCUDAStream())): make it that stream.
        ptr = launch.get_stream().addressof()
        ext = streams.get(ptr)
        if ext is None:
            ext = streams[ptr] = torch.cuda.ExternalStream(ptr, device=dev)
        with torch.cuda.stream(ext):
            replay()

    def graph_replay(state) -> None:
        state.exec(launcher)  # batched (default): cold measurement, then batch (hot)

    argv = nvbench_argv(json_path, device=device_index, timeout_s=args.nvbench_timeout,
                        max_noise_pct=args.nvbench_max_noise, min_samples=args.nvbench_min_samples,
                        batch_target_s=args.nvbench_batch_target)
    out["argv"] = argv
    try:
        b = bench.register(graph_replay)
        b.set_name(NVBENCH_BENCHMARK_NAME)
        torch.cuda.synchronize()
        sys.stdout.flush()
        t0 = time.perf_counter()
        bench.run_all_benchmarks(argv)
        out["wall_s"] = time.perf_counter() - t0
    except BaseException as exc:  # noqa: BLE001 (nvbench may raise SystemExit-like errors)
        out["error"] = f"cuda.bench run failed: {_err(exc)}"
        out["traceback"] = traceback.format_exc()[-2000:]
        if isinstance(exc, KeyboardInterrupt):
            raise
    finally:
        sys.stdout.flush()
        torch.cuda.synchronize()
    try:
        parsed = parse_nvbench_json(json_path, NVBENCH_BENCHMARK_NAME)
        out["json_version"] = parsed["json_version"]
        out["nvbench_version"] = parsed["nvbench_version"]
        out["devices"] = parsed["devices"]
        if not parsed["states"]:
            raise ValueError("benchmark has no states")
        st = parsed["states"][0]
        out["state"] = {k: v for k, v in st.items() if k != "summaries"}
        out["all_summaries"] = st["summaries"]
    except Exception as exc:  # noqa: BLE001
        out.setdefault("error", f"parsing {json_path} failed: {_err(exc)}")
    return out


def _triton_semantics(triton) -> dict:
    """What the installed triton's do_bench_cudagraph / do_bench do, read from their source."""
    import inspect  # noqa: PLC0415

    info: dict[str, Any] = {}
    try:
        src = inspect.getsource(triton.testing.do_bench_cudagraph)
        m = re.search(r"n_retries\s*=\s*(\d+)", src)
        info["do_bench_cudagraph"] = {
            "captures_n_repeat_calls_in_one_graph": bool(re.search(r"for \w+ in range\(n_repeat\)", src)),
            "divides_by_n_repeat": "/ n_repeat" in src,
            "n_retries": int(m.group(1)) if m else None,
            "clears_l2": ("clear_cache" in src) or ("zero_()" in src),
        }
    except Exception as exc:  # noqa: BLE001
        info["do_bench_cudagraph"] = {"error": _err(exc)}
    try:
        src = inspect.getsource(triton.testing.do_bench)
        info["do_bench"] = {"clears_l2": ("clear_cache" in src) or ("zero_()" in src)}
    except Exception as exc:  # noqa: BLE001
        info["do_bench"] = {"error": _err(exc)}
    return info


def _versions(torch) -> dict:
    v: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                         "torch_cuda": torch.version.cuda}
    for name, dist in (("triton", "triton"), ("cuda_bench", "cuda-bench"), ("cuda_bindings", "cuda-bindings"),
                       ("nvtx", "nvtx"), ("dsabench", "dsabench")):
        try:
            v[name] = importlib.metadata.version(dist)
        except Exception:  # noqa: BLE001
            v[name] = None
    try:
        import subprocess  # noqa: PLC0415

        v["git_commit"] = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                         text=True, timeout=10).stdout.strip() or None
    except Exception:  # noqa: BLE001
        v["git_commit"] = None
    return v


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for reference.json and nvbench.json")
    p.add_argument("--preset", default=DEFAULT_PRESET, help="scenario preset or .toml (default: %(default)s)")
    p.add_argument("--case-filter", default=DEFAULT_CASE_REGEX,
                   help="regex on case ids; the first matching patched graph case is used (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="fresh measure calls (default: %(default)s)")
    p.add_argument("--triton-rep", type=float, default=DEFAULT_TRITON_REP_MS,
                   help="ms of work per triton timing (default: %(default)s)")
    p.add_argument("--nvbench-timeout", type=float, default=DEFAULT_NVBENCH_TIMEOUT_S,
                   help="nvbench --timeout per measurement, s (default: %(default)s)")
    p.add_argument("--nvbench-max-noise", type=float, default=DEFAULT_NVBENCH_MAX_NOISE_PCT,
                   help="nvbench --max-noise, percent (default: %(default)s)")
    p.add_argument("--nvbench-min-samples", type=int, default=DEFAULT_NVBENCH_MIN_SAMPLES)
    p.add_argument("--nvbench-batch-target", type=float, default=DEFAULT_NVBENCH_BATCH_TARGET_S,
                   help="nvbench --batch-target-time, s (default: %(default)s)")
    p.add_argument("--skip-eager", action="store_true", help="skip the eager extras")
    p.add_argument("--skip-nvbench", action="store_true")
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error("--repeats must be at least 1")
    return a


def jsonable(x: Any) -> Any:
    """Strict-JSON form: non-finite floats (nvbench's noise sentinel is +inf) become strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    return x


def _write(path: Path, report: dict) -> None:
    path.write_text(json.dumps(jsonable(report), indent=2, default=str, allow_nan=False) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    ref_path = out_dir / "reference.json"
    t_start = time.perf_counter()
    report: dict[str, Any] = {
        "schema": "dsabench.gpu_reference/1",
        "targets": {"suite_spread": SPREAD_TARGET, "triton_cudagraph_rel_diff": TRITON_TARGET,
                    "nvbench_batch_rel_diff": NVBENCH_TARGET},
        "args": vars(args),
    }

    import torch  # noqa: PLC0415

    report["versions"] = _versions(torch)
    dsabench = _import_suite()
    measure = importlib.import_module("dsabench.bench.protocol")
    stats = importlib.import_module("dsabench.analysis.stats")
    scenarios = importlib.import_module("dsabench.workload.scenarios")
    inputs = importlib.import_module("dsabench.workload.inputs")
    variants = importlib.import_module("dsabench.workload.variants")
    TorchBackend = importlib.import_module("dsabench.bench.backends.torch").TorchBackend
    report["versions"]["dsabench"] = report["versions"].get("dsabench") or getattr(dsabench, "__version__", None)
    PATCHED = variants.PATCHED

    try:
        sset = scenarios.load_named(args.preset)
        case = pick_case([c for c in sset.cases if c.variant == PATCHED], args.case_filter)
        report["case_id"] = case.id
        report["case"] = case.params()
        report["preset"] = {"name": sset.name, "sha256": sset.sha256}
        print(f"case: {case.id}", flush=True)

        backend = TorchBackend("gpu")
        report["device"] = backend.device_identity()
        dev_index = backend.device.index or 0
        t0 = time.perf_counter()
        host = inputs.make_host_inputs(case)
        state = backend.prepare(case, host)
        del host
        report["setup_s"] = time.perf_counter() - t0

        def eager() -> Any:
            return backend.forward(state, PATCHED)

        replay, _ = backend.capture(eager)
        clock, sync = backend.clock(), backend.synchronize

        # 2. the suite's protocol, `repeats` fresh calls of measure on the same graph
        runs = []
        for i in range(args.repeats):
            t = measure.measure(replay, clock, sync, measure.GPU_PROTOCOL)
            runs.append(_timing_dict(t, stats.summarize))
            print(f"suite repeat {i + 1}/{args.repeats}: median {runs[-1]['median_ms']:.4f} ms "
                  f"(n={runs[-1]['n']}, K={runs[-1]['iters_per_sample']}; {runs[-1]['stop_reason']})", flush=True)
        medians = [r["median_ms"] for r in runs]
        suite_ref = median(medians)
        report["suite"] = {
            "counting": SUITE_COUNTING,
            "protocol": {k: getattr(measure.GPU_PROTOCOL, k) for k in measure.GPU_PROTOCOL.__dataclass_fields__},
            "repeats": runs,
            "medians_ms": medians,
            "median_of_medians_ms": suite_ref,
            "spread": spread(medians),
            "spread_ok": within(spread(medians), SPREAD_TARGET),
        }
        _write(ref_path, report)

        # 3. triton
        tri: dict[str, Any] = {"counting": TRITON_COUNTING}
        report["triton"] = tri
        try:
            import triton  # noqa: PLC0415
            import triton.testing  # noqa: PLC0415

            tri["version"] = triton.__version__
            tri["source_check"] = _triton_semantics(triton)
            cg = []
            for _ in range(args.repeats):
                cg.append(float(triton.testing.do_bench_cudagraph(eager, rep=args.triton_rep, return_mode="median")))
                _free(torch)
            tri["do_bench_cudagraph"] = {"rep_ms": args.triton_rep, "medians_ms": cg, "median_ms": median(cg),
                                         "spread": spread(cg), "rel_diff": rel_diff(median(cg), suite_ref)}
            tri["do_bench_cudagraph"]["ok"] = within(tri["do_bench_cudagraph"]["rel_diff"], TRITON_TARGET)
            print(f"triton do_bench_cudagraph medians: {', '.join(f'{x:.4f}' for x in cg)} ms", flush=True)
        except Exception as exc:  # noqa: BLE001
            tri.setdefault("do_bench_cudagraph", {})["error"] = _err(exc)
            tri["do_bench_cudagraph"]["traceback"] = traceback.format_exc()[-2000:]
            print(f"triton do_bench_cudagraph failed: {_err(exc)}", flush=True)
        _free(torch)
        _write(ref_path, report)

        # 3b. eager extras: suite eager hot and cold vs triton do_bench (eager, L2 cleared)
        eager_rep: dict[str, Any] = {}
        report["eager"] = eager_rep
        if not args.skip_eager:
            try:
                from dataclasses import replace  # noqa: PLC0415

                hot = _timing_dict(measure.measure(eager, clock, sync, measure.GPU_PROTOCOL), stats.summarize)
                cold_p = replace(measure.GPU_PROTOCOL, mode="cold")
                cold = _timing_dict(measure.measure(eager, clock, sync, cold_p, flush=backend.flush_l2),
                                    stats.summarize)
                eager_rep.update({
                    "suite_hot": hot, "suite_cold": cold,
                    "suite_hot_median_ms": hot["median_ms"], "suite_cold_median_ms": cold["median_ms"],
                    "suite_hot_vs_graph": rel_diff(hot["median_ms"], suite_ref),
                    "suite_cold_vs_graph": rel_diff(cold["median_ms"], suite_ref),
                })
            except Exception as exc:  # noqa: BLE001
                eager_rep["error"] = _err(exc)
            _free(torch)
            try:
                import triton.testing  # noqa: PLC0415

                db = float(triton.testing.do_bench(eager, warmup=DEFAULT_TRITON_WARMUP_MS, rep=args.triton_rep,
                                                   return_mode="median"))
                d = {"median_ms": db, "warmup_ms": DEFAULT_TRITON_WARMUP_MS, "rep_ms": args.triton_rep}
                if eager_rep.get("suite_cold_median_ms"):
                    d["rel_diff_vs_suite_eager_cold"] = rel_diff(db, eager_rep["suite_cold_median_ms"])
                if eager_rep.get("suite_hot_median_ms"):
                    d["rel_diff_vs_suite_eager_hot"] = rel_diff(db, eager_rep["suite_hot_median_ms"])
                tri["do_bench"] = d
            except Exception as exc:  # noqa: BLE001
                tri["do_bench"] = {"error": _err(exc)}
            _free(torch)
            _write(ref_path, report)

        # 4. cuda-bench (nvbench) on the same graph
        if args.skip_nvbench:
            report["nvbench"] = {"skipped": True}
        else:
            nvb = run_nvbench(torch, replay, dev_index, out_dir / "nvbench.json", args)
            st = nvb.get("state") or {}
            ref = nvbench_reference(st) if st else None
            if ref is not None:
                nvb["compared_measurement"], nvb["compared_ms"] = ref
                nvb["rel_diff"] = rel_diff(ref[1], suite_ref)
            if (st.get("batch") or {}).get("gpu_mean_ms") is not None:
                nvb["rel_diff_batch"] = rel_diff(st["batch"]["gpu_mean_ms"], suite_ref)
                nvb["batch_ok"] = within(nvb["rel_diff_batch"], NVBENCH_TARGET)
            cold = st.get("cold") or {}
            if cold.get("gpu_median_ms") is not None:
                nvb["rel_diff_cold_median"] = rel_diff(cold["gpu_median_ms"], suite_ref)
            if cold.get("gpu_mean_ms") is not None:
                nvb["rel_diff_cold_mean"] = rel_diff(cold["gpu_mean_ms"], suite_ref)
            report["nvbench"] = nvb
    except BaseException as exc:
        report["error"] = _err(exc)
        report["traceback"] = traceback.format_exc()[-4000:]
        report["total_s"] = time.perf_counter() - t_start
        _write(ref_path, report)
        raise

    report["total_s"] = time.perf_counter() - t_start
    _write(ref_path, report)
    print(f"\nwrote {ref_path} ({report['total_s']:.1f} s)")
    print(format_table(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
