#!/usr/bin/env bash
# One H200 call (kind nvidia-h200, carry third_party/wheels) for issue 22's last figures, then the
# GPU-only kernel tests: (1) what the guest's CPU can say about its speed (scripts/host_cpu_check.py:
# its counters, a probe timeline on two CPUs), (2) issue 22's targets on three runs a mode
# (scripts/gpu_host_confirm.sh, SEQUENCE auto-1 off-1 auto-2 off-2 auto-3 off-3; every chunk now
# carries the probe after it and, where the guest counts them, its cycles, instructions and
# reference cycles), (3) tests/test_gluon_kernels.py and tests/test_triton_kernels.py on the GPU.
# Everything is in $OUT/host-cause.tar.gz (the device returns few files) and the log in $OUT/log.txt.
#   bash scripts/gpu_host_cause.sh
# Environment: CONFIRM_S (380: gpu_host_confirm.sh's DEADLINE_S), TESTS_S (120), OUT.
set -uo pipefail
final=${OUT:-/tmp/gpu_host_cause_out}
out=/tmp/host-cause
mkdir -p "$out" "$final"
source "$(dirname "$0")/gpu_setup.sh"
say "host check"
timeout 60 python3 scripts/host_cpu_check.py --seconds 4 > "$out/cpu-check.txt" 2>&1
cat "$out/cpu-check.txt"
say "host confirm"
OUT="$out/confirm-out" RUNS_DIR=/tmp/hc_runs DEADLINE_S=${CONFIRM_S:-380} SEQUENCE="auto-1 off-1 auto-2 off-2 auto-3 off-3" \
  bash scripts/gpu_host_confirm.sh > "$out/confirm.log" 2>&1
tail -n 30 "$out/confirm.log"
say "gpu tests"
timeout "${TESTS_S:-120}" python3 -m pytest -q -rxs -p no:cacheprovider tests/test_gluon_kernels.py tests/test_triton_kernels.py \
  > "$out/gpu-tests.log" 2>&1
echo "pytest rc=$?" >> "$out/gpu-tests.log"
tail -n 15 "$out/gpu-tests.log"
say "done"
cp "$out/log.txt" "$final/log.txt" 2>/dev/null
tar -C "$out" -czf "$final/host-cause.tar.gz" .
