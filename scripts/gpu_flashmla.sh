#!/usr/bin/env bash
# FlashMLA on the H200 in one device call (issue 23, phase 1), about 6-8 minutes:
#   1. build FlashMLA (scripts/build_flashmla.sh; skipped when up to date or prebuilt),
#   2. selftest: FlashMLA's own correctness checks at the V3.2 shape,
#   3. bisect: the non-finite decode outputs on the suite's inputs, one change at a time,
#   4. timing: FlashMLA vs the suite's Triton kernels (CUDA-graph medians),
#   5. summary: the tables (printed last) and every record as JSON.
# Each stage has its own time limit, all inside one deadline (DEADLINE_S, default 540 s after the
# start); a stage that fails or is cut off keeps its finished records and the next stage runs.
# A stage whose CUDA context broke (exit 3) is resumed in a fresh process after the item that broke it.
# Back under $OUT (7 files): summary.txt, flashmla.json, run.log, env.txt, build.log.gz,
# prebuilt/flash_mla_cuda.so[.gz] and prebuilt/stamp.json (put both in third_party/prebuilt/ here
# and carry that folder: a later call installs them instead of building).
#   run tool: command "bash scripts/gpu_flashmla.sh", carry the two source archives of third_party/.
set -uo pipefail
out=${OUT:-/tmp/gpu_flashmla_out}
source "$(dirname "$0")/gpu_setup.sh"  # $out made, PYTHONUNBUFFERED, suite/ on PYTHONPATH
cd "$(dirname "$0")/.."
t0=$(date +%s)
deadline=$(( t0 + ${DEADLINE_S:-540} ))
work=/tmp/flashmla_check
rm -rf "$work" && mkdir -p "$work"
log=$out/run.log
say() { echo "[$(date +%H:%M:%S) +$(( $(date +%s) - t0 ))s] $*" | tee -a "$log"; }
cap() {  # cap LIMIT RESERVE: LIMIT seconds, or what is left before the deadline less RESERVE
  local left=$(( deadline - $(date +%s) - $2 ))
  [ "$left" -lt "$1" ] && echo $(( left > 10 ? left : 10 )) || echo "$1"
}

{
  python3 -c 'import torch, triton, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__)'
  nvcc --version | tail -2
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv
  nproc
} > "$out/env.txt" 2>&1
cat "$out/env.txt" | tee -a "$log"

say "stage build"
timeout "$(cap 330 150)" bash scripts/build_flashmla.sh 2>&1 | tee -a "$log"
build_rc=${PIPESTATUS[0]}
say "build exit $build_rc"
[ -f third_party/build/build.log ] && gzip -c third_party/build/build.log > "$out/build.log.gz"
if [ -f third_party/build/prebuilt/flash_mla_cuda.so ]; then
  mkdir -p "$out/prebuilt"
  cp third_party/build/prebuilt/stamp.json "$out/prebuilt/"
  if [ "$(stat -c %s third_party/build/prebuilt/flash_mla_cuda.so)" -lt 16000000 ]; then
    cp third_party/build/prebuilt/flash_mla_cuda.so "$out/prebuilt/"
  else  # over what comes back from the GPU machine: compressed
    gzip -c third_party/build/prebuilt/flash_mla_cuda.so > "$out/prebuilt/flash_mla_cuda.so.gz"
  fi
fi

run_stage() {  # run_stage NAME LIMIT RESERVE
  local name=$1 rc=0 attempt resume=""
  for attempt in 1 2 3; do
    say "stage $name (attempt $attempt, limit $(cap "$2" "$3") s)"
    timeout "$(cap "$2" "$3")" python3 scripts/flashmla_check.py "$name" --work "$work" $resume 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 3 ] || break  # 3: the CUDA context broke; a fresh process resumes after that item
    resume=--resume
  done
  say "$name exit $rc$([ "$rc" -eq 124 ] && echo ' (cut off by its time limit)')"
}
run_stage selftest 75 200
run_stage bisect 110 120
run_stage timing 180 15

python3 scripts/flashmla_check.py summary --work "$work" > /dev/null 2>> "$log"
cp "$work/flashmla.json" "$work/summary.txt" "$out/" 2>/dev/null
say "done in $(( $(date +%s) - t0 )) s (build exit $build_rc)"
cat "$work/summary.txt" 2>/dev/null
