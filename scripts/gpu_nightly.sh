#!/usr/bin/env bash
# The whole nightly preset on nvidia-h200-x2 (issue 14) and the `pr` preset with the fused Triton
# kernels (issue 12), in two device calls on the same machine kind:
#   one:  nightly on GPU 0 alone (the one-GPU wall time) and, at the same time on GPU 1, pr with
#         --kernel triton (each run has its own GPU; they share the host's 32 cores)
#   two:  nightly on GPUs 0 and 1 (the two-GPU wall time), then the tests that need CUDA
#   all:  one, then two with whatever time the call has left (DEADLINE_S, default 575 s)
#   ratio: nightly on GPU 0 alone, then nightly on GPUs 0,1, nothing else on the host, each with
#         its own empty Triton cache (both cold, as on a fresh CI machine); run ids $RUN_TAG-*
#         (default c)
#   resume DIR: finish a run directory carried back in the tree (a run cut by its limit)
# A run is stopped by SIGINT at its limit, so it writes its manifest's wall-time attempt and keeps
# every finished case; `resume` finishes it. Back under $OUT: env.txt, walls.txt, NAME.log,
# NAME.tar.gz (each run directory with its worker logs, without traces), pr traces when small.
set -uo pipefail
stage=${1:?usage: gpu_nightly.sh all|one|two|ratio|resume DIR}
out=${OUT:-/tmp/gpu_nightly_out}
source "$(dirname "$0")/gpu_setup.sh"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
python3 -c 'import dsabench, torch, triton; print("dsabench", dsabench.__version__, "torch", torch.__version__, "triton", triton.__version__, "gpus", torch.cuda.device_count())' \
  | tee -a "$out/env.txt" || exit 1
nvidia-smi --query-gpu=index,name,uuid,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw \
  --format=csv >> "$out/env.txt" 2>&1
nproc >> "$out/env.txt"
runs=/tmp/gpu_runs
timed() {  # timed NAME SECONDS dsabench-args...: the command's wall seconds into $out/walls.txt
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s.%N)
  timeout -s INT -k 30 "$limit" python3 -m dsabench "$@" > "$out/$name.log" 2>&1; local rc=$?
  local t1=$(date +%s.%N)
  python3 -c "import sys; print(f'{sys.argv[1]} rc={sys.argv[2]} wall_s={float(sys.argv[4]) - float(sys.argv[3]):.1f}')" \
    "$name" "$rc" "$t0" "$t1" | tee -a "$out/walls.txt"
  grep -E "^wall time|^  worker start-ups|records in|^incomplete|^interrupted" "$out/$name.log"
}
pack() {  # pack RUN_ID: the run directory without its traces
  [ -d "$runs/$1" ] && tar -C "$runs" --exclude="$1/traces" -czf "$out/$1.tar.gz" "$1"
}
t_start=$(date +%s)
left() { echo $(( t_start + ${DEADLINE_S:-575} - $(date +%s) )); }  # seconds left in this device call
case "$stage" in
  all)  # one and two in one call when they fit: each step gets what the call has left
    timed nightly-1gpu 380 run nightly --backend torch --devices 0 --out $runs --run-id nightly-1gpu-h200 &
    timed pr-triton 380 run pr --backend torch --kernel triton --devices 1 --out $runs --run-id pr-triton-h200 &
    wait
    pack nightly-1gpu-h200
    pack pr-triton-h200
    limit=$(( $(left) - 45 ))
    if [ $limit -gt 60 ]; then
      timed nightly-2gpu $limit run nightly --backend torch --devices 0,1 --out $runs --run-id nightly-2gpu-h200
      pack nightly-2gpu-h200
    fi
    limit=$(( $(left) - 15 ))
    if [ $limit -gt 60 ] && [ -z "${SKIP_TESTS:-}" ]; then
      timeout $limit python3 -m pytest -q -p no:cacheprovider tests/test_triton_kernels.py \
        tests/test_failures.py::test_on_a_gpu_a_refused_host_copy_fails_capture_and_the_same_worker_measures_the_next_graph_case \
        tests/test_kernel_option.py::test_the_triton_kernel_runs_end_to_end_bit_identical_across_variants_and_eager_vs_graph \
        > "$out/gpu-tests.log" 2>&1
      tail -5 "$out/gpu-tests.log"
    fi
    ;;
  one)
    timed nightly-1gpu 560 run nightly --backend torch --devices 0 --out $runs --run-id nightly-1gpu-h200 &
    timed pr-triton 560 run pr --backend torch --kernel triton --devices 1 --out $runs --run-id pr-triton-h200 &
    wait
    pack nightly-1gpu-h200
    pack pr-triton-h200
    (cd $runs/pr-triton-h200 && tar -czf /tmp/pr-traces.tar.gz traces) 2>/dev/null
    [ -f /tmp/pr-traces.tar.gz ] && [ "$(stat -c %s /tmp/pr-traces.tar.gz)" -lt 15000000 ] && mv /tmp/pr-traces.tar.gz "$out/"
    ;;
  two)
    timed nightly-2gpu 440 run nightly --backend torch --devices 0,1 --out $runs --run-id nightly-2gpu-h200
    pack nightly-2gpu-h200
    timeout 130 python3 -m pytest -q -p no:cacheprovider tests/test_triton_kernels.py \
      tests/test_failures.py::test_on_a_gpu_a_refused_host_copy_fails_capture_and_the_same_worker_measures_the_next_graph_case \
      tests/test_kernel_option.py::test_the_triton_kernel_runs_end_to_end_bit_identical_across_variants_and_eager_vs_graph \
      > "$out/gpu-tests.log" 2>&1
    tail -5 "$out/gpu-tests.log"
    ;;
  ratio)
    tag=${RUN_TAG:-c}
    TRITON_CACHE_DIR=/tmp/triton-$tag-1gpu timed nightly-1gpu 340 run nightly --backend torch --devices 0 --out $runs \
      --run-id $tag-nightly-1gpu-h200
    pack $tag-nightly-1gpu-h200
    limit=$(( $(left) - 20 ))
    TRITON_CACHE_DIR=/tmp/triton-$tag-2gpu timed nightly-2gpu $limit run nightly --backend torch --devices 0,1 \
      --out $runs --run-id $tag-nightly-2gpu-h200
    pack $tag-nightly-2gpu-h200
    ;;
  resume)
    dir=${2:?usage: gpu_nightly.sh resume DIR}
    name=$(basename "$dir")
    mkdir -p $runs && cp -r "$dir" $runs/
    timed "$name-resume" 560 run --resume "$runs/$name"
    pack "$name"
    ;;
  *) echo "usage: gpu_nightly.sh all|one|two|ratio|resume DIR"; exit 2 ;;
esac
