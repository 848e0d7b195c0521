#!/usr/bin/env bash
# FlashMLA vs Triton vs the reference ops through the suite on one H200, one device call of about
# 7-9 minutes (issue 23, items 2 and 3):
#   1. FlashMLA installed from third_party/prebuilt (or built: scripts/build_flashmla.sh);
#   2. kernel-check: the three kernels against the float64 oracle with --check, at FlashMLA's shapes
#      sized for the oracle, and one shape FlashMLA refuses (recorded unsupported, not a crash);
#   3. kernels: decode b32/b64/b128 at 65536 blocks (eager and graph) and prefill p2048/p4096, each
#      case with each kernel side by side in one run (--kernel flashmla,triton,reference, 3 processes);
#   4. compare --kernels (triton vs flashmla, reference vs flashmla) and the evidence (report);
#   5. the GPU-only tests of the kernel axis, the support rules and the kernel option.
# Each step has its own time limit inside one deadline (DEADLINE_S, default 560 s); a step cut off
# keeps what it wrote. Under $OUT: log.txt, kernel-check.txt, kernels-*.txt, kernels-evidence/,
# kernel-check.tar.gz, kernels-h200.tar.gz (run directories), pytest.txt, build.log.
#   bash scripts/gpu_kernel_axis.sh   (carry third_party/prebuilt, third_party/wheels and the two
#                                      source archives third_party/*.tar.gz)
set -uo pipefail
out=${OUT:-/tmp/gpu_kernel_axis_out}
source "$(dirname "$0")/gpu_setup.sh"
cd "$(dirname "$0")/.."
bash scripts/build_flashmla.sh > "$out/build.log" 2>&1; say "build rc=$? $(tail -1 "$out/build.log")"
export PYTHONPATH="$PWD/third_party/build/FlashMLA:$PYTHONPATH"
export TRITON_CACHE_DIR=/tmp/triton-kernel-axis
runs=/tmp/ka-runs
rm -rf "$runs"

say "kernel-check (limit $(cap 150 330)s)"
timeout -s INT -k 15 "$(cap 150 330)" python3 -m dsabench run kernel-check --backend torch --check \
  --max-time-s 1 --out "$runs" --run-id kernel-check > "$out/kernel-check.txt" 2>&1
say "kernel-check rc=$?"
tail -30 "$out/kernel-check.txt"
[ -d "$runs/kernel-check" ] && tar -C "$runs" -czf "$out/kernel-check.tar.gz" kernel-check

say "kernels (limit $(cap 270 100)s)"
timeout -s INT -k 15 "$(cap 270 100)" python3 -m dsabench run kernels --backend torch \
  --max-time-s 1.5 --out "$runs" --run-id kernels-h200 > "$out/kernels-run.txt" 2>&1
say "kernels rc=$?"
tail -25 "$out/kernels-run.txt"
if [ -d "$runs/kernels-h200" ]; then
  for k in triton reference; do
    python3 -m dsabench compare --kernels "$runs/kernels-h200" --base-kernel flashmla --cand-kernel $k --wide \
      --json "$out/kernels-$k-vs-flashmla.json" > "$out/kernels-$k-vs-flashmla.txt" 2>&1
    say "compare --kernels flashmla vs $k rc=$?"
  done
  cat "$out/kernels-triton-vs-flashmla.txt"
  timeout 120 python3 -m dsabench report "$runs/kernels-h200" --out "$out/kernels-evidence" >> "$out/log.txt" 2>&1
  say "report rc=$?"
  rm -rf "$runs/kernels-h200/traces"  # the evidence has what they give; the traces would not come back
  tar -C "$runs" -czf "$out/kernels-h200.tar.gz" kernels-h200
fi

say "pytest, GPU-only tests (limit $(cap 150 5)s)"
timeout "$(cap 150 5)" python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_axis.py tests/test_kernel_support.py \
  tests/test_kernel_option.py -k "triton_and_the_reference_ops or run_with_flashmla or runs_end_to_end" > "$out/pytest.txt" 2>&1
say "pytest rc=$? $(tail -1 "$out/pytest.txt")"
say "total $(( $(date +%s) - t_start ))s"
