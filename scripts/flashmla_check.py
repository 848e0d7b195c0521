"""FlashMLA (FastDeploy's attention kernels) on one GPU, against the suite's inputs and kernels.

    python3 scripts/flashmla_check.py STAGE --work DIR [--resume] [--flashmla DIR]

STAGE:
  selftest  FlashMLA's own correctness at the V3.2 shape (d_qk 576; h_q 64 and 128; s_q 1 and 2),
            with its quantizer (tests/quant.py), reference (tests/ref.py) and tolerances; decode
            with its test generator and with a FastDeploy-like one (no sink, -1 padding), prefill.
  bisect    the suite's b64 decode inputs (8192 blocks), changed one thing at a time; for each
            kernel: non-finite tokens, and the difference to a float64 reference on finite tokens.
  timing    FlashMLA vs the suite's Triton kernels, CUDA-graph medians: decode b64 at 8192 blocks,
            b32/b64/b128 at 65536; prefill p2048 and p4096 (h128, top-k 2048, context 4096).
  summary   DIR/flashmla.json (every record) and DIR/summary.txt (the tables).
Each stage appends its records to DIR/<stage>.jsonl as it goes. Exit 3: the CUDA context broke
mid-stage; run the stage again with --resume (scripts/gpu_flashmla.sh does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flashmla_common import (  # noqa: E402
    BLOCK, CONTEXT, D_LATENT, D_QK, DEV, HEADS, TOPK, CudaBroken, Journal, attention_flop, compare, graph_ms, log, sync,
    records_of, ref64_decode, ref64_prefill, suite_decode, suite_prefill,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FM = ROOT / "third_party" / "build" / "FlashMLA"
STAGES = ("selftest", "bisect", "timing")


def import_flash_mla(fm_dir: Path):
    sys.path.insert(0, str(fm_dir))
    import flash_mla  # noqa: PLC0415

    log(f"flash_mla from {Path(flash_mla.__file__).parent}")
    return flash_mla


def fm_decode(fm, q, kv, idx, scale, meta=None):
    """FastDeploy's call: a fresh FlashMLASchedMeta per call unless one is given."""
    meta = fm.get_mla_metadata()[0] if meta is None else meta
    out, _lse = fm.flash_mla_with_kvcache(q, kv, None, None, D_LATENT, meta, None, scale, False, True, idx)
    return out, meta


# ----------------------------------------------------------------------------------------------
# selftest
# ----------------------------------------------------------------------------------------------


def stage_selftest(j: Journal, fm, fm_dir: Path) -> None:
    import torch  # noqa: PLC0415

    sys.path.insert(0, str(fm_dir / "tests"))
    import kernelkit as kk  # noqa: PLC0415
    import lib  # noqa: PLC0415
    import quant  # noqa: PLC0415
    import ref  # noqa: PLC0415

    torch.set_default_dtype(torch.bfloat16)  # as FlashMLA's own tests run
    torch.set_default_device(DEV)
    torch.set_float32_matmul_precision("high")

    def check_decode(p, t) -> dict:
        with torch.inference_mode():
            meta, _ = fm.get_mla_metadata()
            out, lse = lib.run_flash_mla_decode(p, t, meta, None)
            sync()
            out_ref, lse_ref = ref.ref_sparse_attn_decode(p, t)
            ok_out = kk.check_is_allclose("out", out, out_ref, abs_tol=1e-3, rel_tol=2.01 / 128, cos_diff_tol=5e-6)
            ok_lse = kk.check_is_allclose("lse", lse, lse_ref, abs_tol=1e-6, rel_tol=8.01 / 65536)
        return {"passed": bool(ok_out and ok_lse), "out_ok": bool(ok_out), "lse_ok": bool(ok_lse),
                **compare(out, out_ref)}

    def fastdeploy_like(b, h_q, s_q, seed):
        """Every request's context is CONTEXT tokens in random blocks; top-k from it, 10% masked
        (-1) as the indexer pads; no attention sink; FlashMLA's quantizer and reference."""
        kk.set_random_seed(seed)
        p = lib.TestParam(s_q, CONTEXT, TOPK, h_q, 1, D_QK, D_LATENT, seed, True, False, 0, False, False,
                          decode=lib.ExtraTestParamForDecode(b, False, False, block_size=BLOCK))
        nb = -(-CONTEXT // BLOCK)
        block_table = torch.randperm(b * nb, dtype=torch.int32).view(b, nb)
        blocked_k = (torch.randn(b * nb, BLOCK, 1, D_QK) / 10).clamp(-1, 1)
        abs_idx = torch.rand(b * s_q, CONTEXT, dtype=torch.float32).topk(TOPK, dim=-1).indices.to(torch.int32)
        abs_idx = abs_idx.view(b, s_q, TOPK)
        abs_idx[torch.rand(b, s_q, TOPK, dtype=torch.float32) < 0.1] = -1
        idx = quant.abs_indices2indices_in_kvcache(abs_idx, block_table, BLOCK)
        kv_q = quant.quantize_k_cache(blocked_k, quant.FP8KVCacheLayout.V32_FP8Sparse)
        kv_dq = quant.dequantize_k_cache(kv_q, quant.FP8KVCacheLayout.V32_FP8Sparse)
        seqlens = torch.full((b,), CONTEXT, dtype=torch.int32)
        scope = lib.KVScope(p, seqlens, block_table, kv_dq, abs_idx, idx, None, kv_q)
        q = torch.randn(b, s_q, h_q, D_QK).clamp(-1, 1)
        return p, lib.TestcaseForDecode(p, q, None, D_QK ** -0.55, scope, None)

    for h_q in (64, 128):
        for s_q in (1, 2):
            j.run(f"decode.fastdeploy_like.h{h_q}.sq{s_q}",
                  lambda h_q=h_q, s_q=s_q: check_decode(*fastdeploy_like(64, h_q, s_q, 100 + h_q + s_q)))
    for s_q in (1, 2):
        def with_lib_generator(s_q=s_q):
            p = lib.RawTestParamForDecode(64, 128, s_q, 1, CONTEXT, True, TOPK, d_qk=D_QK, num_runs=0,
                                          seed=7 + s_q).to_test_param()
            return check_decode(p, lib.generate_testcase_for_decode(p))
        j.run(f"decode.flashmla_generator.h128.sq{s_q}.sink", with_lib_generator)

    for s_q, s_kv, topk, h_q in ((62, 1840, 256, 128), (213, 1521, 512, 64), (1024, 4096, 2048, 128)):
        def prefill(s_q=s_q, s_kv=s_kv, topk=topk, h_q=h_q):
            p = lib.TestParam(s_q, s_kv, topk, h_q=h_q, num_runs=0, d_qk=D_QK, seed=11 + s_q)
            with torch.inference_mode():
                t = lib.generate_testcase(p)
                out, max_logits, lse = lib.run_flash_mla_sparse_fwd(p, t, False)
                sync()
                _o, out32, ref_ml, ref_lse = ref.ref_sparse_attn_fwd(p, t)
                ref_lse[ref_lse == float("-inf")] = float("+inf")
                ok = [kk.check_is_allclose("out", out.float(), out32, abs_tol=8e-4, rel_tol=3.01 / 128, cos_diff_tol=7e-6),
                      kk.check_is_allclose("max_logits", max_logits, ref_ml, abs_tol=1e-6, rel_tol=2.01 / 65536),
                      kk.check_is_allclose("lse", lse, ref_lse, abs_tol=1e-6, rel_tol=2.01 / 65536)]
            return {"passed": all(ok), "out_ok": bool(ok[0]), "max_logits_ok": bool(ok[1]), "lse_ok": bool(ok[2]),
                    **compare(out, out32)}
        j.run(f"prefill.h{h_q}.sq{s_q}.skv{s_kv}.topk{topk}", prefill)


# ----------------------------------------------------------------------------------------------
# bisect
# ----------------------------------------------------------------------------------------------


def stage_bisect(j: Journal, fm, fm_dir: Path, batch: int = 64, num_blocks: int = 8192) -> None:
    import torch  # noqa: PLC0415

    from dsabench.bench.backends import torch as tb  # noqa: PLC0415
    from dsabench.bench.kernels import flashmla as binding  # noqa: PLC0415
    from dsabench.bench.kernels import triton_mla  # noqa: PLC0415
    from dsabench.workload.variants import BASELINE, PATCHED  # noqa: PLC0415

    sys.path.insert(0, str(fm_dir / "tests"))
    import quant  # noqa: PLC0415

    log(f"building the suite's decode inputs: b{batch}, {num_blocks} blocks, context 4096, h128, top-k 2048")
    d = suite_decode(batch, num_blocks, keep_unwritten=True)
    scale = d.scale
    ref_base = ref64_decode(d.q, d.kv, d.idx, scale)
    hit_rows = d.idx.clamp_min(0).long()

    def kernels_on(q, kv, idx, ref=None, torch_ref=False) -> dict:
        ref = ref64_decode(q, kv, idx, scale) if ref is None else ref
        res = {"flashmla": compare(fm_decode(fm, q, kv, idx, scale)[0], ref)}
        if q.shape[1] == 1:
            res["triton"] = compare(triton_mla.sparse_mla_decode(q, kv, idx, scale)[0], ref)
            if torch_ref:
                res["torch_reference"] = compare(tb.sparse_decode(q, kv, idx, scale), ref)
        return res

    def cache_copy():
        return d.st.latent_cache.clone()

    def base():
        own = (d.idx[:, 0, :] == d.slots[:, None].to(torch.int32)).any(dim=1)
        return {**kernels_on(d.q, d.kv, d.idx, ref_base, torch_ref=True),
                "tokens_whose_indices_name_their_own_new_slot": int(own.sum()),
                "indices_on_rows_never_written": int(((d.idx >= 0) & ~d.written[hit_rows]).sum()),
                "masked_indices": int((d.idx < 0).sum())}
    j.run("base: the cache forward_mixed hands the decode kernel (after write_cache)", base)

    def via_binding():
        out = binding.sparse_decode(fm, d.q, d.kv, d.idx, scale)
        direct = fm_decode(fm, d.q, d.kv, d.idx, scale)[0]
        return {"bitwise_equal_to_direct_call": bool(torch.equal(out, direct)), "flashmla": compare(out, ref_base)}
    j.run("binding: suite/dsabench/bench/kernels/flashmla.py's sparse_decode", via_binding)

    def meta_reuse():
        o1, meta = fm_decode(fm, d.q, d.kv, d.idx, scale)
        o2, _ = fm_decode(fm, d.q, d.kv, d.idx, scale, meta=meta)
        o3, _ = fm_decode(fm, d.q, d.kv, d.idx, scale)
        return {"reused_meta_bitwise_equal": bool(torch.equal(o1, o2)), "fresh_twice_bitwise_equal": bool(torch.equal(o1, o3)),
                "flashmla": compare(o2, ref_base)}
    j.run("sched meta: fresh per call vs reused; determinism", meta_reuse)

    def unwritten():
        kv_u = tb.decode_layout(d.unwritten, PATCHED)
        res = kernels_on(d.q, kv_u, d.idx, torch_ref=True)
        hits = ((d.idx[:, 0, :] >= 0) & ~d.context_written[hit_rows[:, 0, :]]).any(dim=1)
        bad = set(res["flashmla"]["nonfinite_token_ids"])
        res["tokens_with_an_index_on_a_record_not_yet_written"] = int(hits.sum())
        res["flashmla_nonfinite_tokens_are_exactly_those"] = bad == set(hits.nonzero().flatten().tolist())
        return res
    j.run("unwritten: the cache before write_cache (new tokens' own slots still garbage)", unwritten)

    def unwritten_masked():
        kv_u = tb.decode_layout(d.unwritten, PATCHED)
        idx = torch.where(d.context_written[hit_rows], d.idx, torch.full_like(d.idx, -1))
        return {**kernels_on(d.q, kv_u, idx), "indices_masked": int((idx != d.idx).sum())}
    j.run("unwritten + indices restricted to written records", unwritten_masked)

    def zero_unused():
        cache = cache_copy()
        records_of(cache)[~d.written] = 0
        return kernels_on(d.q, tb.decode_layout(cache, PATCHED), d.idx, ref_base)
    j.run("unused rows zeroed (no garbage anywhere)", zero_unused)

    def s_q2():
        q2 = d.q.expand(-1, 2, -1, -1).contiguous()
        idx2 = d.idx.expand(-1, 2, -1).contiguous()
        out = fm_decode(fm, q2, d.kv, idx2, scale)[0]
        one = fm_decode(fm, d.q, d.kv, d.idx, scale)[0]
        return {"flashmla": compare(out, ref_base.expand(-1, 2, -1, -1)),
                "both_query_rows_bitwise_equal": bool(torch.equal(out[:, 0], out[:, 1])),
                "max_abs_diff_to_s_q_1_call": float((out[:, :1].float() - one.float()).abs().nan_to_num(float("inf")).max())}
    j.run("s_q 2: the query duplicated (FlashMLA's tests use 2 rows per request)", s_q2)

    j.run("kv as a float8_e4m3fn view instead of uint8",
          lambda: {"flashmla": compare(fm_decode(fm, d.q, d.kv.view(torch.float8_e4m3fn), d.idx, scale)[0], ref_base)})

    def pow2_scales():
        cache = cache_copy()
        rows = records_of(cache)
        sel = d.written.nonzero().flatten()
        sc = rows[sel, D_LATENT:D_LATENT + 16].contiguous().view(torch.float32)
        rows[sel, D_LATENT:D_LATENT + 16] = torch.exp2(torch.ceil(torch.log2(sc))).contiguous().view(torch.uint8)
        return kernels_on(d.q, tb.decode_layout(cache, PATCHED), d.idx)
    j.run("scales rounded up to powers of two (codes kept)", pow2_scales)

    def requant():
        cache = cache_copy()
        rows = records_of(cache)
        sel = d.written.nonzero().flatten()
        rec = rows[sel]
        codes = rec[:, :D_LATENT].contiguous().view(torch.float8_e4m3fn).float()
        sc = rec[:, D_LATENT:D_LATENT + 16].contiguous().view(torch.float32)
        lat = (codes.view(-1, 4, 128) * sc.unsqueeze(-1)).view(-1, D_LATENT).to(torch.bfloat16)
        rope = rec[:, D_LATENT + 16:].contiguous().view(torch.bfloat16)
        x = torch.cat([lat, rope], dim=-1).view(-1, 1, 1, D_QK)
        q8 = quant.quantize_k_cache(x, quant.FP8KVCacheLayout.V32_FP8Sparse)
        rows[sel] = q8.reshape(-1, 656).view(torch.uint8)
        return kernels_on(d.q, tb.decode_layout(cache, PATCHED), d.idx)
    j.run("records requantized by FlashMLA's quantizer (tests/quant.py) from the same values", requant)

    def padded():
        idx = d.idx.clone()
        idx[:, :, 3 * TOPK // 4:] = -1  # a request shorter than top-k: the indexer pads with -1
        idx[0] = -1  # no valid index at all: out 0
        return {**kernels_on(d.q, d.kv, idx), "masked_indices": int((idx < 0).sum())}
    j.run("-1 padding: the last quarter of each token's indices, and all of token 0's", padded)

    j.run("h_q 64: the first 64 heads", lambda: kernels_on(d.q[:, :, :64].contiguous(), d.kv, d.idx, ref_base[:, :, :64]))
    j.run("q scaled by 1/8 (FlashMLA's tests clamp q to [-1, 1])",
          lambda: kernels_on((d.q.float() * 0.125).to(torch.bfloat16), d.kv, d.idx))
    j.run("baseline layout: transpose(1, 2).contiguous() instead of the view",
          lambda: kernels_on(d.q, tb.decode_layout(d.st.latent_cache, BASELINE), d.idx, ref_base))

    def other_seed():
        e = suite_decode(batch, num_blocks, seed=1)
        return kernels_on(e.q, e.kv, e.idx, torch_ref=True)
    j.run("other inputs: seed 1", other_seed)


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------


def stage_timing(j: Journal, fm) -> None:
    import torch  # noqa: PLC0415

    from dsabench.bench.kernels import triton_mla  # noqa: PLC0415

    def decode_case(batch, num_blocks):
        d = suite_decode(batch, num_blocks)
        valid = int((d.idx >= 0).sum())
        unique = int(torch.unique(d.idx[d.idx >= 0]).numel())
        fns = {"triton": lambda: triton_mla.sparse_mla_decode(d.q, d.kv, d.idx, d.scale)}
        res = {"batch": batch, "num_blocks": num_blocks, "valid_indices": valid, "flop": attention_flop(valid),
               "bytes_min": unique * 656 + d.q.numel() * 2 + batch * HEADS * D_LATENT * 2}
        tr = fns["triton"]()[0]
        few = ref64_decode(d.q[:8], d.kv, d.idx[:8], d.scale)
        res["triton_vs_ref64_first8"] = compare(tr[:8], few)
        if fm is not None:
            out, meta = fm_decode(fm, d.q, d.kv, d.idx, d.scale)
            res["flashmla_vs_triton"] = compare(out, tr)
            res["flashmla_vs_ref64_first8"] = compare(out[:8], few)
            fns["flashmla"] = lambda: fm_decode(fm, d.q, d.kv, d.idx, d.scale)
            fns["flashmla_meta_reused"] = lambda: fm_decode(fm, d.q, d.kv, d.idx, d.scale, meta=meta)
        res["times"] = {k: graph_ms(f) for k, f in fns.items()}
        del d
        torch.cuda.empty_cache()
        return res

    for batch, num_blocks in ((64, 8192), (32, 65536), (64, 65536), (128, 65536)):
        j.run(f"decode.b{batch}.n{num_blocks}", lambda b=batch, n=num_blocks: decode_case(b, n))

    def prefill_case(length):
        d = suite_prefill(length)
        valid = int((d.idx >= 0).sum())
        fns = {"triton": lambda: triton_mla.sparse_mla_prefill(d.q, d.kv, d.idx, d.scale)}
        res = {"prefill_len": length, "valid_indices": valid, "flop": attention_flop(valid),
               "flop_full_topk": attention_flop(length * TOPK)}
        tr = fns["triton"]()[0]
        t = d.q.shape[0]
        some = torch.tensor([0, 1, 7, t // 2, t - 2, t - 1], device=DEV)
        few = ref64_prefill(d.q, d.kv, d.idx, d.scale, some)
        res["triton_vs_ref64_6rows"] = compare(tr.index_select(0, some), few)
        if fm is not None:
            out = fm.flash_mla_sparse_fwd(d.q, d.kv, d.idx, sm_scale=d.scale)[0]
            res["flashmla_vs_triton"] = compare(out, tr)
            res["flashmla_vs_ref64_6rows"] = compare(out.index_select(0, some), few)
            fns["flashmla"] = lambda: fm.flash_mla_sparse_fwd(d.q, d.kv, d.idx, sm_scale=d.scale)
        res["times"] = {k: graph_ms(f) for k, f in fns.items()}
        del d
        torch.cuda.empty_cache()
        return res

    for length in (2048, 4096):
        j.run(f"prefill.p{length}", lambda n=length: prefill_case(n))


# ----------------------------------------------------------------------------------------------
# summary
# ----------------------------------------------------------------------------------------------


def _records(work: Path, stage: str) -> list[dict]:
    path = work / f"{stage}.jsonl"
    if not path.exists():
        return []
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in recs if r.get("event") != "start"]


def _cell(m: dict | None) -> str:
    if not m:
        return "-"
    diff = m.get("max_abs_diff")
    return f"{m['nonfinite_tokens']}/{m['tokens']} {'-' if diff is None else f'{diff:.1e}'}"


def _verdict(bisect: list[dict]) -> str:
    """One line from the bisect records: is FlashMLA finite on the forward's cache, and if not,
    which single change made it finite."""
    by = {r["name"].split(":")[0]: r for r in bisect if r["status"] == "ok"}
    base, unwritten = by.get("base"), by.get("unwritten")
    if not base:
        return "no verdict: the base case did not run"
    n0 = base["flashmla"]["nonfinite_tokens"]
    if n0 == 0:
        msg = f"FlashMLA's decode is finite in all {base['flashmla']['tokens']} tokens on the cache forward_mixed hands it"
        if unwritten and unwritten["flashmla"]["nonfinite_tokens"]:
            u = unwritten
            msg += (f"; on the cache before write_cache it is non-finite in {u['flashmla']['nonfinite_tokens']} tokens "
                    f"(those whose indices name a record not yet written: "
                    f"{u.get('tokens_with_an_index_on_a_record_not_yet_written')}, same set: "
                    f"{u.get('flashmla_nonfinite_tokens_are_exactly_those')}; triton "
                    f"{u.get('triton', {}).get('nonfinite_tokens')}, torch reference "
                    f"{u.get('torch_reference', {}).get('nonfinite_tokens')})")
        return msg
    fixes = [name for name, r in by.items() if (r.get("flashmla") or {}).get("nonfinite_tokens") == 0]
    return f"FlashMLA's decode is non-finite in {n0} tokens of the base case; finite under: {fixes or 'no variant'}"


def stage_summary(work: Path, stamp: Path | None) -> str:
    data = {s: _records(work, s) for s in STAGES}
    if stamp and stamp.exists():
        data["build_stamp"] = json.loads(stamp.read_text())
    (work / "flashmla.json").write_text(json.dumps(data, indent=1))
    lines = []
    st = data.get("build_stamp")
    if st:
        k = st["key"]
        lines.append(f"FlashMLA {k['flashmla_commit'][:8]} + CUTLASS {k['cutlass_commit'][:8]}, nvcc {k['nvcc']}, "
                     f"torch {k['torch']}: build {st.get('build_wall_s')} s"
                     f"{' (installed prebuilt)' if st.get('installed_from') else ''}; "
                     f".so {st.get('so_bytes', 0) / 2**20:.1f} MiB, stripped {st.get('so_stripped_bytes', 0) / 2**20:.1f} MiB")
    lines.append("\nselftest (FlashMLA's own checks and tolerances; non-finite/tokens, max |diff| to its reference):")
    for r in data["selftest"]:
        verdict = r["status"] if r["status"] != "ok" else ("PASS" if r.get("passed") else "FAIL")
        lines.append(f"  {verdict:7s} {r['name']:48s} {_cell(r) if r['status'] == 'ok' else r.get('message', '')[:120]}")
    lines.append("\nbisect (suite b64, 8192 blocks; per kernel: non-finite tokens/64, max |diff| to float64 on finite tokens):")
    lines.append(f"  {'variant':78s} {'flashmla':14s} {'triton':14s} {'torch ref':14s}")
    for r in data["bisect"]:
        if r["status"] != "ok":
            lines.append(f"  {r['name'][:78]:78s} {r['status']}: {r.get('message', '')[:100]}")
            continue
        extra = {k: v for k, v in r.items() if k not in ("name", "status", "seconds", "flashmla", "triton", "torch_reference")}
        lines.append(f"  {r['name'][:78]:78s} {_cell(r.get('flashmla')):14s} {_cell(r.get('triton')):14s} "
                     f"{_cell(r.get('torch_reference')):14s}")
        if extra:
            lines.append(f"      {json.dumps(extra)[:300]}")
    lines.append(f"  verdict: {_verdict(data['bisect'])}")
    lines.append("\ntiming (CUDA-graph median ms per call, hot inputs; TFLOP/s on valid indices: 2*H*(576+512) per index):")
    lines.append(f"  {'case':22s} {'flashmla':>16s} {'fm meta reused':>16s} {'triton':>16s} {'triton/fm':>9s}  fm vs triton")
    for r in data["timing"]:
        if r["status"] != "ok":
            lines.append(f"  {r['name']:22s} {r['status']}: {r.get('message', '')[:120]}")
            continue
        t = r["times"]

        def cell(k, t=t, r=r):
            return f"{t[k]['median_ms']:.4f} ({r['flop'] / t[k]['median_ms'] / 1e9:4.0f})" if k in t else "-"
        ratio = f"{t['triton']['median_ms'] / t['flashmla']['median_ms']:.2f}x" if "flashmla" in t else "-"
        lines.append(f"  {r['name']:22s} {cell('flashmla'):>16s} {cell('flashmla_meta_reused'):>16s} {cell('triton'):>16s} "
                     f"{ratio:>9s}  {_cell(r.get('flashmla_vs_triton'))}")
    text = "\n".join(lines) + "\n"
    (work / "summary.txt").write_text(text)
    return text


def _reraise(exc: BaseException):
    raise exc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=(*STAGES, "summary"))
    ap.add_argument("--work", type=Path, required=True, help="folder for the stage records (JSON lines)")
    ap.add_argument("--resume", action="store_true", help="skip recorded items; the one in flight is marked crashed")
    ap.add_argument("--flashmla", type=Path, default=DEFAULT_FM, help="the unpacked, built FlashMLA folder")
    ap.add_argument("--stamp", type=Path, default=ROOT / "third_party" / "build" / "stamp.json")
    ap.add_argument("--bisect-batch", type=int, default=64)
    ap.add_argument("--bisect-blocks", type=int, default=8192)
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage == "summary":
        print(stage_summary(args.work, args.stamp), end="")
        return 0
    j = Journal(args.work / f"{args.stage}.jsonl", args.resume)
    try:
        fm = import_flash_mla(args.flashmla)
    except Exception as exc:  # noqa: BLE001 - timing still measures Triton alone
        log(f"flash_mla does not import: {type(exc).__name__}: {exc}")
        if args.stage != "timing":
            j.run("import flash_mla", lambda: _reraise(exc))
            return 1
        fm = None
    try:
        if args.stage == "selftest":
            stage_selftest(j, fm, args.flashmla)
        elif args.stage == "bisect":
            stage_bisect(j, fm, args.flashmla, args.bisect_batch, args.bisect_blocks)
        else:
            stage_timing(j, fm)
    except CudaBroken as exc:
        log(f"CUDA context broken ({exc}); exit 3 so that a fresh process resumes")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
