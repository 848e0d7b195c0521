"""Compile the Gluon decode and prefill kernels (suite/dsabench/bench/kernels/gluon_mla.py,
gluon_mla_prefill.py) for sm_90a without a GPU and print their resources: registers, spills (ptxas
-v on the PTX, with the kernel's maxnreg), shared memory, the setmaxnreg budgets of the partitions
and the wgmma shapes (issue 23, item 5).

    python3 scripts/gluon_compile.py   (needs triton==3.6.0 only: it bundles ptxas; no torch)
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.experimental.gluon._runtime import GluonASTSource

KERNELS = Path(__file__).resolve().parent.parent / "suite" / "dsabench" / "bench" / "kernels"
ARGS = ("q_ptr:*bf16 kv_ptr:*u8 idx_ptr:*i32 out_ptr:OUT lse_ptr:*fp32 num_heads:i32 num_slots:i32 chunk:i32 "
        "stride_qt:i32 stride_qh:i32 stride_ko:i32 stride_it:i32 stride_ot:i32 stride_os:i32 stride_oh:i32 "
        "stride_lt:i32 stride_ls:i32 stride_lh:i32 qk_scale:fp32").split()
ALIGNED = {"q_ptr", "kv_ptr", "idx_ptr", "out_ptr", "lse_ptr", "chunk", "stride_qt", "stride_qh", "stride_ko",
           "stride_it", "stride_ot", "stride_oh"}  # as the launcher's specialization sees the suite's tensors
PREFILL_ARGS = ("q_ptr:*bf16 kv_ptr:*bf16 idx_ptr:*i32 out_ptr:*bf16 lse_ptr:*fp32 num_heads:i32 num_rows:i32 "
                "topk:i32 stride_qt:i32 stride_qh:i32 stride_kv:i32 stride_it:i32 stride_ot:i32 stride_oh:i32 "
                "stride_lt:i32 stride_lh:i32 qk_scale:fp32").split()
PREFILL_ALIGNED = {"q_ptr", "kv_ptr", "idx_ptr", "out_ptr", "lse_ptr", "stride_qt", "stride_qh", "stride_kv",
                   "stride_it", "stride_ot", "stride_oh", "stride_lt", "stride_lh"}


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, KERNELS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def compile_one(mod, split: bool, bf16: bool) -> str:
    sig = {a.split(":")[0]: a.split(":")[1].replace("OUT", "*fp32" if split else "*bf16") for a in ARGS}
    consts = {"SPLIT": split, "BF16_DEQUANT": bf16, "MATH1_REGS": mod.WORKER_REGS[0],
              "PRODUCER_REGS": mod.WORKER_REGS[1]}
    sig.update({k: "constexpr" for k in consts})
    attrs = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(sig) if name in ALIGNED}
    return f"SPLIT={split!s:5} BF16_DEQUANT={bf16!s:5}: " + resources(mod, mod._decode_kernel, sig, consts, attrs)


def compile_prefill(mod, skip: bool) -> str:
    sig = {a.split(":")[0]: a.split(":")[1] for a in PREFILL_ARGS}
    consts = {"SKIP": skip, "MATH1_REGS": mod.WORKER_REGS[0], "PRODUCER_REGS": mod.WORKER_REGS[1]}
    sig.update({k: "constexpr" for k in consts})
    attrs = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(sig) if name in PREFILL_ALIGNED}
    return f"prefill SKIP={skip!s:5}: " + resources(mod, mod._prefill_kernel, sig, consts, attrs)


def resources(mod, kernel, sig, consts, attrs) -> str:
    k = triton.compile(GluonASTSource(kernel, sig, consts, attrs), target=GPUTarget("cuda", 90, 32),
                       options={"num_warps": 4, "maxnreg": mod.MAXNREG})
    ptx = k.asm["ptx"]
    ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "k.ptx").write_text(ptx)
        info = subprocess.run([ptxas, "-v", "--gpu-name", "sm_90a", "-maxrregcount", str(mod.MAXNREG),
                               f"{tmp}/k.ptx", "-o", f"{tmp}/k.cubin"], capture_output=True, text=True).stderr
    regs = re.search(r"Used (\d+) registers", info)
    spill = re.search(r"(\d+) bytes spill stores", info)
    budgets = re.findall(r"setmaxnreg\.(inc|dec)\.sync\.aligned\.u32\s+(\d+)", ptx)
    mma = Counter(re.findall(r"wgmma\.mma_async\.sync\.aligned\.(m\d+n\d+k\d+)", ptx))
    return (f"{k.metadata.num_warps} warps, "
            f"{regs.group(1) if regs else '?'} registers (maxnreg), {spill.group(1) if spill else '?'} B spill stores, "
            f"{k.metadata.shared} B shared; setmaxnreg {' '.join(d + n for d, n in budgets)}; wgmma {dict(mma)}")


def main() -> int:
    mod = load("gluon_mla")
    print(f"triton {triton.__version__}, sm_90a; partitions: math 0 (default) gets what is left of "
          f"{mod.MAXNREG} x 12 warps after math 1 {mod.WORKER_REGS[0]} and the producer {mod.WORKER_REGS[1]}")
    for split, bf16 in ((False, False), (True, False), (False, True)):
        print(compile_one(mod, split, bf16))
    pre = load("gluon_mla_prefill")
    print(f"prefill: math 0 gets what is left of {pre.MAXNREG} x 12 warps after math 1 and the producer: "
          f"{pre.WORKER_REGS}")
    for skip in (True, False):
        print(compile_prefill(pre, skip))
    return 0


if __name__ == "__main__":
    sys.exit(main())
