#!/usr/bin/env bash
# The whole `pr` preset at the preset's repeats with FastDeploy's production kernel (FlashMLA) and
# with the suite's Triton kernel, one after the other in one device call on one H200 (issue 23,
# item 4). FlashMLA comes from third_party/prebuilt (or is built: scripts/build_flashmla.sh).
# Under $OUT: pr-flashmla.tar.gz, pr-triton.tar.gz (run directories), log.txt, build.log.
#   bash scripts/gpu_pr_kernels.sh   (carry third_party/prebuilt, third_party/wheels and the two
#                                     source archives; KERNELS="flashmla triton" by default)
set -uo pipefail
out=${OUT:-/tmp/gpu_pr_kernels_out}
source "$(dirname "$0")/gpu_setup.sh"
t_start=$(date +%s)
left() { echo $(( t_start + ${DEADLINE_S:-560} - $(date +%s) )); }
bash scripts/build_flashmla.sh > "$out/build.log" 2>&1; echo "build rc=$? $(tail -1 "$out/build.log")"
export PYTHONPATH="$PWD/third_party/build/FlashMLA:$PYTHONPATH"
export TRITON_CACHE_DIR=/tmp/triton-pr-kernels
n=0; set -- ${KERNELS:-flashmla triton}; total=$#
for k in "$@"; do
  n=$((n + 1)); lim=$(( ($(left) - 15) / (total - n + 1) ))
  echo "pr $k: limit ${lim}s" | tee -a "$out/log.txt"
  t0=$(date +%s)
  timeout -s INT -k 15 $lim python3 -m dsabench run pr --backend torch --kernel $k --out /tmp/pr-runs \
    --run-id pr-$k-h200 >> "$out/log.txt" 2>&1
  echo "pr $k rc=$? wall $(( $(date +%s) - t0 ))s" | tee -a "$out/log.txt"
  [ -d /tmp/pr-runs/pr-$k-h200 ] && tar -C /tmp/pr-runs -czf "$out/pr-$k.tar.gz" pr-$k-h200
done
echo "total $(( $(date +%s) - t_start ))s"
