"""The warp-specialized Gluon decode and prefill kernels (suite/dsabench/bench/kernels/gluon_mla.py,
gluon_mla_prefill.py) against the suite's Triton kernels and FlashMLA, in one process on one H200
(issue 23, item 5).

    python3 scripts/gluon_check.py --out DIR [--deadline-s 240] [--resume]

Items, each journalled in DIR/check.jsonl as it finishes (an error is recorded and the run goes on;
a broken CUDA context or the deadline ends it, and the summary is still written):
  edge     small inputs with an all-masked row, -1 and out-of-range slots, H 64 and 128, split and
           unsplit: Gluon against the Triton kernel (out and lse; the all-masked row must give 0 and
           -inf); the first Gluon launch, so a hang (a barrier never arriving) shows here;
  decode   b32, b64 and b128 at 65536 blocks (the suite's inputs, as forward_mixed hands them to the
           decode kernel): FlashMLA (if it imports), Triton (default, BF16_DEQUANT), Gluon (fp32
           dequantization, bf16): CUDA-graph median ms, relative error against float64 on 8 tokens,
           the largest difference to the Triton default's output, whether the output is finite;
  edge_prefill  the same masking rules for prefill (an all-masked row, -1 and out-of-range rows, a
           masked block in the middle, -1 padding at the end), H 64 and 128: Gluon against the
           Triton kernel, and Gluon with and without skipping the blocks after the last valid
           index (must be bit-identical);
  prefill  p2048 and p4096 (h128, topk 2048, the suite's causal inputs): FlashMLA, Triton, Gluon
           (skipping the all-masked tail blocks, and without: the same work as FlashMLA); relative
           error against float64 on 6 rows, the rest as for decode;
DIR/summary.txt and DIR/check.json at the end; x FM = this kernel / FlashMLA in the same process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flashmla_common import (  # noqa: E402
    D_LATENT, TOPK, CudaBroken, Journal, attention_flop, compare, graph_ms, log, ref64_decode, ref64_prefill,
    suite_decode, suite_prefill, timing_row, REL_BOUND, load_kernel as load, optional_flash_mla,
)

DECODE_SHAPES = ((64, 65536), (32, 65536), (128, 65536))
PREFILL_LENGTHS = (2048, 4096)


def _diff(a, b) -> float:
    d = (a.float() - b.float()).abs()
    d = d[d == d]
    return float(d.max()) if d.numel() else float("nan")


def edge_item(gm, tm) -> dict:
    """Gluon against Triton on small inputs that exercise the masking rules."""
    import torch  # noqa: PLC0415

    g = torch.Generator(device="cuda").manual_seed(1)
    res = {}
    for heads, topk, splits in ((128, 256, 1), (64, 192, 1), (128, 256, 2), (64, 128, 2)):
        blocks, bs, t = 16, 64, 5
        q = torch.randn(t, 1, heads, 576, device="cuda", generator=g).to(torch.bfloat16)
        cache = torch.randint(0, 256, (blocks, bs, 1, 656), device="cuda", generator=g, dtype=torch.uint8)
        rec = cache.view(-1, 656)
        rec[:, :512] = (torch.randn(blocks * bs, 512, device="cuda", generator=g) * 2).to(torch.float8_e4m3fn).view(torch.uint8)
        rec[:, 512:528] = (torch.rand(blocks * bs, 4, device="cuda", generator=g) * 0.1 + 0.01).view(torch.uint8)
        rec[:, 528:] = torch.randn(blocks * bs, 64, device="cuda", generator=g).to(torch.bfloat16).view(torch.uint8)
        idx = torch.randint(0, blocks * bs, (t, 1, topk), device="cuda", generator=g, dtype=torch.int32)
        idx[0] = -1  # all masked
        idx[1, 0, ::3] = -1
        idx[2, 0, 5::7] = blocks * bs + 11  # out of range: masked, never read
        idx[3, 0, topk // 2:] = -1
        out_g, lse_g = gm.sparse_mla_decode(q, cache, idx, 0.07, num_splits=splits)
        out_t, lse_t = tm.sparse_mla_decode(q, cache, idx, 0.07)
        torch.cuda.synchronize()
        key = f"h{heads}.topk{topk}.split{splits}"
        res[key] = {
            "max_abs_diff_out": _diff(out_g, out_t),
            "max_abs_diff_lse_rows_1_4": _diff(lse_g[1:], lse_t[1:]),
            "masked_row_out_zero": bool((out_g[0] == 0).all()),
            "masked_row_lse_neg_inf": bool(torch.isneginf(lse_g[0]).all()),
            "finite_rows_1_4": bool(torch.isfinite(out_g[1:].float()).all() and torch.isfinite(lse_g[1:]).all()),
            "deterministic": bool(torch.equal(out_g.view(torch.int16),
                                              gm.sparse_mla_decode(q, cache, idx, 0.07, num_splits=splits)[0]
                                              .view(torch.int16))),
        }
    return {"cases": res}


def edge_prefill_item(gp, tm) -> dict:
    """Gluon prefill against Triton prefill on small inputs that exercise the masking rules."""
    import torch  # noqa: PLC0415

    g = torch.Generator(device="cuda").manual_seed(2)
    res = {}
    for heads, topk, rows in ((128, 256, 300), (64, 192, 200), (64, 128, 70)):
        t = 6
        q = torch.randn(t, heads, 576, device="cuda", generator=g).to(torch.bfloat16)
        kv = torch.randn(rows, 1, 576, device="cuda", generator=g).to(torch.bfloat16)
        idx = torch.randint(0, rows, (t, 1, topk), device="cuda", generator=g, dtype=torch.int32)
        idx[0] = -1  # all masked
        idx[1, 0, ::3] = -1
        idx[2, 0, 5::7] = rows + 11  # out of range: masked, never read
        idx[3, 0, topk // 2:] = -1  # -1 padded tail: skipped blocks
        idx[4, 0, 64:128] = -1  # an all-masked block in the middle
        idx[5, 0, 1:] = -1  # one valid index
        out_g, lse_g = gp.sparse_mla_prefill(q, kv, idx, 0.07)
        out_n, lse_n = gp.sparse_mla_prefill(q, kv, idx, 0.07, skip_masked_blocks=False)
        out_t, lse_t = tm.sparse_mla_prefill(q, kv, idx, 0.07)
        torch.cuda.synchronize()
        res[f"h{heads}.topk{topk}.rows{rows}"] = {
            "max_abs_diff_out": _diff(out_g, out_t),
            "max_abs_diff_lse_rows_1_5": _diff(lse_g[1:], lse_t[1:]),
            "masked_row_out_zero": bool((out_g[0] == 0).all()),
            "masked_row_lse_neg_inf": bool(torch.isneginf(lse_g[0]).all()),
            "finite_rows_1_5": bool(torch.isfinite(out_g[1:].float()).all() and torch.isfinite(lse_g[1:]).all()),
            "skip_equals_noskip": bool(torch.equal(out_g.view(torch.int16), out_n.view(torch.int16))
                                       and torch.equal(lse_g, lse_n)),
            "deterministic": bool(torch.equal(out_g.view(torch.int16),
                                              gp.sparse_mla_prefill(q, kv, idx, 0.07)[0]
                                              .view(torch.int16))),
        }
    return {"cases": res}


def measure(fn, ref, triton_out, pick=lambda out: out[:8]) -> dict:
    import torch  # noqa: PLC0415

    out = fn()
    torch.cuda.synchronize()
    res = {"finite": bool(torch.isfinite(out.float()).all()), "vs_float64": compare(pick(out), ref)}
    if triton_out is not None:
        res["max_abs_diff_to_triton"] = _diff(out, triton_out)
    res["time"] = graph_ms(fn)
    return res


def triton_output(shape: str, call):
    """The Triton kernel's output, the reference for `diff` (None if it fails: its own item records why)."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001
        log(f"{shape}: the Triton kernel failed ({type(exc).__name__}: {exc})")
        return None


def measure_runs(j: Journal, shape: str, base: dict, runs, ref, triton_out, deadline: float,
                 pick=lambda out: out[:8]) -> None:
    for name, call in runs:
        if time.time() > deadline - 20:
            log(f"{shape}.{name}: skipped, past the deadline")
            break
        j.run(f"{shape}.{name}", lambda c=call: {**base, **measure(c, ref, triton_out, pick)})


def stage_decode(j: Journal, gm, tm, fm, deadline: float) -> None:
    import torch  # noqa: PLC0415

    for batch, blocks in DECODE_SHAPES:
        if time.time() > deadline - 40:
            log(f"decode b{batch}: skipped, past the deadline")
            break
        d = suite_decode(batch, blocks)
        valid = int((d.idx >= 0).sum())
        base = {"batch": batch, "num_blocks": blocks, "valid_indices": valid, "flop": attention_flop(valid)}
        ref = ref64_decode(d.q[:8], d.kv, d.idx[:8], d.scale)
        shape = f"decode.b{batch}.n{blocks}"
        triton_out = triton_output(shape, lambda d=d: tm.sparse_mla_decode(d.q, d.kv, d.idx, d.scale)[0])
        runs = []
        if fm is not None:
            def fm_call(d=d):  # as FastDeploy calls it: a fresh sched meta per call
                meta = fm.get_mla_metadata()[0]
                return fm.flash_mla_with_kvcache(d.q, d.kv, None, None, D_LATENT, meta, None, d.scale, False, True,
                                                 d.idx)[0]
            runs.append(("flashmla", fm_call))
        runs += [
            ("triton", lambda d=d: tm.sparse_mla_decode(d.q, d.kv, d.idx, d.scale)[0]),
            ("triton_bf16", lambda d=d: tm.sparse_mla_decode(d.q, d.kv, d.idx, d.scale,
                                                             config={"BF16_DEQUANT": True})[0]),
            ("gluon", lambda d=d: gm.sparse_mla_decode(d.q, d.kv, d.idx, d.scale)[0]),
            ("gluon_bf16", lambda d=d: gm.sparse_mla_decode(d.q, d.kv, d.idx, d.scale, bf16_dequant=True)[0]),
        ]
        if batch == 32:
            runs.append(("gluon_split1", lambda d=d: gm.sparse_mla_decode(d.q, d.kv, d.idx, d.scale, num_splits=1)[0]))
        if batch == 128:
            runs.append(("gluon_split2", lambda d=d: gm.sparse_mla_decode(d.q, d.kv, d.idx, d.scale, num_splits=2)[0]))
        measure_runs(j, shape, base, runs, ref, triton_out, deadline)
        del d, runs, triton_out
        torch.cuda.empty_cache()


def stage_prefill(j: Journal, gp, tm, fm, deadline: float) -> None:
    import torch  # noqa: PLC0415

    for length in PREFILL_LENGTHS:
        if time.time() > deadline - 40:
            log(f"prefill p{length}: skipped, past the deadline")
            break
        d = suite_prefill(length)
        rows = torch.tensor([0, 1, 7, length // 2, length - 2, length - 1], device="cuda")
        valid = int((d.idx >= 0).sum())
        base = {"prefill_len": length, "valid_indices": valid, "flop": attention_flop(valid)}
        ref = ref64_prefill(d.q, d.kv, d.idx, d.scale, rows)
        shape = f"prefill.p{length}"
        triton_out = triton_output(shape, lambda d=d: tm.sparse_mla_prefill(d.q, d.kv, d.idx, d.scale)[0])
        runs = []
        if fm is not None:
            runs.append(("flashmla", lambda d=d: fm.flash_mla_sparse_fwd(d.q, d.kv, d.idx, sm_scale=d.scale)[0]))
        runs += [
            ("triton", lambda d=d: tm.sparse_mla_prefill(d.q, d.kv, d.idx, d.scale)[0]),
            ("gluon", lambda d=d: gp.sparse_mla_prefill(d.q, d.kv, d.idx, d.scale)[0]),
            ("gluon_noskip", lambda d=d: gp.sparse_mla_prefill(d.q, d.kv, d.idx, d.scale, skip_masked_blocks=False)[0]),
        ]
        measure_runs(j, shape, base, runs, ref, triton_out, deadline, lambda out, rows=rows: out.index_select(0, rows))
        del d, runs, triton_out
        torch.cuda.empty_cache()


def summary(out: Path) -> str:
    recs = [json.loads(line) for line in (out / "check.jsonl").read_text().splitlines() if line.strip()]
    recs = [r for r in recs if r.get("event") != "start"]
    (out / "check.json").write_text(json.dumps(recs, indent=1))
    lines = ["Gluon warp-specialized decode and prefill vs Triton vs FlashMLA (CUDA-graph median ms per call, "
             "hot inputs; x FM = this / FlashMLA in the same process; rel: relative error against float64 on 8 "
             "decode tokens / 6 prefill rows, "
             f"bound {REL_BOUND:g}; diff: largest |difference| to the Triton default's output)"]
    for r in recs:
        if r["name"] in ("edge", "edge_prefill", "edge_prefill_balanced"):  # _balanced: journals of 2026-12-03
            lines.append(f"\n{r['name']}: {r['status']} {r.get('message', '')[:300]}")
            for k, v in (r.get("cases") or {}).items():
                lines.append(f"  {k}: {json.dumps(v)}")
    shapes = dict.fromkeys(r["name"].rsplit(".", 1)[0] for r in recs
                            if r["name"].startswith(("decode.", "prefill.")))
    for shape in shapes:
        mine = [r for r in recs if r["name"].rsplit(".", 1)[0] == shape]
        fm = next((r for r in mine if r["name"].endswith(".flashmla") and r["status"] == "ok"), None)
        fm_ms = fm["time"]["median_ms"] if fm else None
        lines.append(f"\n{shape}")
        lines.append(f"  {'kernel':14s} {'ms':>8s} {'TFLOP/s':>8s} {'x FM':>6s} {'rel':>8s} {'diff':>8s} finite")
        for r in mine:
            name = r["name"].rsplit(".", 1)[1]
            if r["status"] != "ok":
                lines.append(f"  {name:14s} {r['status']}: {(r.get('message') or '')[:200]}")
                continue
            lines.append(timing_row(name, r, fm_ms, r.get("max_abs_diff_to_triton"), 14, REL_BOUND, f" {r['finite']}"))
    text = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for check.jsonl, check.json and summary.txt")
    ap.add_argument("--deadline-s", type=float, default=240.0, help="start no item after this long")
    ap.add_argument("--resume", action="store_true", help="keep the items journalled by an earlier call")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + args.deadline_s
    j = Journal(args.out / "check.jsonl", args.resume)
    rc = 0
    try:
        tm = load("triton_mla")
        gm = load("gluon_mla")
        fm = optional_flash_mla("no FlashMLA column")
        j.run("edge", lambda: edge_item(gm, tm))
        stage_decode(j, gm, tm, fm, deadline)
        gp = load("gluon_mla_prefill")
        j.run("edge_prefill", lambda: edge_prefill_item(gp, tm))
        stage_prefill(j, gp, tm, fm, deadline)
    except CudaBroken as exc:
        log(f"stopped: {exc}")
        rc = 3
    print(summary(args.out), end="")
    return rc


if __name__ == "__main__":
    assert TOPK == 2048
    sys.exit(main())
