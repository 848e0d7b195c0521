"""The suite's Triton decode and prefill kernels against FlashMLA, configuration by configuration,
in one process on one GPU (issue 23, item 5: the data to tune from; nothing here changes a default).

    python3 scripts/triton_tune.py --work DIR [--deadline-s 470] [--compile-workers 12] [--resume]

Stages, each item journalled in DIR/tune.jsonl as it finishes (a cut-off call keeps what it measured):
  compile  every configuration compiled once, in parallel worker processes on tiny inputs of the
           same specialization (Triton's cache then serves the timed process; TRITON_CACHE_DIR in an
           ignored folder of the tree survives between calls on a warm machine);
  decode   b32, b64 and b128 at 65536 blocks (the `kernels` preset's shapes, the suite's own inputs:
           the cache forward_mixed hands the decode kernel): FlashMLA as FastDeploy calls it (a fresh
           sched meta per call), then each configuration: CUDA-graph median ms, x FlashMLA, relative
           error of the first 8 tokens against float64, largest difference to the default's output;
  prefill  p2048 and p4096, the same (6 sampled rows against float64);
  summary  DIR/summary.txt and DIR/tune.json.

Why these configurations (docs/kernels.md, "Tuning against FlashMLA"): the decode kernel ran one
8-warp program per SM (255 registers, 190 KB shared memory), issue- and latency-bound at 30% issue
utilization. FlashMLA's sm90 decode differs in four ways the sweep can probe without a rewrite:
split-KV over all SMs with a persistent schedule (here: num_splits 1-4), deeper gather pipelines
(stages 3-4 at 32 or 64 keys a block), more warps in flight (16 warps: 128 registers a thread, the
accumulators then fit), and where the fp8 dequantization happens (FlashMLA: a producer warpgroup
writes bf16 K to shared memory; here: in the math warps, fp32 multiply by default, BF16_DEQUANT a
bf16 multiply, FOLD_SCALE the scale on the logits). What the sweep cannot probe: warp
specialization and the 2-CTA cluster that shares each K tile between the two head blocks of a
token (FlashMLA h128), which need kernel changes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flashmla_common import (  # noqa: E402
    D_LATENT, HEADS, TOPK, Journal, attention_flop, compare, graph_ms, log, ref64_decode, ref64_prefill,
    suite_decode, suite_prefill, timing_row, REL_BOUND, load_kernel, optional_flash_mla,
)

# (name, config overrides, num_splits or None for the kernel's own choice); the defaults are
# triton_mla.DECODE_CONFIG (BLOCK_N 64, 2 stages, 8 warps, fp32 dequantization) and PREFILL_CONFIG
# (BLOCK_N 128, 1 stage, 8 warps). Most promising first: a cut-off call keeps those.
DECODE = (
    ("default", {}, None),
    ("split2", {}, 2), ("split3", {}, 3), ("split4", {}, 4), ("split1", {}, 1),
    ("w16", {"num_warps": 16}, None),
    ("bf16dq", {"BF16_DEQUANT": True}, None),
    ("bf16dq.w16", {"BF16_DEQUANT": True, "num_warps": 16}, None),
    ("n32.s4", {"BLOCK_N": 32, "num_stages": 4}, None),
    ("n64.s3", {"num_stages": 3}, None),
    ("n32.s3.w16", {"BLOCK_N": 32, "num_stages": 3, "num_warps": 16}, None),
    ("n128.s2.w16", {"BLOCK_N": 128, "num_warps": 16}, None),
    ("bf16dq.n32.s4", {"BF16_DEQUANT": True, "BLOCK_N": 32, "num_stages": 4}, None),
    ("w16.split2", {"num_warps": 16}, 2),
    ("fold.n32.s3", {"FOLD_SCALE": True, "BLOCK_N": 32, "num_stages": 3}, None),
)
PREFILL = (
    ("default", {}),
    ("w16", {"num_warps": 16}),
    ("n64.s2.w16", {"BLOCK_N": 64, "num_stages": 2, "num_warps": 16}),
    ("n128.s2", {"num_stages": 2}),
    ("n64.s3", {"BLOCK_N": 64, "num_stages": 3}),
    ("n64.s2", {"BLOCK_N": 64, "num_stages": 2}),
    ("lazy", {"LAZY_RESCALE": True}),
)
DECODE_SHAPES = ((64, 65536), (32, 65536), (128, 65536))
PREFILL_LENGTHS = (2048, 4096)


# ----------------------------------------------------------------------------------------------
# compile: every configuration once, in parallel processes
# ----------------------------------------------------------------------------------------------


def _warm(kind: str, name: str, cfg: dict, splits: tuple) -> dict:
    """Compile one configuration by running it on tiny inputs with the timed shapes'
    specialization (h128, topk 2048, 64-token blocks, the patched view; the grid size does not
    enter Triton's cache key). In a worker process."""
    import torch  # noqa: PLC0415

    t0 = time.time()
    k = load_kernel("triton_mla")
    g = torch.Generator(device="cuda").manual_seed(0)
    try:
        if kind == "decode":
            q = torch.randn(2, 1, HEADS, 576, device="cuda", generator=g).to(torch.bfloat16)
            cache = torch.zeros(8, 1, 64, 656, dtype=torch.uint8, device="cuda").view(8, 64, 1, 656)
            idx = torch.randint(-1, 8 * 64, (2, 1, TOPK), device="cuda", generator=g, dtype=torch.int32)
            for s in splits:
                k.sparse_mla_decode(q, cache, idx, 0.1, config=cfg, num_splits=s)
        else:
            q = torch.randn(4, HEADS, 576, device="cuda", generator=g).to(torch.bfloat16)
            kv = torch.randn(4, 1, 576, device="cuda", generator=g).to(torch.bfloat16)
            idx = torch.randint(-1, 4, (4, 1, TOPK), device="cuda", generator=g, dtype=torch.int32)
            k.sparse_mla_prefill(q, kv, idx, 0.1, config=cfg)
        torch.cuda.synchronize()
        return {"name": f"{kind}.{name}", "ok": True, "seconds": round(time.time() - t0, 1)}
    except Exception as exc:  # noqa: BLE001 - e.g. out of shared memory: recorded, the sweep skips it
        return {"name": f"{kind}.{name}", "ok": False, "seconds": round(time.time() - t0, 1),
                "error": f"{type(exc).__name__}: {exc}"[:500]}


def stage_compile(j: Journal, workers: int, deadline: float) -> dict[str, str]:
    """name -> compile error ('' compiled). Decode configs compile both the single-pass kernel and
    the split one (b32 splits by default), each as it will be timed."""
    jobs = [("decode", n, c, (s,) if s else (1, 2)) for n, c, s in DECODE]
    jobs += [("prefill", n, c, (1,)) for n, c in PREFILL]

    def run():
        import multiprocessing as mp  # noqa: PLC0415

        out = {}
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        try:
            futures = [pool.submit(_warm, *job) for job in jobs]
            for f in as_completed(futures, timeout=max(10.0, deadline - time.time() - 240)):
                r = f.result()
                out[r["name"]] = r
                log(f"compiled {r['name']}: {'ok' if r['ok'] else r['error'][:160]} ({r['seconds']} s)")
        except TimeoutError:  # the rest compile in the timed process, as they are first called
            log(f"compile: {len(jobs) - len(out)} configurations not compiled within the budget")
        finally:
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:  # a worker still compiling would hold the call past its deadline
                proc.terminate()
        return {"configs": out}

    rec = j.run("compile", run)
    return {n: ("" if r["ok"] else r["error"]) for n, r in (rec.get("configs") or {}).items()}


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------


def _measure(fn, ref, default_out, pick) -> dict:
    """Relative error of pick(output) against the float64 `ref`, the largest difference to the
    default configuration's output, and the CUDA-graph time."""
    out = fn()
    res = {"vs_float64": compare(pick(out), ref)}
    if default_out is not None:
        d = (out.float() - default_out.float()).abs()
        d = d[d == d]  # NaN on either side is counted by compare's non-finite tokens, not here
        res["max_abs_diff_to_default"] = float(d.max()) if d.numel() else float("nan")
        res["bitwise_equal_to_default"] = torch_equal(out, default_out)
    res["time"] = graph_ms(fn)
    return res


def torch_equal(a, b) -> bool:
    import torch  # noqa: PLC0415

    return torch.equal(a.view(torch.int16), b.view(torch.int16))


def _sweep(j: Journal, kind: str, shape: str, base: dict, ref, pick, fm_call, runs, compiled: dict[str, str],
           deadline: float) -> None:
    """FlashMLA's call (when there is one), then each (name, fields, call) of `runs`, journalled
    as SHAPE.NAME; a configuration that did not compile is recorded skipped."""
    if fm_call is not None:
        j.run(f"{shape}.flashmla", lambda: {**base, **_measure(fm_call, ref, None, pick)})
    try:
        default_out = runs[0][2]()  # the first run is the default configuration
    except Exception as exc:  # noqa: BLE001 - its own item records why; the others go on
        log(f"{shape}: the default configuration failed ({type(exc).__name__}: {exc})")
        default_out = None
    for name, fields, call in runs:
        if time.time() > deadline - 30:
            log(f"{shape}: the rest skipped, past the deadline")
            break
        if compiled.get(f"{kind}.{name}"):
            j.run(f"{shape}.{name}", lambda e=compiled[f"{kind}.{name}"]: {"skipped": f"did not compile: {e}"})
            continue
        j.run(f"{shape}.{name}", lambda c=call, f=fields: {**base, **f, **_measure(c, ref, default_out, pick)})


def stage_decode(j: Journal, k, fm, compiled: dict[str, str], deadline: float) -> None:
    import torch  # noqa: PLC0415

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    for batch, blocks in DECODE_SHAPES:
        if time.time() > deadline - 60:
            log(f"decode b{batch}: skipped, past the deadline")
            break
        d = suite_decode(batch, blocks)
        valid = int((d.idx >= 0).sum())
        base = {"batch": batch, "num_blocks": blocks, "valid_indices": valid, "flop": attention_flop(valid),
                "default_splits": k.choose_splits(batch, 2, TOPK, 64, sms)}

        def fm_call(d=d):  # as FastDeploy calls it: a fresh sched meta per call
            meta = fm.get_mla_metadata()[0]
            return fm.flash_mla_with_kvcache(d.q, d.kv, None, None, D_LATENT, meta, None, d.scale, False, True, d.idx)[0]

        runs = [(name, {"config": cfg, "num_splits": splits},
                 lambda cfg=cfg, splits=splits, d=d: k.sparse_mla_decode(d.q, d.kv, d.idx, d.scale, config=cfg,
                                                                         num_splits=splits)[0])
                for name, cfg, splits in DECODE]
        _sweep(j, "decode", f"decode.b{batch}.n{blocks}", base, ref64_decode(d.q[:8], d.kv, d.idx[:8], d.scale),
               lambda out: out[:8], fm_call if fm is not None else None, runs, compiled, deadline)
        del d, runs
        torch.cuda.empty_cache()


def stage_prefill(j: Journal, k, fm, compiled: dict[str, str], deadline: float) -> None:
    import torch  # noqa: PLC0415

    for length in PREFILL_LENGTHS:
        if time.time() > deadline - 60:
            log(f"prefill p{length}: skipped, past the deadline")
            break
        d = suite_prefill(length)
        rows = torch.tensor([0, 1, 7, length // 2, length - 2, length - 1], device="cuda")
        base = {"prefill_len": length, "valid_indices": int((d.idx >= 0).sum()),
                "flop": attention_flop(int((d.idx >= 0).sum()))}

        def fm_call(d=d):
            return fm.flash_mla_sparse_fwd(d.q, d.kv, d.idx, sm_scale=d.scale)[0]

        runs = [(name, {"config": cfg}, lambda cfg=cfg, d=d: k.sparse_mla_prefill(d.q, d.kv, d.idx, d.scale,
                                                                                   config=cfg)[0])
                for name, cfg in PREFILL]
        _sweep(j, "prefill", f"prefill.p{length}", base, ref64_prefill(d.q, d.kv, d.idx, d.scale, rows),
               lambda out, rows=rows: out.index_select(0, rows), fm_call if fm is not None else None, runs,
               compiled, deadline)
        del d, runs
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------
# summary
# ----------------------------------------------------------------------------------------------


def summary(work: Path) -> str:
    recs = [json.loads(line) for line in (work / "tune.jsonl").read_text().splitlines() if line.strip()]
    recs = [r for r in recs if r.get("event") != "start"]
    (work / "tune.json").write_text(json.dumps(recs, indent=1))
    lines = ["Triton configurations against FlashMLA (CUDA-graph median ms per call, hot inputs; TFLOP/s on valid "
             "indices; x FM = this / FlashMLA in the same process; rel: relative error against float64 on 8 "
             "decode tokens / 6 prefill rows, bound 1e-2; diff: largest |difference| to the default config's output)"]
    def split(name: str) -> tuple[str, str]:  # (shape, config): decode.b64.n65536.<config>, prefill.p2048.<config>
        parts = name.split(".")
        n = 3 if parts[0] == "decode" else 2
        return ".".join(parts[:n]), ".".join(parts[n:])

    shapes = dict.fromkeys(split(r["name"])[0] for r in recs if r["name"] != "compile")
    comp = next((r for r in recs if r["name"] == "compile"), None)
    if comp and comp.get("configs"):
        bad = {n: c["error"] for n, c in comp["configs"].items() if not c["ok"]}
        lines.append(f"compile: {len(comp['configs']) - len(bad)} of {len(comp['configs'])} configurations in "
                     f"{comp.get('seconds')} s" + "".join(f"\n  {n}: {e[:200]}" for n, e in bad.items()))
    for shape in shapes:
        mine = [r for r in recs if r["name"] != "compile" and split(r["name"])[0] == shape]
        fm = next((r for r in mine if r["name"].endswith(".flashmla") and r["status"] == "ok"), None)
        fm_ms = fm["time"]["median_ms"] if fm else None
        lines.append(f"\n{shape}" + (f" (default splits {mine[0].get('default_splits')})" if "decode" in shape and mine
                                     and mine[0].get("default_splits") else ""))
        lines.append(f"  {'config':16s} {'ms':>8s} {'TFLOP/s':>8s} {'x FM':>6s} {'rel':>8s} {'diff':>8s}")
        for r in mine:
            name = split(r["name"])[1]
            if r["status"] != "ok" or "time" not in r:
                status = "skipped" if r.get("skipped") else r["status"]
                lines.append(f"  {name:16s} {status}: {(r.get('message') or r.get('skipped') or '')[:150]}")
                continue
            lines.append(timing_row(name, r, fm_ms, r.get("max_abs_diff_to_default"), 16, REL_BOUND))
    text = "\n".join(lines) + "\n"
    (work / "summary.txt").write_text(text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for tune.jsonl, tune.json and summary.txt")
    ap.add_argument("--deadline-s", type=float, default=470.0, help="stop starting new items after this long")
    ap.add_argument("--compile-workers", type=int, default=min(12, os.cpu_count() or 4))
    ap.add_argument("--resume", action="store_true", help="keep the items journalled by an earlier call")
    ap.add_argument("--summary-only", action="store_true")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.summary_only:
        print(summary(args.work), end="")
        return 0
    deadline = time.time() + args.deadline_s
    j = Journal(args.work / "tune.jsonl", args.resume)
    compiled = stage_compile(j, args.compile_workers, deadline)
    k = load_kernel("triton_mla")
    fm = optional_flash_mla("Triton alone")
    stage_decode(j, k, fm, compiled, deadline)
    stage_prefill(j, k, fm, compiled, deadline)
    print(summary(args.work), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
