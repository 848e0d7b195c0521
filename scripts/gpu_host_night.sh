#!/usr/bin/env bash
# Issue 22 on one H200, two calls (kind nvidia-h200, carry third_party/wheels):
#   STAGE=a bash scripts/gpu_host_night.sh   # which probe sees the slow chunks (scripts/host_probes_gpu.py,
#                                            # PROBE_PROCS processes of PROBE_S seconds), then the nightly's
#                                            # eager cases once (run id night-a)
#   STAGE=b bash scripts/gpu_host_night.sh   # the nightly's eager cases again (night-b), on whatever machine
#                                            # the next call gets: a nightly A/A pair as CI has one, two starts apart
# The nightly as a user runs it (its preset's 2 processes a case, the profiled pass), the Triton kernel,
# `--filter '\.eager$'` (its 138 eager cases of 222). Back under $OUT: log.txt and host-night-STAGE.tar.gz
# (probes/, env.txt, the run's log and directory without traces). Compare on any machine:
#   dsabench compare night-a night-b
# Environment: NIGHT_S (360: the run's limit, stopped by SIGINT), PROBE_PROCS (2), PROBE_S (25); CONFIRM_S
# (unset: none) then runs scripts/gpu_host_confirm.sh with that deadline, CONFIRM_SEQUENCE (auto-1 auto-2 auto-3).
set -uo pipefail
stage=${STAGE:?STAGE=a or STAGE=b}
final=${OUT:-/tmp/gpu_host_night_out}
out=/tmp/host-night
mkdir -p "$out" "$final"
source "$(dirname "$0")/gpu_setup.sh"
record_env
export TRITON_CACHE_DIR=/tmp/triton-host-night
if [ "$stage" = a ]; then
  mkdir -p "$out/probes"
  for i in $(seq 1 "${PROBE_PROCS:-2}"); do
    say "probes process $i"
    timeout 120 python3 scripts/host_probes_gpu.py run --out "$out/probes/p$i.jsonl" --seconds "${PROBE_S:-25}" \
      > "$out/probes/p$i.log" 2>&1 || tail -5 "$out/probes/p$i.log"
  done
  python3 scripts/host_probes_gpu.py summary "$out"/probes/p*.jsonl 2>&1 | tee "$out/probes/summary.txt"
fi
run_id=night-$stage
say "nightly eager $run_id"
timeout -s INT -k 30 "${NIGHT_S:-360}" python3 -m dsabench run nightly --backend torch --kernel triton --filter '\.eager$' \
  --out /tmp/night_runs --run-id "$run_id" > "$out/$run_id.log" 2>&1
echo "rc=$?" >> "$out/$run_id.log"
tail -n 12 "$out/$run_id.log"
if [ -n "${CONFIRM_S:-}" ]; then  # then issue 22's targets on pr's eager decode cases, three runs of the default
  say "host confirm"
  OUT="$out/confirm-out" RUNS_DIR=/tmp/hc_runs DEADLINE_S="$CONFIRM_S" SEQUENCE="${CONFIRM_SEQUENCE:-auto-1 auto-2 auto-3}" \
    bash scripts/gpu_host_confirm.sh > "$out/confirm.log" 2>&1
  tail -n 8 "$out/confirm.log"
fi
say "done"
tar -C /tmp/night_runs --exclude="$run_id/traces" -czf "$out/$run_id.tar.gz" "$run_id" 2>/dev/null
cp "$out/log.txt" "$final/log.txt" 2>/dev/null
tar -C "$out" -czf "$final/host-night-$stage.tar.gz" .
