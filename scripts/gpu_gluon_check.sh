#!/usr/bin/env bash
# The warp-specialized Gluon decode and prefill kernels against the Triton kernels and FlashMLA, in one device
# call of 1-2 minutes on one H200 (48-78 s on 2026-12-03) (issue 23, item 5; scripts/gluon_check.py says what it checks).
# FlashMLA comes from third_party/prebuilt (or is built: scripts/build_flashmla.sh); without it the
# check runs with no FlashMLA column. Triton's cache lives in third_party/build/gluon-check-cache
# (ignored), so a second call on a warm machine skips the compiles; RESUME=1 finishes a cut-off call.
# Under $OUT: summary.txt, check.json, check.jsonl, log.txt, build.log.
#   bash scripts/gpu_gluon_check.sh   (carry third_party/prebuilt, third_party/wheels and the two
#                                      source archives third_party/*.tar.gz)
set -uo pipefail
out=${OUT:-/tmp/gpu_gluon_check_out}
source "$(dirname "$0")/gpu_setup.sh"
cd "$(dirname "$0")/.."
t_start=$(date +%s)
bash scripts/build_flashmla.sh > "$out/build.log" 2>&1; echo "build rc=$? $(tail -1 "$out/build.log")" | tee "$out/log.txt"
export PYTHONPATH="$PWD/third_party/build/FlashMLA:$PYTHONPATH"
export TRITON_CACHE_DIR="$PWD/third_party/build/gluon-check-cache"
work="$PWD/third_party/build/gluon-check-work"
mkdir -p "$TRITON_CACHE_DIR" "$work"
python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0))' 2>&1 | tee -a "$out/log.txt"
left=$(( t_start + ${DEADLINE_S:-300} - $(date +%s) ))
timeout -k 10 $(( left - 5 )) python3 scripts/gluon_check.py --out "$work" --deadline-s $(( left - 40 )) \
  ${RESUME:+--resume} 2>&1 | tee -a "$out/log.txt" | grep -v "^\[.*: start$"
echo "gluon_check rc=${PIPESTATUS[0]} total $(( $(date +%s) - t_start ))s" | tee -a "$out/log.txt"
if [ ! -s "$work/summary.txt" ] || [ "$work/summary.txt" -ot "$work/check.jsonl" ]; then  # cut off before its summary
  python3 - "$work" <<'PY' 2>&1 | tail -3 >> "$out/log.txt"
import sys; sys.path.insert(0, "scripts"); import gluon_check; from pathlib import Path; gluon_check.summary(Path(sys.argv[1]))
PY
fi
cp "$work"/summary.txt "$work"/check.json "$work"/check.jsonl "$out/" 2>/dev/null
