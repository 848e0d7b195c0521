#!/usr/bin/env bash
# GPU evidence of one session, one device call per stage (commands and results in results/README.md).
#   stage "checks":  smoke and realistic with --check on GPU 0 (torch backend), eager and CUDA Graph
#   stage "multi":   one nightly subset (--shard 2/16) on GPU 0, on GPUs 0 and 1, and on GPU 1 alone:
#                    wall times for one vs two GPUs, and GPU 0 vs GPU 1 medians of the same cases
#   stage "all":     checks then multi (one call on nvidia-h200-x2)
#   stage "kernels": pr's 8192-block cases with the fused Triton kernels and --check, and its report
#                    (roofline, absolute saving); then calibrate on the same cases (3 A/A runs, +5% and
#                    +1.5% injected, 3 worker processes per case per run)
# Wheels for packages the GPU image lacks (nvtx, msgspec) travel in third_party/wheels/.
set -uo pipefail
stage=${1:?usage: gpu_session.sh checks|multi|all|kernels}
out=${OUT:-/tmp/gpu_session_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
if ls third_party/wheels/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site third_party/wheels/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
fi
mkdir -p /tmp/pkg && ln -sfn "$PWD/suite" /tmp/pkg/dsabench && export PYTHONPATH=/tmp/pkg:${PYTHONPATH:-}
python3 -c 'import dsabench, torch; print("dsabench", dsabench.__version__, "torch", torch.__version__, "gpus", torch.cuda.device_count())' || exit 1
nvidia-smi --query-gpu=index,name,uuid,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv | tee "$out/nvidia-smi.csv"
runs=/tmp/gpu_runs
db() { python3 -m dsabench "$@"; }
timed() {  # timed NAME SECONDS dsabench-args... : wall seconds into $out/walls.txt
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s.%N)
  timeout "$limit" python3 -m dsabench "$@" > "$out/$name.log" 2>&1; local rc=$?
  local t1=$(date +%s.%N)
  python3 -c "import sys; print(f\"{sys.argv[1]} rc={sys.argv[2]} wall_s={float(sys.argv[4]) - float(sys.argv[3]):.1f}\")" "$name" "$rc" "$t0" "$t1" | tee -a "$out/walls.txt"
}
checks() {
  timed smoke 170 run smoke --backend torch --devices 0 --check --out $runs --run-id smoke-check-h200
  grep -E "^correctness|^oracle|^non-finite|^not compared|records in" "$out/smoke.log"
  timed realistic 170 run realistic --backend torch --devices 0 --check --out $runs --run-id realistic-check-h200
  grep -E "^correctness|^oracle|^non-finite|^not compared|records in" "$out/realistic.log"
}
multi() {
  local sub=(run nightly --backend torch --shard 2/16 --out $runs)
  timed nightly16-gpu0 200 "${sub[@]}" --devices 0 --run-id nightly16-gpu0
  timed nightly16-gpu01 150 "${sub[@]}" --devices 0,1 --run-id nightly16-gpu01
  timed nightly16-gpu1 200 "${sub[@]}" --devices 1 --run-id nightly16-gpu1 --profile-iters 0
  for r in nightly16-gpu0 nightly16-gpu01 nightly16-gpu1; do tail -3 "$out/$r.log" | head -1; done
  timeout 60 python3 -m dsabench compare $runs/nightly16-gpu0-shard2of16 $runs/nightly16-gpu1-shard2of16 > "$out/gpu0_vs_gpu1.txt" 2>&1
  head -5 "$out/gpu0_vs_gpu1.txt"
}
kernels() {
  timed kcheck 150 run pr --backend torch --kernel triton --check --filter '\.n8192\.' --out $runs \
    --run-id pr-n8192-triton-h200
  grep -E "^correctness|^oracle|^non-finite|records in" "$out/kcheck.log"
  timeout 90 python3 -m dsabench report $runs/pr-n8192-triton-h200 --out /tmp/evidence-n8192-triton > "$out/kreport.log" 2>&1
  tar -C /tmp -czf "$out/evidence-n8192-triton.tar.gz" evidence-n8192-triton 2>/dev/null
  timed calibrate 420 calibrate pr --backend torch --kernel triton --filter '\.n8192\.' --aa-runs 3 \
    --inject 0.05,0.015 --repeats 3 --max-time-s 1.0 --out $runs --run-id calibrate-pr-n8192-h200
  tail -25 "$out/calibrate.log"
  cp $runs/calibrate-pr-n8192-h200/calibration.* "$out/" 2>/dev/null
}
calib() {  # the gate on one H200, sized to fit one call: baseline and patched eager (interleaved),
  # the four capturable graph variants; tensor graph variants fail capture (a restart each) and are left out
  timed calibrate 340 calibrate pr --backend torch --kernel triton \
    --filter '\.n8192\..*((tensor-contiguous|scalar-view)\.eager|(scalar|none)-(contiguous|view)\.graph)$' \
    --aa-runs 3 --inject 0.05,0.015 --repeats 2 --max-time-s 0.8 --out $runs --run-id calibrate-pr-n8192-h200
  grep -v "^\[" "$out/calibrate.log" | grep -v -i warn | tail -22
  cp $runs/calibrate-pr-n8192-h200/calibration.* "$out/" 2>/dev/null
}
case "$stage" in
  calib) calib ;;
  kernels) kernels ;;
  checks) checks ;;
  multi) multi ;;
  all) checks; multi ;;
esac
tar -C $runs --exclude='*/traces/*' -czf "$out/runs.tar.gz" . 2>/dev/null
[ "$stage" != kernels ] && tar -C $runs -czf "$out/traces-checks.tar.gz" $(cd $runs && ls -d smoke-* realistic-* 2>/dev/null) 2>/dev/null
rm -f "$out/calibration.svg" "$out/kreport.log"  # at most 8 files come back
ls -la "$out"
cat "$out/walls.txt"
rm -f "$out/walls.txt"  # printed above; at most 8 files come back
