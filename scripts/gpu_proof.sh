#!/usr/bin/env bash
# The first GPU evidence, in one device call per stage (see results/README.md).
#   stage "run":  env, smoke with --check on the GPU, then the `pr` preset, torch backend
#   stage "ref":  5 repeats of one case, and the reference timers (triton, cuda-bench)
# Wheels for packages the GPU image lacks (nvtx, cuda-bench) travel in .whl/.
set -uo pipefail
stage=${1:?usage: gpu_proof.sh run|ref}
out=${OUT:-/tmp/gpu_proof_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
fi
# The package without installing it: suite/ is the package dsabench.
mkdir -p /tmp/pkg && ln -sfn "$PWD/suite" /tmp/pkg/dsabench && export PYTHONPATH=/tmp/pkg:${PYTHONPATH:-}
python3 -c 'import dsabench, nvtx, torch; print("dsabench", dsabench.__version__, "torch", torch.__version__)' || exit 1
nvidia-smi --query-gpu=name,uuid,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,temperature.gpu,power.draw --format=csv | tee "$out/nvidia-smi.csv"
runs=/tmp/gpu_runs
case "$stage" in
run)
  python3 -m dsabench env --backend torch 2>&1 | tee "$out/env.txt" | tail -8
  python3 -m dsabench run smoke --backend torch --check --out $runs --run-id smoke-torch-h100 2>&1 | tail -30 | tee "$out/smoke.log"
  python3 -m dsabench run pr --backend torch --check --out $runs --run-id pr-torch-h100 2>&1 | tee "$out/pr.log" | tail -80
  tar -C $runs -czf "$out/runs.tar.gz" .
  ;;
ref)
  for i in 1 2 3 4 5; do
    python3 -m dsabench run pr --backend torch --filter 'decode\.b64\..*n65536.*scalar-view\.graph' \
      --profile-iters 0 --out $runs --run-id repeat-$i 2>&1 | tail -4
  done | tee "$out/repeats.log"
  timeout 300 python3 scripts/gpu_reference.py --out "$out" 2>&1 | tee "$out/reference.log" | tail -40
  tar -C $runs -czf "$out/repeats.tar.gz" .
  ;;
esac
