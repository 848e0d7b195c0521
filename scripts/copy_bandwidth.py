"""What the baseline's layout copy costs on this GPU: time a full copy of the paged cache.

PyTorch's `.contiguous()` of the transposed single-head cache copies nothing, so the torch
backend cannot show what Paddle 3.x's copy costs. This times the same bytes moved by a plain
device-to-device copy of a [num_blocks, 1, 64, 656] uint8 cache into a fresh layout buffer, with the
suite's own protocol (device events, warm-up, CI of the median), for the `pr` preset's cache
sizes. It is the copy's cost on this card, not a Paddle measurement.

    python3 scripts/copy_bandwidth.py --out DIR      # writes DIR/copy_bandwidth.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--blocks", default="8192,65536,262144")
    args = ap.parse_args()

    import torch

    from dsabench.bench.backends.torch import TorchEventClock
    from dsabench.bench.protocol import GPU_PROTOCOL, measure
    from dsabench.workload.dims import cache_bytes
    from dsabench.analysis.stats import summarize

    rows = []
    for n in (int(b) for b in args.blocks.split(",")):
        src = torch.randint(0, 256, (n, 1, 64, 656), dtype=torch.uint8, device="cuda")
        dst = torch.empty((n, 64, 1, 656), dtype=torch.uint8, device="cuda")
        src_t = src.transpose(1, 2)

        def copy(dst=dst, src_t=src_t):
            dst.copy_(src_t)  # what Paddle's transpose(...).contiguous() writes, into a held buffer

        timing = measure(copy, TorchEventClock(), torch.cuda.synchronize, GPU_PROTOCOL)
        s = summarize(timing.samples_ms)
        nbytes = cache_bytes(n, 1, 64)
        rows.append({
            "num_blocks": n, "cache_bytes": nbytes, "median_ms": s.median, "ci_low_ms": s.ci_low,
            "ci_high_ms": s.ci_high, "samples": s.n,
            "bandwidth_gbs_read_plus_write": 2 * nbytes / (s.median * 1e-3) / 1e9,
            "stop_reason": timing.stop_reason,
        })
        del src, dst
        torch.cuda.empty_cache()
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "copy_bandwidth.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"{'blocks':>8} {'cache GiB':>9} {'copy ms':>9} {'GB/s (r+w)':>11}")
    for r in rows:
        print(f"{r['num_blocks']:>8} {r['cache_bytes'] / 2**30:>9.2f} {r['median_ms']:>9.3f} "
              f"{r['bandwidth_gbs_read_plus_write']:>11.0f}")


if __name__ == "__main__":
    main()
