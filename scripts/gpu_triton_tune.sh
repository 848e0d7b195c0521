#!/usr/bin/env bash
# The Triton decode and prefill kernels against FlashMLA, configuration by configuration, in one
# device call of at most about 9 minutes on one H200 (issue 23, item 5: data to tune from; no
# default changes). FlashMLA comes from third_party/prebuilt (or is built: scripts/build_flashmla.sh).
# Triton's cache lives in third_party/build/triton-tune-cache (ignored): a warm machine keeps it,
# so a second call skips the compiles and a cut-off call can be finished with RESUME=1.
# Under $OUT: summary.txt, tune.json, tune.jsonl, log.txt, build.log.
#   bash scripts/gpu_triton_tune.sh   (carry third_party/prebuilt, third_party/wheels and the two
#                                      source archives third_party/*.tar.gz)
set -uo pipefail
out=${OUT:-/tmp/gpu_triton_tune_out}
source "$(dirname "$0")/gpu_setup.sh"
cd "$(dirname "$0")/.."
t_start=$(date +%s)
bash scripts/build_flashmla.sh > "$out/build.log" 2>&1; echo "build rc=$? $(tail -1 "$out/build.log")" | tee "$out/log.txt"
export PYTHONPATH="$PWD/third_party/build/FlashMLA:$PYTHONPATH"
export TRITON_CACHE_DIR="$PWD/third_party/build/triton-tune-cache"
mkdir -p "$TRITON_CACHE_DIR" "$PWD/third_party/build/triton-tune-work"
left=$(( t_start + ${DEADLINE_S:-540} - $(date +%s) ))
timeout -k 10 $(( left - 5 )) python3 scripts/triton_tune.py --work "$PWD/third_party/build/triton-tune-work" --deadline-s $(( left - 45 )) \
  ${RESUME:+--resume} 2>&1 | tee -a "$out/log.txt" | grep -v "^\[.*: start$"
echo "triton_tune rc=${PIPESTATUS[0]} total $(( $(date +%s) - t_start ))s" | tee -a "$out/log.txt"
python3 scripts/triton_tune.py --work "$PWD/third_party/build/triton-tune-work" --summary-only > /dev/null 2>&1
cp "$PWD/third_party/build/triton-tune-work"/summary.txt "$PWD/third_party/build/triton-tune-work"/tune.json "$PWD/third_party/build/triton-tune-work"/tune.jsonl "$out/" 2>/dev/null
