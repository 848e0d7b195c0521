#!/usr/bin/env bash
# `--kernel flashmla` end to end through the suite on one H200 (issue 23, item 2), one device call:
# FlashMLA installed from third_party/prebuilt (or built), then pr's 8192-block decode cases, mixed
# and prefill, eager and graph, with --check, once with FlashMLA and once with the Triton kernel on
# the same cases, and the kernel agreement. Under $OUT: the two run directories (tar.gz), log.txt.
#   bash scripts/gpu_flashmla_suite.sh     (carry third_party/prebuilt, the two source archives and
#                                           third_party/wheels)
set -uo pipefail
out=${OUT:-/tmp/gpu_flashmla_suite_out}
source "$(dirname "$0")/gpu_setup.sh"
t_start=$(date +%s)
left() { echo $(( t_start + ${DEADLINE_S:-540} - $(date +%s) )); }
bash scripts/build_flashmla.sh > "$out/build.log" 2>&1; echo "build rc=$? $(tail -1 "$out/build.log")"
export PYTHONPATH="$PWD/third_party/build/FlashMLA:$PYTHONPATH"
export TRITON_CACHE_DIR=/tmp/triton-flashmla-suite
filter=${FILTER:-'(n8192\.|^mixed\.|^prefill\.)'}
for k in flashmla triton; do
  lim=$(( $(left) / 2 )); [ "$k" = triton ] && lim=$(( $(left) - 20 ))
  echo "run $k: limit ${lim}s"
  timeout -s INT -k 15 $lim python3 -m dsabench run pr --backend torch --kernel $k --check --filter "$filter" \
    --max-time-s ${MAX_TIME_S:-1.5} --out /tmp/fm-runs --run-id pr-check-$k >> "$out/log.txt" 2>&1
  echo "run $k rc=$?"
  tail -40 "$out/log.txt"
  [ -d /tmp/fm-runs/pr-check-$k ] && tar -C /tmp/fm-runs -czf "$out/pr-check-$k.tar.gz" pr-check-$k
done
echo "total $(( $(date +%s) - t_start ))s"
