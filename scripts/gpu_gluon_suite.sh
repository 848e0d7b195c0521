#!/usr/bin/env bash
# The Gluon kernels (`--kernel gluon`) through the suite on one H200, one device call of about 3-4
# minutes at DEADLINE_S=420 (184 s on 2026-12-03; issue 23, items 2, 3 and 5):
#   1. FlashMLA installed from third_party/prebuilt (or built: scripts/build_flashmla.sh);
#   2. kernel-check with --kernel gluon,triton --check: the float64 oracle, short contexts
#      (most indices -1), 64 heads, 32-token blocks, eager against graph;
#   3. pr's 8192-block decode cases, its mixed and prefill cases with --kernel gluon --check, one
#      process a case: variants bit-identical, eager identical to graph, outputs finite;
#   4. kernels: decode b32/b64/b128 at 65536 blocks (eager and graph) and prefill p2048/p4096 with
#      --kernel flashmla,gluon,triton side by side in one run (KERNELS_REPEATS processes, 2);
#      compare --kernels and the evidence.
# Each step has its own limit inside one deadline (DEADLINE_S, default 560 s; 420 fits all three); a step cut off keeps
# what it wrote. Under $OUT: log.txt, build.log, *.txt, kernels-evidence.tar.gz and one archive of
# the run directories (runs.tar.gz; the device tool returns a limited number of files).
#   bash scripts/gpu_gluon_suite.sh   (carry third_party/prebuilt, third_party/wheels and the
#                                      FlashMLA source archive third_party/flashmla-*.tar.gz)
set -uo pipefail
out=${OUT:-/tmp/gpu_gluon_suite_out}
source "$(dirname "$0")/gpu_setup.sh"
cd "$(dirname "$0")/.."
record_env
bash scripts/build_flashmla.sh > "$out/build.log" 2>&1; say "build rc=$? $(tail -1 "$out/build.log")"
export PYTHONPATH="$PWD/third_party/build/FlashMLA:$PYTHONPATH"
export TRITON_CACHE_DIR=/tmp/triton-gluon-suite
runs=/tmp/gs-runs
rm -rf "$runs"

say "kernel-check (limit $(cap 90 310)s)"
timeout -s INT -k 15 "$(cap 90 310)" python3 -m dsabench run kernel-check --backend torch --kernel gluon,triton \
  --check --max-time-s 0.5 --out "$runs" --run-id kernel-check-gluon > "$out/kernel-check.txt" 2>&1
say "kernel-check rc=$?"
tail -25 "$out/kernel-check.txt"

say "pr --kernel gluon --check (limit $(cap 120 190)s)"
timeout -s INT -k 15 "$(cap 120 190)" python3 -m dsabench run pr --backend torch --kernel gluon --check --repeats 1 \
  --filter '\.n8192\.|^mixed\.|^prefill\.' --max-time-s 0.5 --out "$runs" --run-id pr-gluon-check > "$out/pr-check.txt" 2>&1
say "pr check rc=$?"
tail -25 "$out/pr-check.txt"

say "kernels (limit $(cap 170 25)s)"
timeout -s INT -k 15 "$(cap 170 25)" python3 -m dsabench run kernels --backend torch --kernel flashmla,gluon,triton \
  --repeats "${KERNELS_REPEATS:-2}" --max-time-s 1.0 --out "$runs" --run-id kernels-gluon-h200 > "$out/kernels-run.txt" 2>&1
say "kernels rc=$?"
tail -20 "$out/kernels-run.txt"
if [ -d "$runs/kernels-gluon-h200" ]; then
  for pair in "flashmla gluon" "flashmla triton" "triton gluon"; do
    set -- $pair
    python3 -m dsabench compare --kernels "$runs/kernels-gluon-h200" --base-kernel $1 --cand-kernel $2 --wide \
      --json "$out/kernels-$2-vs-$1.json" > "$out/kernels-$2-vs-$1.txt" 2>&1
    say "compare --kernels $1 vs $2 rc=$?"
  done
  cat "$out/kernels-gluon-vs-flashmla.txt"
  timeout "$(cap 60 3)" python3 -m dsabench report "$runs/kernels-gluon-h200" --out /tmp/gs-evidence >> "$out/log.txt" 2>&1
  say "report rc=$?"
  [ -d /tmp/gs-evidence ] && tar -C /tmp -czf "$out/kernels-evidence.tar.gz" gs-evidence
fi
find "$runs" -name traces -type d -prune -exec rm -rf {} + 2>/dev/null  # the evidence has what they give
tar -C "$runs" -czf "$out/runs.tar.gz" . 2>/dev/null
say "total $(( $(date +%s) - t_start ))s"
