"""Build, check and time the fused Triton sparse-MLA kernels (suite/dsabench/bench/kernels/triton_mla.py) on a GPU.

One call does everything the lease allows: correctness over random shapes (float64 reference on
the GPU from the same dequantized data), poisoned outputs, garbage in unused cache slots,
bit-identity between eager calls and CUDA-graph replay, then timings of several launch configs
(triton.testing.do_bench median, and CUDA-graph replay). Full numbers go to --out/kernel_check.json;
a short table is printed last.

    PYTHONUNBUFFERED=1 python3 scripts/kernel_check.py --out $OUT [--quick]

The kernel module is loaded from its file path (no dsabench import), and so are these helpers by
tests/test_triton_kernels.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
KERNEL_PATH = ROOT / "suite" / "dsabench" / "bench" / "kernels" / "triton_mla.py"

D_LATENT, D_ROPE, D_QK, RECORD = 512, 64, 576, 656
FP8_MAX = 448.0
REL_BOUND = 1e-2  # ||out - ref|| / ||ref||; bf16 operands give about 2e-3 to 5e-3
LSE_BOUND = 2.0**-8  # max |lse - ref| / cond, cond = scale * max_j sum_i |q_i k_ji| over a row's valid keys:
#                     rounding K to bf16 (unit roundoff 2^-8) moves each logit, hence the lse, by at
#                     most 2^-8 * cond. Seen: ~4e-5 with bf16-dequantized K (default), ~1e-8 with
#                     FOLD_SCALE (exact codes in the dots); bf16 prefill ~1e-8


def load_kernels(path: Path = KERNEL_PATH):
    spec = importlib.util.spec_from_file_location("triton_mla_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # triton's jit looks functions up through their module
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------


def encode_records(latent: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """[n, 512] float + [n, 64] bf16 -> [n, 656] uint8 fp8_ds_mla records (per-tile amax scale)."""
    n = latent.shape[0]
    x = latent.float().reshape(n, 4, 128)
    scale = torch.clamp_min(x.abs().amax(-1) / FP8_MAX, torch.finfo(torch.float32).tiny)
    codes = torch.clamp(x / scale.unsqueeze(-1), -FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return torch.cat([codes.reshape(n, -1).view(torch.uint8), scale.contiguous().view(torch.uint8),
                      rope.to(torch.bfloat16).contiguous().view(torch.uint8)], dim=-1)


def garbage_cache(num_blocks: int, block_size: int, gen: torch.Generator, device) -> torch.Tensor:
    """Random bytes with fp8 NaN codes (0x7F, 0xFF) and NaN / Inf float32 scales sprinkled in."""
    cache = torch.randint(0, 256, (num_blocks * block_size, RECORD), dtype=torch.uint8, device=device, generator=gen)
    hot = torch.rand(cache.shape, device=device, generator=gen) < 0.05
    cache[hot] = 0xFF
    hot = torch.rand(cache.shape, device=device, generator=gen) < 0.05
    cache[hot] = 0x7F
    scales = cache[:, 512:528].contiguous().view(torch.float32)  # [rows, 4]
    pick = torch.rand(scales.shape, device=device, generator=gen)
    scales = torch.where(pick < 0.2, torch.full_like(scales, float("nan")), scales)
    scales = torch.where((pick >= 0.2) & (pick < 0.3), torch.full_like(scales, float("inf")), scales)
    cache[:, 512:528] = scales.view(torch.uint8)
    return cache


def make_decode(tokens, heads, topk, block_size, *, ctx=None, slack=8, seed=0, device="cuda", layout="plain",
                special_rows=True):
    """q [T,1,H,576] bf16, kv_cache [N,B,1,656] uint8 (a view), indices [T,1,topk] int32, and the
    rows of the cache's base buffer that hold records (the rest is garbage). Each token owns its own context (length ctx[t]) in randomly placed blocks;
    every other slot holds garbage."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    cpu = torch.Generator()
    cpu.manual_seed(seed + 1)
    if ctx is None:
        ctx = [int(v) for v in torch.randint(1, 2 * topk + 1, (tokens,), generator=cpu)]
        ctx[0] = max(ctx[0], topk + 3)  # at least one full row
        if tokens > 1:
            ctx[-1] = min(ctx[-1], max(1, topk // 3))  # at least one short row (many -1)
    nblk = [math.ceil(c / block_size) for c in ctx]
    num_blocks = sum(nblk) + slack
    perm = torch.randperm(num_blocks, generator=cpu)
    rows = garbage_cache(num_blocks, block_size, gen, device)
    indices = torch.full((tokens, topk), -1, dtype=torch.int32)
    used = []
    at = 0
    for t in range(tokens):
        blocks = perm[at:at + nblk[t]]
        at += nblk[t]
        pos = torch.arange(ctx[t])
        slots = blocks[pos // block_size] * block_size + pos % block_size
        used.append(slots)
        if ctx[t] >= topk:
            pick = slots[torch.randperm(ctx[t], generator=cpu)[:topk]]
            indices[t] = pick.to(torch.int32)
        else:
            where = torch.randperm(topk, generator=cpu)[:ctx[t]]
            indices[t, where] = slots.to(torch.int32)
    if special_rows and tokens >= 3:
        indices[1] = -1  # all masked: out 0, lse -inf
        keep = torch.randperm(topk, generator=cpu)[:2]
        row = torch.full((topk,), -1, dtype=torch.int32)
        row[keep] = indices[2][indices[2] >= 0][:2] if (indices[2] >= 0).sum() >= 2 else indices[0][:2]
        indices[2] = row  # only two valid indices
    used = torch.unique(torch.cat(used)).to(device)
    lat = torch.randn((used.numel(), D_LATENT), device=device, generator=gen)
    lat = lat * torch.exp(0.3 * torch.randn((used.numel(), 4, 1), device=device, generator=gen)).repeat(1, 1, 128).reshape(-1, 512)
    rope = torch.randn((used.numel(), D_ROPE), device=device, generator=gen).to(torch.bfloat16)
    rows[used] = encode_records(lat, rope)
    if layout == "plain":
        cache = rows.view(num_blocks, block_size, 1, RECORD)
    elif layout == "transposed":  # FastDeploy's [N, 1, B, 656] seen as [N, B, 1, 656] through a transpose
        cache = rows.view(num_blocks, 1, block_size, RECORD).transpose(1, 2)
    elif layout == "rows":
        cache = rows
    elif layout == "padded":  # blocks further apart than block_size records: the kernel's div/mod path
        pad = 3
        big = garbage_cache(num_blocks * (block_size + pad), 1, gen, device).view(num_blocks, block_size + pad, RECORD)
        big[:, :block_size] = rows.view(num_blocks, block_size, RECORD)
        cache = big[:, :block_size].unsqueeze(2)
        used = used // block_size * (block_size + pad) + used % block_size  # rows of the base buffer
    else:
        raise ValueError(layout)
    q = torch.randn((tokens, 1, heads, D_QK), device=device, generator=gen).to(torch.bfloat16)
    return q, cache, indices.reshape(tokens, 1, topk).to(device), used


def make_prefill(tokens, heads, topk, *, rows=None, seed=0, device="cuda", causal=True):
    """q [T,H,576], kv [S,1,576] bf16, indices [T,1,topk] int32 (causal-like: token t sees rows <= t
    of a random order, so early tokens have many -1)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    rows = rows or tokens
    q = torch.randn((tokens, heads, D_QK), device=device, generator=gen).to(torch.bfloat16)
    kv = torch.randn((rows, 1, D_QK), device=device, generator=gen).to(torch.bfloat16)
    # random scores, keep the top `topk` among the visible rows, -1 for the rest
    score = torch.rand((tokens, rows), device=device, generator=gen)
    if causal:
        vis = torch.arange(rows, device=device)[None, :] <= (torch.arange(tokens, device=device)[:, None] * rows // tokens)
        score = torch.where(vis, score, torch.full_like(score, -1.0))
    k = min(topk, rows)
    top = torch.topk(score, k, dim=1)
    idx = torch.where(top.values >= 0, top.indices, torch.full_like(top.indices, -1)).to(torch.int32)
    if k < topk:
        idx = torch.cat([idx, torch.full((tokens, topk - k), -1, dtype=torch.int32, device=device)], 1)
    perm = torch.argsort(torch.rand((tokens, topk), device=device, generator=gen), dim=1)
    idx = torch.gather(idx, 1, perm)  # -1 scattered, not only at the tail
    if tokens >= 2:
        idx[0] = -1  # an all-masked row
    return q, kv, idx.reshape(tokens, 1, topk).contiguous()


# ----------------------------------------------------------------------------------------------
# float64 references
# ----------------------------------------------------------------------------------------------


def _attend64(q64, key, val, valid, scale):
    """float64 attention: (out, lse, cond) with cond the row's lse condition scale (LSE_BOUND)."""
    logits = torch.matmul(q64, key.transpose(-1, -2)) * scale  # [T, H, K]
    logits = logits.masked_fill(~valid[:, None, :], float("-inf"))
    lse = torch.logsumexp(logits, dim=-1)  # -inf for all-masked rows
    p = torch.exp(logits - torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))[..., None])
    cond = (torch.matmul(q64.abs(), key.abs().transpose(-1, -2)) * scale).masked_fill(~valid[:, None, :], 0.0)
    return torch.matmul(p, val), lse, cond.amax(dim=-1)


def ref_decode(q, cache, indices, scale):
    t, _, h, _ = q.shape
    rows = cache.reshape(-1, RECORD) if cache.dim() == 2 else cache[:, :, 0, :].reshape(-1, RECORD)
    idx = indices.reshape(t, -1).long()
    valid = idx >= 0
    g = rows[idx.clamp_min(0)]  # [T, K, 656]
    codes = g[..., :512].contiguous().view(torch.float8_e4m3fn).to(torch.float64)
    sc = g[..., 512:528].contiguous().view(torch.float32).to(torch.float64)
    rope = g[..., 528:].contiguous().view(torch.bfloat16).to(torch.float64)
    lat = (codes.reshape(t, -1, 4, 128) * sc[..., None]).reshape(t, -1, 512)
    lat = torch.where(valid[..., None], lat, torch.zeros_like(lat))
    rope = torch.where(valid[..., None], rope, torch.zeros_like(rope))
    key = torch.cat([lat, rope], -1)
    out, lse, cond = _attend64(q.reshape(t, h, D_QK).to(torch.float64), key, lat, valid, scale)
    return out.reshape(t, 1, h, 512), lse.reshape(t, 1, h), cond.reshape(t, 1, h)


def ref_prefill(q, kv, indices, scale, tokens=None):
    """float64 reference; `tokens` (a LongTensor of token ids) restricts it to a subset."""
    t = q.shape[0]
    idx = indices.reshape(t, -1).long()
    if tokens is not None:
        q, idx = q[tokens], idx[tokens]
    valid = idx >= 0
    key = kv.reshape(kv.shape[0], -1)[idx.clamp_min(0)].to(torch.float64)
    key = torch.where(valid[..., None], key, torch.zeros_like(key))
    return _attend64(q.to(torch.float64), key, key[..., :512], valid, scale)


def compare(out, lse, ref_out, ref_lse, cond):
    o = out.to(torch.float64)
    finite = bool(torch.isfinite(o).all())
    rel = float(torch.linalg.vector_norm(o - ref_out) / torch.linalg.vector_norm(ref_out).clamp_min(1e-300))
    lse = lse.to(torch.float64)
    fin = torch.isfinite(ref_lse)
    lse_ok_inf = bool(torch.equal(torch.isneginf(lse), torch.isneginf(ref_lse))) and not bool(torch.isnan(lse).any())
    lse_err = float((lse[fin] - ref_lse[fin]).abs().max()) if bool(fin.any()) else 0.0
    lse_cond = float(((lse[fin] - ref_lse[fin]).abs() / cond[fin].clamp_min(1e-30)).max()) if bool(fin.any()) else 0.0
    zero_rows_ok = bool((o[~fin.reshape(o.shape[:-1])] == 0).all()) if bool((~fin).any()) else True
    ok = finite and rel < REL_BOUND and lse_ok_inf and lse_cond < LSE_BOUND and zero_rows_ok
    return {"rel_err": rel, "lse_max_abs_err": lse_err, "lse_err_over_cond": lse_cond, "finite": finite, "lse_inf_match": lse_ok_inf,
            "masked_rows_zero": zero_rows_ok, "ok": ok}


# ----------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------


def poisoned_call(fn, *args, **kw):
    """Run fn into outputs that were NaN before (the allocator hands the poisoned block back)."""
    out, lse = fn(*args, **kw)
    out.fill_(float("nan"))
    lse.fill_(float("nan"))
    del out, lse
    return fn(*args, **kw)


def graph_identity(fn, args, kw, reps=3):
    """Eager twice, then a CUDA graph replayed: every output bit-identical."""
    o1, l1 = fn(*args, **kw)
    o2, l2 = fn(*args, **kw)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn(*args, **kw)  # warm-up on the side stream
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        og, lg = fn(*args, **kw)
    same = torch.equal(o1.view(torch.int16), o2.view(torch.int16)) and torch.equal(l1.view(torch.int32), l2.view(torch.int32))
    for _ in range(reps):
        og.fill_(float("nan"))
        lg.fill_(float("nan"))
        g.replay()
        torch.cuda.synchronize()
        same = same and torch.equal(o1.view(torch.int16), og.view(torch.int16)) and torch.equal(l1.view(torch.int32), lg.view(torch.int32))
    return bool(same)


def check_decode(K, tokens, heads, topk, block_size, *, layout="plain", seed=0, config=None, num_splits=None,
                 graph=True, garbage_swap=True):
    scale = 0.1352
    q, cache, idx, used = make_decode(tokens, heads, topk, block_size, seed=seed, layout=layout)
    kw = {"config": config, "num_splits": num_splits}
    out, lse = poisoned_call(K.sparse_mla_decode, q, cache, idx, scale, **kw)
    torch.cuda.synchronize()
    res = compare(out, lse, *ref_decode(q, cache, idx, scale))
    if garbage_swap:  # new garbage in every unused slot: the result must not move by a bit
        base = cache._base if cache._base is not None else cache
        gen = torch.Generator(device=q.device)
        gen.manual_seed(seed + 99)
        saved = base.reshape(-1, RECORD)[used].clone()
        base.reshape(-1, RECORD).copy_(garbage_cache(base.numel() // RECORD, 1, gen, q.device))
        base.reshape(-1, RECORD)[used] = saved
        out2, lse2 = K.sparse_mla_decode(q, cache, idx, scale, **kw)
        res["garbage_invariant"] = bool(torch.equal(out.view(torch.int16), out2.view(torch.int16))
                                        and torch.equal(lse.view(torch.int32), lse2.view(torch.int32)))
        res["ok"] = res["ok"] and res["garbage_invariant"]
    if graph:
        res["graph_bitwise"] = graph_identity(K.sparse_mla_decode, (q, cache, idx, scale), kw)
        res["ok"] = res["ok"] and res["graph_bitwise"]
    return res


def check_prefill(K, tokens, heads, topk, *, rows=None, seed=0, config=None, num_splits=None, graph=True,
                  sample=None):
    scale = 0.1352
    q, kv, idx = make_prefill(tokens, heads, topk, rows=rows, seed=seed)
    kw = {"config": config, "num_splits": num_splits}
    out, lse = poisoned_call(K.sparse_mla_prefill, q, kv, idx, scale, **kw)
    torch.cuda.synchronize()
    res = {"finite_all": bool(torch.isfinite(out).all())}
    sel = None
    if sample and sample < tokens:
        g = torch.Generator()
        g.manual_seed(seed)
        sel = torch.cat([torch.tensor([0]), torch.randperm(tokens, generator=g)[: sample - 1]]).to(q.device)
    o, l_ = (out, lse) if sel is None else (out[sel], lse[sel])
    res.update(compare(o, l_, *ref_prefill(q, kv, idx, scale, tokens=sel)))
    res["ok"] = res["ok"] and res["finite_all"]
    res["checked_tokens"] = int(tokens if sel is None else sel.numel())
    if graph:
        res["graph_bitwise"] = graph_identity(K.sparse_mla_prefill, (q, kv, idx, scale), kw)
        res["ok"] = res["ok"] and res["graph_bitwise"]
    return res


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------


def torch_decode_baseline(q, kv_cache, indices, scale):
    """The suite's plain-torch decode (float32 gather, dequantize, two matmuls), for context."""
    t, _, h, d = q.shape
    rows = kv_cache.reshape(-1, RECORD) if kv_cache.dim() == 2 else kv_cache[:, :, 0, :].reshape(-1, RECORD)
    idx = indices.reshape(t, -1)
    valid = idx >= 0
    g = rows.index_select(0, idx.clamp_min(0).reshape(-1).long())
    nope = g[:, :512].contiguous().view(torch.float8_e4m3fn).float()
    sc = g[:, 512:528].contiguous().view(torch.float32)
    rope = g[:, 528:].contiguous().view(torch.bfloat16).float()
    lat = (nope.reshape(-1, 4, 128) * sc.unsqueeze(-1)).reshape(t, -1, 512)
    key = torch.cat([lat, rope.reshape(t, -1, 64)], dim=-1)
    logits = torch.matmul(q.reshape(t, h, d).float(), key.transpose(-1, -2)) * scale
    logits = logits.masked_fill(~valid.unsqueeze(1), float("-inf"))
    m = logits.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    p = torch.exp(logits - m)
    den = p.sum(dim=-1, keepdim=True)
    p = p / torch.where(den > 0, den, torch.ones_like(den))
    return torch.matmul(p, lat).to(torch.bfloat16), den


def torch_prefill_baseline(q, kv, indices, scale):
    t = q.shape[0]
    idx = indices.reshape(t, -1)
    valid = idx >= 0
    key = kv.reshape(kv.shape[0], -1).index_select(0, idx.clamp_min(0).reshape(-1).long()).float().reshape(t, idx.shape[1], -1)
    logits = torch.matmul(q.float(), key.transpose(-1, -2)) * scale
    logits = logits.masked_fill(~valid.unsqueeze(1), float("-inf"))
    p = torch.softmax(logits, dim=-1)
    return torch.matmul(p, key[:, :, :512]).to(torch.bfloat16), None


def time_fn(fn, sets, reps_graph=20):
    """do_bench median (ms; it clears L2 between calls) over set 0, and CUDA-graph replay of
    reps_graph calls cycling over the input sets (ms per call)."""
    import triton.testing  # noqa: PLC0415

    med = triton.testing.do_bench(lambda: fn(*sets[0]), warmup=25, rep=150, return_mode="median")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for a in sets:
            fn(*a)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(reps_graph):
            fn(*sets[i % len(sets)])
    g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(7):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        g.replay()
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1) / reps_graph)
    times.sort()
    del g
    return med, times[len(times) // 2]


def ceilings():
    """Measured copy bandwidth (bytes read + written) and bf16 matmul rate on random data."""
    import triton.testing  # noqa: PLC0415

    a = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    ms = triton.testing.do_bench(lambda: b.copy_(a), warmup=25, rep=100, return_mode="median")
    bw = 2 * a.numel() / ms / 1e9  # TB/s
    a = b = None  # free before the matmul
    n = 8192
    x = torch.randn((n, n), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((n, n), device="cuda", dtype=torch.bfloat16)
    ms = triton.testing.do_bench(lambda: x @ y, warmup=25, rep=100, return_mode="median")
    return {"copy_TBps": bw, "bf16_mm_TFLOPs": 2 * n**3 / ms / 1e9}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--variants", default="all")
    ap.add_argument("--baselines", action="store_true", help="also time the plain-torch fp32 path")
    ap.add_argument("--profile", choices=["decode", "prefill"], help="only run 3 calls of the default kernel (for ncu)")
    args = ap.parse_args()
    if args.profile:
        K = load_kernels()
        if args.profile == "decode":
            a = make_decode(64, 128, 2048, 64, ctx=[4096] * 64, slack=64, seed=7, special_rows=False)[:3]
            fn = K.sparse_mla_decode
        else:
            a = make_prefill(2048, 128, 2048, rows=8192, seed=7, causal=False)
            fn = K.sparse_mla_prefill
        for _ in range(3):
            fn(*a, 0.1352)
        torch.cuda.synchronize()
        return
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    K = load_kernels()
    import triton  # noqa: PLC0415

    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
              "sm_count": torch.cuda.get_device_properties(0).multi_processor_count, "rel_bound": REL_BOUND,
              "lse_bound": LSE_BOUND, "checks": [], "timings": []}

    def dump():
        (out_dir / "kernel_check.json").write_text(json.dumps(report, indent=1))

    t0 = time.time()
    try:
        report["ceilings"] = ceilings()
    except Exception as e:  # noqa: BLE001
        report["ceilings"] = {"error": repr(e)}
    print("ceilings", report["ceilings"], flush=True)

    # ---- correctness
    dec_cases = [
        # tokens, heads, topk, block_size, layout, num_splits
        (1, 128, 2048, 64, "plain", None),
        (3, 20, 200, 16, "transposed", None),
        (17, 16, 64, 32, "plain", None),
        (17, 64, 200, 64, "rows", 1),
        (5, 128, 256, 16, "padded", None),
        (64, 128, 2048, 64, "transposed", None),
        (3, 128, 2048, 32, "plain", 5),
        (64, 20, 200, 16, "plain", 3),
    ]
    if args.quick:
        dec_cases = dec_cases[:3]
    for i, (t, h, k, bs, layout, ns) in enumerate(dec_cases):
        name = f"decode T{t} H{h} topk{k} bs{bs} {layout} splits={ns}"
        try:
            r = check_decode(K, t, h, k, bs, layout=layout, seed=10 + i, num_splits=ns)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            r = {"ok": False, "error": repr(e)}
        r["case"] = name
        report["checks"].append(r)
        print(("PASS " if r.get("ok") else "FAIL ") + name, {k_: v for k_, v in r.items() if k_ != "case"}, flush=True)
        dump()
    pre_cases = [
        (1, 128, 64, None, None),
        (17, 20, 200, 40, None),
        (64, 64, 2048, 3000, None),
        (257, 128, 2048, None, None),
        (2048, 128, 2048, None, 64),
    ]
    if args.quick:
        pre_cases = pre_cases[:3]
    for i, (t, h, k, rows, sample) in enumerate(pre_cases):
        name = f"prefill T{t} H{h} topk{k} rows{rows or t}" + (f" (ref on {sample} tokens)" if sample else "")
        try:
            r = check_prefill(K, t, h, k, rows=rows, seed=40 + i, sample=sample)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            r = {"ok": False, "error": repr(e)}
        r["case"] = name
        report["checks"].append(r)
        print(("PASS " if r.get("ok") else "FAIL ") + name, {k_: v for k_, v in r.items() if k_ != "case"}, flush=True)
        dump()
    torch.cuda.empty_cache()
    print(f"checks done in {time.time() - t0:.1f}s", flush=True)

    # ---- timing
    scale = 0.1352
    dec_variants = {  # runs 1-2 measured more (docs/kernels.md)
        "deq_n64_s2": {"BLOCK_N": 64, "num_stages": 2, "FOLD_SCALE": False},
        "deq_n64_s3": {"BLOCK_N": 64, "num_stages": 3, "FOLD_SCALE": False},
        "fold_n32_s3": {"BLOCK_N": 32, "num_stages": 3, "FOLD_SCALE": True},
    }
    small_t_variants = ("deq_n64_s2",)
    pre_variants = {
        "n128_s1": {"BLOCK_N": 128, "num_stages": 1},
        "n64_s2": {"BLOCK_N": 64, "num_stages": 2},
    }
    if args.variants != "all":
        keep = set(args.variants.split(","))
        dec_variants = {k: v for k, v in dec_variants.items() if k in keep}
        pre_variants = {k: v for k, v in pre_variants.items() if k in keep}

    def timed(row, fn, sets, check, reps_graph):
        try:
            tc = time.time()
            o, l_ = fn(*sets[0])
            torch.cuda.synchronize()
            row["first_call_s"] = time.time() - tc
            if check is not None:
                c = check(o, l_)
                row.update(rel_err=c["rel_err"], lse_err_over_cond=c["lse_err_over_cond"], check_ok=c["ok"])
            med, gms = time_fn(fn, sets, reps_graph=reps_graph)
            row.update({"do_bench_median_ms": med, "graph_ms": gms, "TFLOPs_graph": row["flops"] / gms / 1e9})
            if "gather_bytes" in row:
                row["gather_TBps_graph"] = row["gather_bytes"] / gms / 1e9
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            row["error"] = repr(e)[:400]
        report["timings"].append(row)
        print("TIME", row, flush=True)
        dump()

    for (t, h, k, bs) in [(64, 128, 2048, 64), (1, 128, 2048, 64), (17, 128, 2048, 64)]:
        sets = []
        for s in range(2):  # two input sets: 2 x 86 MB gathered at T=64, past the 60 MB L2
            q, cache, idx, _ = make_decode(t, h, k, bs, ctx=[4096] * t, slack=64, seed=100 + s, special_rows=False)
            sets.append((q, cache, idx, scale))
        ref = ref_decode(*sets[0][:3], scale)
        check = lambda o, l_: compare(o, l_, *ref)  # noqa: E731
        base = {"kind": "decode", "shape": f"T{t} H{h} topk{k}", "flops": 2 * t * h * k * (D_QK + D_LATENT),
                "gather_bytes": t * k * RECORD}
        for vname, cfg in dec_variants.items():
            if t < 64 and vname not in small_t_variants:
                continue
            fn = lambda *a, _c=cfg: K.sparse_mla_decode(*a, config=_c)  # noqa: E731
            timed(dict(base, variant=vname), fn, sets, check, 20)
        if t == 64 and args.baselines:
            timed(dict(base, variant="torch_fp32_ref"), torch_decode_baseline, sets, None, 5)
        del sets, ref
        torch.cuda.empty_cache()

    t, h, k = 2048, 128, 2048
    sets = []
    for s in range(2):
        q, kv, idx = make_prefill(t, h, k, rows=8192, seed=200 + s, causal=False)
        sets.append((q, kv, idx, scale))
    sel = torch.arange(0, t, t // 32, device="cuda")
    ref = ref_prefill(*sets[0][:3], scale, tokens=sel)
    check = lambda o, l_: compare(o[sel], l_[sel], *ref)  # noqa: E731
    base = {"kind": "prefill", "shape": f"T{t} H{h} topk{k}", "flops": 2 * t * h * k * (D_QK + D_LATENT)}
    for vname, cfg in pre_variants.items():
        fn = lambda *a, _c=cfg: K.sparse_mla_prefill(*a, config=_c)  # noqa: E731
        timed(dict(base, variant=vname), fn, sets, check, 4)
    if args.baselines:
        timed(dict(base, variant="torch_fp32_ref"), torch_prefill_baseline, sets[:1], None, 1)
    report["wall_s"] = time.time() - t0
    dump()

    print("\n=== correctness (bound rel < %.0e) ===" % REL_BOUND)
    for r in report["checks"]:
        print(f"{'PASS' if r.get('ok') else 'FAIL'}  rel={r.get('rel_err', float('nan')):.2e}  "
              f"lse={r.get('lse_max_abs_err', float('nan')):.1e} (/cond {r.get('lse_err_over_cond', float('nan')):.1e})  "
              f"graph={r.get('graph_bitwise')}  "
              f"garb={r.get('garbage_invariant', '-')}  {r['case']}  {r.get('error', '')}")
    print("=== timings (ms) ===")
    for r in report["timings"]:
        if "error" in r:
            print(f"{r['kind']:7s} {r['shape']:22s} {r['variant']:12s} ERROR {r['error'][:120]}")
        else:
            print(f"{r['kind']:7s} {r['shape']:22s} {r['variant']:12s} bench {r['do_bench_median_ms']:.4f}  "
                  f"graph {r['graph_ms']:.4f}  {r['TFLOPs_graph']:.0f} TF/s  "
                  f"rel {r.get('rel_err', float('nan')):.1e}  lse/cond {r.get('lse_err_over_cond', float('nan')):.1e}  "
                  f"ok {r.get('check_ok', '-')}  first {r['first_call_s']:.1f}s")
    print(f"wall {report['wall_s']:.0f}s; ceilings {report['ceilings']}")


if __name__ == "__main__":
    main()
