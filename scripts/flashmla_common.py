"""Helpers of scripts/flashmla_check.py: the suite's inputs as its torch forward hands them to the
attention kernels, a float64 reference on the fp8_ds_mla records, output metrics, a CUDA-graph timer,
and a journal that keeps each finished item of a stage on disk.

GPU only (torch with CUDA); the suite's package must be importable (suite/ on PYTHONPATH).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import statistics
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "suite" / "dsabench" / "bench" / "kernels"
FLASHMLA_DIR = ROOT / "third_party" / "build" / "FlashMLA"  # where scripts/build_flashmla.sh puts it
REL_BOUND = 1e-2  # the suite's oracle bound (reference/oracle.py): a config over it is wrong, not fast
D_LATENT, D_ROPE, D_QK, RECORD = 512, 64, 576, 656
CONTEXT, BLOCK, HEADS, TOPK = 4096, 64, 128, 2048  # the `pr` preset's decode shape
DEV = os.environ.get("FLASHMLA_CHECK_DEVICE", "cuda")  # "cpu" only for a dry run of the plumbing


def sync() -> None:
    if DEV == "cuda":
        torch.cuda.synchronize()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def jsonable(x):
    """Records hold plain JSON: non-finite floats become strings, tensors lists."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


class CudaBroken(RuntimeError):
    """The CUDA context no longer works (an illegal access, say): only a fresh process can go on."""


def cuda_healthy() -> str:
    if DEV != "cuda":
        return ""
    try:
        torch.cuda.synchronize()
        if int(torch.arange(1000, device="cuda").sum().item()) != 499500:
            return "a reduction on the device gave a wrong sum"
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"{type(exc).__name__}: {exc}"
    return ""


class Journal:
    """One JSON line per event in `path`: {"event": "start", "name"} before an item runs, the
    item's record after. With resume, finished items are skipped and an item that started but never
    finished (its process died) is recorded as crashed and not run again."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path, self.done, started = path, {}, set()
        if resume and path.exists():
            for line in path.read_text().splitlines():
                rec = json.loads(line)
                if rec.get("event") == "start":
                    started.add(rec["name"])
                else:
                    self.done[rec["name"]] = rec
        elif path.exists():
            path.unlink()
        self.crashed = started - set(self.done)

    def _write(self, rec: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(jsonable(rec)) + "\n")

    def run(self, name: str, fn) -> dict:
        if name in self.done:
            log(f"{name}: recorded earlier ({self.done[name]['status']})")
            return self.done[name]
        if name in self.crashed:
            rec = {"name": name, "status": "crashed", "message": "the process died while running it"}
            self._write(rec)
            self.done[name] = rec
            log(f"{name}: CRASHED in an earlier attempt; not run again")
            return rec
        self._write({"event": "start", "name": name})
        t0 = time.time()
        log(f"{name}: start")
        try:
            rec = {"name": name, "status": "ok", **fn()}
        except Exception as exc:  # noqa: BLE001 - recorded, and the stage goes on
            rec = {"name": name, "status": "error", "message": f"{type(exc).__name__}: {exc}"[:1500],
                   "traceback": traceback.format_exc()[-2500:]}
        rec["seconds"] = round(time.time() - t0, 2)
        self._write(rec)
        self.done[name] = rec
        brief = {k: v for k, v in rec.items() if k not in ("traceback", "name")}
        log(f"{name}: {json.dumps(jsonable(brief))[:600]}")
        if rec["status"] == "error":
            why = cuda_healthy()
            if why:
                raise CudaBroken(f"after {name}: {why}")
        return rec


# ----------------------------------------------------------------------------------------------
# the suite's inputs
# ----------------------------------------------------------------------------------------------


def suite_decode(batch: int, num_blocks: int, *, seed: int = 0, keep_unwritten: bool = False) -> SimpleNamespace:
    """A decode case of the `pr` preset's shape (context 4096, block 64, h128, top-k 2048) built by
    the suite (make_host_inputs, TorchBackend.prepare: garbage with NaN stripes, then the context
    records), then the forward's write_cache of the new tokens, whose own slots the top-k indices
    may name: the cache exactly as forward_mixed hands it to the decode kernel (patched view)."""
    from dsabench.bench.backends import torch as tb  # noqa: PLC0415
    from dsabench.workload.cases import Case  # noqa: PLC0415
    from dsabench.workload.inputs import make_host_inputs  # noqa: PLC0415
    from dsabench.workload.variants import PATCHED  # noqa: PLC0415

    case = Case("flashmla-check", "decode", batch, CONTEXT, 0, num_blocks, BLOCK, 1, HEADS, TOPK, PATCHED, False, seed)
    host = make_host_inputs(case)
    st = tb.TorchBackend("gpu" if DEV == "cuda" else "cpu").prepare(case, host)
    unwritten = st.latent_cache.clone() if keep_unwritten else None
    slots = tb.compute_slot_mapping(st.block_tables, st.position_ids, st.batch_id_per_token, case.block_size)
    tb.write_cache(st.compressed_kv, st.k_pe, st.latent_cache, slots, None)
    sync()
    context_written = torch.zeros(num_blocks * BLOCK, dtype=torch.bool, device=DEV)  # rows = slots (1 cache head)
    context_written[torch.from_numpy(host.context_rows).to(DEV)] = True
    written = context_written.clone()
    written[slots] = True
    return SimpleNamespace(
        case=case, st=st, q=st.q.unsqueeze(1).contiguous(), kv=tb.decode_layout(st.latent_cache, PATCHED),
        idx=st.decode_indices, scale=float(st.softmax_scale), slots=slots, written=written,
        context_written=context_written, unwritten=unwritten,
    )


def suite_prefill(prefill_len: int, *, seed: int = 0) -> SimpleNamespace:
    """A prefill case (one request of prefill_len tokens, h128, top-k 2048): q [T,H,576], kv [T,1,576]
    and causal indices [T,1,2048] as the suite's forward passes them to the prefill kernel."""
    from dsabench.bench.backends import torch as tb  # noqa: PLC0415
    from dsabench.workload.cases import Case  # noqa: PLC0415
    from dsabench.workload.inputs import make_host_inputs  # noqa: PLC0415
    from dsabench.workload.variants import PATCHED  # noqa: PLC0415

    blocks = -(-prefill_len // BLOCK) + 8  # the prefill kernel never reads the paged cache
    case = Case("flashmla-check", "prefill", 1, 0, prefill_len, blocks, BLOCK, 1, HEADS, TOPK, PATCHED, False, seed)
    st = tb.TorchBackend("gpu" if DEV == "cuda" else "cpu").prepare(case, make_host_inputs(case))
    return SimpleNamespace(case=case, q=st.q, kv=st.prefill_kv, idx=st.prefill_indices, scale=float(st.softmax_scale))


def records_of(kv: torch.Tensor) -> torch.Tensor:
    """The cache as [rows, 656] uint8 rows (a view when the layout allows)."""
    return kv.reshape(-1, RECORD).view(torch.uint8)


# ----------------------------------------------------------------------------------------------
# reference and metrics
# ----------------------------------------------------------------------------------------------


def _attend64(q: torch.Tensor, key: torch.Tensor, valid: torch.Tensor, scale: float) -> torch.Tensor:
    """q [n,S,H,576], key [n,S,K,576] float64, valid [n,S,K] -> [n,S,H,512] float64; V = key[..., :512].
    Masked keys are zeroed before use, so garbage under them never counts; a row with no valid key is 0."""
    key = torch.where(valid.unsqueeze(-1), key, torch.zeros((), dtype=key.dtype, device=key.device))
    logits = torch.einsum("nshd,nskd->nshk", q.double(), key) * scale
    logits = logits.masked_fill(~valid.unsqueeze(2), float("-inf"))
    lse = torch.logsumexp(logits, dim=-1, keepdim=True)
    p = torch.exp(logits - torch.where(torch.isinf(lse) & (lse < 0), torch.zeros_like(lse), lse))
    return torch.einsum("nshk,nskd->nshd", p, key[..., :D_LATENT])


def ref64_decode(q: torch.Tensor, kv: torch.Tensor, idx: torch.Tensor, scale: float, chunk: int = 16) -> torch.Tensor:
    """float64 sparse attention over fp8_ds_mla records, from the format's definition: latent = e4m3
    code * float32 tile scale, K = [latent, rope], V = latent, indices -1 excluded (never read).
    q [T,S,H,576] bf16, idx [T,S,topk] -> out [T,S,H,512] float64 (0 where a row has no valid index).
    A valid index on a record holding garbage gives a non-finite row, as it should."""
    rows = records_of(kv)
    _, s, _, _ = q.shape
    k_top = idx.shape[-1]
    outs = []
    for t0 in range(0, q.shape[0], chunk):
        qq = q[t0:t0 + chunk]
        n = qq.shape[0]
        i = idx[t0:t0 + chunk].reshape(-1).long()
        rec = rows.index_select(0, i.clamp_min(0))
        codes = rec[:, :D_LATENT].contiguous().view(torch.float8_e4m3fn).float().double()
        scales = rec[:, D_LATENT:D_LATENT + 16].contiguous().view(torch.float32).double()
        rope = rec[:, D_LATENT + 16:].contiguous().view(torch.bfloat16).double()
        lat = (codes.view(-1, 4, 128) * scales.unsqueeze(-1)).view(-1, D_LATENT)
        key = torch.cat([lat, rope], dim=-1).view(n, s, k_top, D_QK)
        outs.append(_attend64(qq, key, (i >= 0).view(n, s, k_top), scale))
    return torch.cat(outs)


def ref64_prefill(q: torch.Tensor, kv: torch.Tensor, idx: torch.Tensor, scale: float, tokens: torch.Tensor) -> torch.Tensor:
    """float64 sparse prefill attention of the query rows `tokens` only: q [T,H,576], kv [S,1,576]
    bf16, idx [T,1,topk] rows of kv (-1 masked) -> [len(tokens), H, 512] float64."""
    qq = q.index_select(0, tokens).unsqueeze(1)
    i = idx.index_select(0, tokens).reshape(len(tokens), 1, -1).long()
    key = kv.reshape(kv.shape[0], D_QK).index_select(0, i.clamp_min(0).reshape(-1)).double()
    return _attend64(qq, key.view(len(tokens), 1, i.shape[-1], D_QK), i >= 0, scale)[:, 0]


def compare(out: torch.Tensor, ref: torch.Tensor) -> dict:
    """Per-token finiteness and the difference to `ref` on tokens where both are finite.
    out and ref [T, ...]; a token is non-finite if any of its values is."""
    o = out.double().reshape(out.shape[0], -1)
    r = ref.double().reshape(ref.shape[0], -1)
    bad = ~torch.isfinite(o).all(dim=1)
    ref_bad = ~torch.isfinite(r).all(dim=1)
    keep = ~bad & ~ref_bad
    res = {
        "tokens": int(o.shape[0]),
        "nonfinite_tokens": int(bad.sum()),
        "nonfinite_token_ids": bad.nonzero().flatten()[:64].tolist(),
        "ref_nonfinite_tokens": int(ref_bad.sum()),
        "compared_tokens": int(keep.sum()),
    }
    if keep.any():
        d = o[keep] - r[keep]
        res["max_abs_diff"] = float(d.abs().max())
        res["rel_err"] = float(d.norm() / r[keep].norm().clamp_min(1e-300))
        res["ref_max_abs"] = float(r[keep].abs().max())
    return res


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------


def eager_ms(fn, reps: int = 20) -> float:
    """Median of `reps` single calls, each between two CUDA events (launch overhead included)."""
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def graph_ms(fn, target_ms: float = 20.0, replays: int = 15) -> dict:
    """CUDA-graph timing as triton.testing.do_bench_cudagraph does it: n calls captured in one
    graph (n so that a replay takes about target_ms), `replays` replays each between events; the
    median replay time over n. Same inputs every call (hot: what the L2 keeps between calls stays)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    one = eager_ms(fn, reps=5)
    n = max(1, min(500, int(target_ms / max(one, 1e-3))))
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(n):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    per_call = []
    for _ in range(replays):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        b.synchronize()
        per_call.append(a.elapsed_time(b) / n)
    del graph
    return {"median_ms": statistics.median(per_call), "min_ms": min(per_call), "max_ms": max(per_call),
            "calls_per_graph": n, "replays": replays, "eager_median_ms": eager_ms(fn)}


def attention_flop(valid_indices: int, heads: int = HEADS) -> float:
    """2 * H * (576 + 512) per (query token, valid index): the QK^T and PV products."""
    return 2.0 * heads * (D_QK + D_LATENT) * valid_indices


def timing_row(name: str, r: dict, fm_ms: float | None, diff: float | None, width: int, bound: float,
               tail: str = "") -> str:
    """One row of a kernel's timing table (triton_tune, gluon_check): median ms, TFLOP/s (the record's
    flop over it), time over FlashMLA's, relative error against float64, largest difference to the
    reference kernel, then `tail`; marked when the error is over `bound`."""
    ms = r["time"]["median_ms"]
    rel = (r.get("vs_float64") or {}).get("rel_err")
    flag = "  OVER THE BOUND" if rel is not None and rel > bound else ""
    return (f"  {name:{width}s} {ms:8.4f} {r['flop'] / ms / 1e9:8.0f} "
            f"{(f'{ms / fm_ms:.2f}x' if fm_ms else '-'):>6s} "
            f"{(f'{rel:.2e}' if rel is not None else '-'):>8s} "
            f"{(f'{diff:.1e}' if diff is not None else '-'):>8s}{tail}{flag}")


def load_kernel(name: str):
    """One of the suite's kernel files (triton_mla, gluon_mla, ...) loaded by path: each imports only
    torch, triton and math, so no dsabench import is needed."""
    spec = importlib.util.spec_from_file_location(name, KERNELS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def optional_flash_mla(without: str):
    """flash_mla from FLASHMLA_DIR, or None (logged, with `without`: what is measured instead)."""
    import sys  # noqa: PLC0415

    sys.path.insert(0, str(FLASHMLA_DIR))
    try:
        import flash_mla  # noqa: PLC0415

        return flash_mla
    except Exception as exc:  # noqa: BLE001 - the other kernels are still measured
        log(f"flash_mla does not import ({type(exc).__name__}: {exc}): {without}")
        return None
