#!/usr/bin/env bash
# The first GPU evidence, in one device call per stage (see results/README.md).
#   stage "run1": env, smoke with --check on the GPU, then shard 1/2 of the `pr` preset (torch backend)
#   stage "run2": shard 2/2 of `pr`, 5 repeats of one case, and the reference timers (triton, cuda-bench)
#   stage "run3": the eager cases of `pr` with each case's variants interleaved in one worker
#   stage "run4": a worker pinned with --devices 0, and an out-of-memory case then one that fits
#   stage "run5": smoke --check and the 8192-block pr cases again after the review fixes
#   stage "copy": the time a full copy of the pr preset's caches takes on this card
# Wheels for packages the GPU image lacks (nvtx, cuda-bench) travel in third_party/wheels/.
set -uo pipefail
stage=${1:?usage: gpu_proof.sh run1|run2|run3|run4|run5|copy}
out=${OUT:-/tmp/gpu_proof_out}
source "$(dirname "$0")/gpu_setup.sh"  # wheels from third_party/wheels/, the package importable
python3 -c 'import dsabench, nvtx, torch; print("dsabench", dsabench.__version__, "torch", torch.__version__)' || exit 1
nvidia-smi --query-gpu=name,uuid,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,temperature.gpu,power.draw --format=csv | tee "$out/nvidia-smi.csv"
runs=/tmp/gpu_runs
# Each stage stays inside one device call (10 minutes): every step has its own time limit, and
# the run directories are packed even when a step was cut off (finished cases are on disk).
pack() { tar -C $runs -czf "$out/$1" . 2>/dev/null; }
case "$stage" in
run1)
  timeout 60 python3 -m dsabench env --backend torch > "$out/env.txt" 2>&1; tail -6 "$out/env.txt"
  timeout 150 python3 -m dsabench run smoke --backend torch --check --out $runs --run-id smoke-torch-h100 > "$out/smoke.log" 2>&1
  grep -v -i warn "$out/smoke.log" | tail -22
  timeout 330 python3 -m dsabench run pr --backend torch --check --shard 1/2 --out $runs --run-id pr-torch-h100 > "$out/pr1.log" 2>&1
  grep -v -i warn "$out/pr1.log" | tail -12
  pack run1.tar.gz
  ;;
run2)
  timeout 330 python3 -m dsabench run pr --backend torch --check --shard 2/2 --out $runs --run-id pr-torch-h100 > "$out/pr2.log" 2>&1
  grep -v -i warn "$out/pr2.log" | tail -12
  for i in 1 2 3 4 5; do
    timeout 40 python3 -m dsabench run pr --backend torch --filter 'decode\.b64\..*n65536.*scalar-view\.graph' \
      --profile-iters 0 --out $runs --run-id repeat-$i 2>&1 | grep -v -i warn | grep "scalar-view.graph" | tail -1
  done | tee "$out/repeats.log"
  timeout 200 python3 scripts/gpu_reference.py --out "$out" > "$out/reference.log" 2>&1; tail -25 "$out/reference.log"
  pack run2.tar.gz
  ;;
run3)
  # The eager cases again, now with the variants of each case interleaved in one worker.
  timeout 420 python3 -m dsabench run pr --backend torch --check --filter '\.eager$' --out $runs \
    --run-id pr-eager-interleaved-torch-h100 > "$out/pr3.log" 2>&1
  grep -v -i warn "$out/pr3.log" | tail -14
  timeout 60 python3 -m dsabench compare --variants $runs/pr-eager-interleaved-torch-h100 > "$out/compare3.txt" 2>&1
  timeout 60 python3 -m dsabench compare --variants $runs/pr-eager-interleaved-torch-h100 \
    --base-variant none+contiguous --cand-variant none+view >> "$out/compare3.txt" 2>&1
  cut -c1-160 "$out/compare3.txt"
  pack run3.tar.gz
  ;;
run4)
  # Worker pinned by --devices (CUDA_VISIBLE_DEVICES, index and UUID in every record), and an
  # out-of-memory case recorded as such before a case that fits.
  timeout 200 python3 -m dsabench run smoke --backend torch --devices 0 --filter 'decode\.b1\.c256.*(tensor-contiguous|scalar-view)' \
    --out $runs --run-id devices0-torch-h100 > "$out/devices0.log" 2>&1
  grep -v -i warn "$out/devices0.log" | tail -8
  timeout 200 python3 -m dsabench run scripts/oom_probe.toml --backend torch --out $runs --run-id oom-probe-torch-h100 \
    > "$out/oom.log" 2>&1
  grep -v -i warn "$out/oom.log" | tail -6
  python3 - "$runs" <<'PY'
import json, sys, pathlib
for name in ("devices0-torch-h100", "oom-probe-torch-h100"):
    for line in (pathlib.Path(sys.argv[1]) / name / "cases.jsonl").read_text().splitlines():
        r = json.loads(line)
        print(name, r["status"], r["device"].get("index"), r["device"].get("uuid"), r["worker"], r["message"][:160])
PY
  pack run4.tar.gz
  ;;
run5)
  # After the review fixes: graph outputs checked from the graph's own output, cold mode synced
  # after the flush, interleaved variants sharing every round.
  timeout 200 python3 -m dsabench run smoke --backend torch --check --out $runs --run-id smoke-v2-torch-h100 > "$out/smoke-v2.log" 2>&1
  grep -v -i warn "$out/smoke-v2.log" | tail -16
  timeout 300 python3 -m dsabench run pr --backend torch --check --filter '\.n8192\.' --out $runs --run-id pr-n8192-v2-torch-h100 > "$out/pr-n8192-v2.log" 2>&1
  grep -v -i warn "$out/pr-n8192-v2.log" | tail -8
  pack run5.tar.gz
  ;;
copy)
  # The cost of the baseline's layout copy on this card (torch's .contiguous() copies nothing).
  timeout 300 python3 scripts/copy_bandwidth.py --out "$out" 2>&1 | grep -v -i warn | tail -6
  ;;
esac
