#!/usr/bin/env bash
# Issue 22's targets under the chosen default, in one H200 call of at most ~9 minutes (kind
# nvidia-h200, carry third_party/wheels): pr's decode eager cases at 8192 and 65536 blocks (b32 and
# b64 at 65536, b64 at 8192: 18 cases, 3 worker processes each, the Triton kernel), six runs
# alternating the default and the alternative: auto-1 off-1 auto-2 off-2 auto-3 off-3 (no --pin:
# the default, `--pin auto`, which pins on a GPU host; then `--pin off`). Then, on the host,
# scripts/host_confirm.py: per mode, the between-process spread of each case's steady-chunk median
# (target <= 3%), baseline/patched from steady rounds across the three runs (target: within 2%),
# and each A/A pair of a mode through `dsabench compare` (noisy cases, false calls).
# Everything lands under $OUT: env.txt, walls.txt, NAME.log per run, confirm/ (summary.txt, every
# compare's JSON and text), confirm-runs.tar.gz (the run directories).
#   bash scripts/gpu_host_confirm.sh
# Environment: DEADLINE_S (530: a run is stopped by SIGINT at what the call has left, and one that
# would start with under 45 s left is skipped; the summary keeps 40 s), MAX_TIME_S (1.8: per case,
# split over its processes), PROFILE_ITERS (0: a traced first pass costs ~4 s a group, and processes
# traced first showed no residue on 2026-12-03), KERNEL (triton), BACKEND (torch), PRESET (pr),
# FILTER, REPEATS (the preset's), SEQUENCE (the runs in order: auto-1 off-1 auto-2 off-2 auto-3 off-3;
# auto-1 auto-2 auto-3 off-1 measures the default three times first), DEFAULT_ARGS (empty: the default; a CPU check passes --pin probe
# to take the pinned path where auto resolves to off), RUNS_DIR (a new temporary directory).
# A CPU check of the whole flow (its figures mean nothing):
#   PATH=$PWD/.venv/bin:$PATH OUT=/tmp/confirm-check PRESET=smoke BACKEND=torch KERNEL=reference \
#   FILTER='^decode\.b2\.c128\.p0\.n(16|64)\.bs64\.ch1\..*\.hot\.(tensor-contiguous|scalar-view)\.eager$' \
#   REPEATS=3 MAX_TIME_S=0.3 DEFAULT_ARGS='--pin probe' bash scripts/gpu_host_confirm.sh
set -uo pipefail
out=${OUT:-/tmp/gpu_host_confirm_out}
source "$(dirname "$0")/gpu_setup.sh"
filter=${FILTER:-'^decode\.(b32|b64)\.c4096\.p0\.n(8192|65536)\.bs64\..*\.eager$'}
max_time=${MAX_TIME_S:-1.8}
deadline=${DEADLINE_S:-530}
runs=${RUNS_DIR:-$(mktemp -d /tmp/gpu_host_confirm_runs.XXXXXX)}
mkdir -p "$runs"
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/triton-host-confirm}
t_start=$(date +%s)
left() { echo $(( t_start + deadline - $(date +%s) )); }
{
  python3 -c 'import dsabench, torch; print("dsabench", dsabench.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())'
  nvidia-smi --query-gpu=index,name,uuid,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv 2>&1
  echo "nproc $(nproc)"; lscpu 2>/dev/null | grep -E "Model name|Thread|Core|Socket|Hypervisor"
} > "$out/env.txt"
cat "$out/env.txt"
extra=(${REPEATS:+--repeats "$REPEATS"})
measure() {  # measure NAME [--pin MODE]: one run, stopped by SIGINT at what the call has left
  local name=$1; shift
  local limit=$(( $(left) - 40 ))
  if [ "$limit" -lt 45 ]; then echo "$name skipped: $(left) s left" | tee -a "$out/walls.txt"; return; fi
  local t0; t0=$(date +%s)
  timeout -s INT -k 20 "$limit" python3 -m dsabench run "$preset" --backend "$backend" --kernel "${KERNEL:-triton}" \
    --filter "$filter" --max-time-s "$max_time" --profile-iters "${PROFILE_ITERS:-0}" "${extra[@]}" "$@" \
    --out "$runs" --run-id "$name" > "$out/$name.log" 2>&1
  echo "$name rc=$? wall_s=$(( $(date +%s) - t0 )) pin=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["options"]["pin"])' "$runs/$name/manifest.json" 2>/dev/null)" \
    | tee -a "$out/walls.txt"
  grep -E "^pin: |^wall time|records in|^incomplete|^interrupted" "$out/$name.log"
}
for name in ${SEQUENCE:-auto-1 off-1 auto-2 off-2 auto-3 off-3}; do
  case "$name" in
    auto-*) measure "$name" ${DEFAULT_ARGS:-} ;;
    off-*) measure "$name" --pin off ;;
    *) echo "SEQUENCE: $name is neither auto-N nor off-N" >&2; exit 2 ;;
  esac
done
python3 scripts/host_confirm.py "$runs" --out "$out/confirm" 2>&1 | tail -n 60
tar -C "$runs" --exclude="*/traces" -czf "$out/confirm-runs.tar.gz" .
echo "total wall_s=$(( $(date +%s) - t_start ))" | tee -a "$out/walls.txt"
