#!/usr/bin/env bash
# The paired gate measured on one H200 (issue 19, item 8's eager +25%; issue 22): `calibrate --paired`
# over pr's eager decode cases at 8192 blocks (FILTER), torch backend, the preset's repeats: RUNS runs,
# each timing the mirror, its A/A twin mirror+inject=0 and mirror+inject=F for F in INJECT in the same
# rounds of the same worker processes, so the host's slow mode falls on both sides of every pair.
# Then, per run and per F, `compare --impls --fail-on-regression` with its JSON and exit code: what a
# CI gating eager cases within one run would have done.
# Everything lands under $OUT: env.txt, calibrate.log, calibration.*, compare/*.json|txt,
# compare/exit-codes.txt, paired-runs.tar.gz (the run directories, without traces).
# Environment: BACKEND (torch), PRESET (pr; smoke for a CPU dry run), FILTER, INJECT (0.25,0.05),
# RUNS (3), MAX_TIME_S (0.6 per case, split over its processes), DEVICES (0; empty on a CPU dry run),
# REPEATS (unset: calibrate's default, 3), THRESHOLD (0.03; 'auto' for item 9's quiet graph cases),
# CAL_TIMEOUT_S (unset: none; a calibration cut off keeps the runs it finished, and they are judged).
# Run on one H200:  bash scripts/gpu_paired_gate.sh   (kind nvidia-h200; $OUT comes back)
set -uo pipefail
out=${OUT:-/tmp/gpu_paired_out}
source "$(dirname "$0")/gpu_setup.sh"
filter=${FILTER:-'^decode\.b64\.c4096\.p0\.n8192\..*\.eager$'}
inject=${INJECT:-0.25,0.05}
n_runs=${RUNS:-3}
max_time=${MAX_TIME_S:-0.6}
devices=${DEVICES-0}
runs=${RUNS_DIR:-/tmp/gpu_paired_runs}
threshold=${THRESHOLD:-0.03}
cut=(); [ -n "${CAL_TIMEOUT_S:-}" ] && cut=(timeout -k 10 "$CAL_TIMEOUT_S")
mkdir -p "$runs" "$out/compare"
record_env
t_start=$(date +%s)
dev=(); [ -n "$devices" ] && dev=(--devices "$devices")
"${cut[@]}" python3 -m dsabench calibrate "$preset" --paired --backend "$backend" "${dev[@]}" --filter "$filter" \
  --aa-runs "$n_runs" --inject "$inject" --repeats "${REPEATS:-3}" --max-time-s "$max_time" \
  --threshold "$threshold" --out "$runs" --run-id paired > "$out/calibrate.log" 2>&1
echo "calibrate rc=$? wall_s=$(( $(date +%s) - t_start ))" | tee "$out/walls.txt"
cp "$runs"/paired/calibration.* "$out/" 2>/dev/null
: > "$out/compare/exit-codes.txt"
for run in "$runs"/paired/paired*/; do
  name=$(basename "$run")
  for cand in mirror+inject=0 $(echo "$inject" | tr ',' '\n' | python3 -c 'import sys; print(" ".join(f"mirror+inject={float(x):g}" for x in sys.stdin.read().split()))'); do
    tag="$name-${cand#mirror+}"
    python3 -m dsabench compare --impls "$run" --base-impl mirror --cand-impl "$cand" --fail-on-regression \
      --threshold "$threshold" \
      --json "$out/compare/$tag.json" > "$out/compare/$tag.txt" 2>&1
    echo "$tag exit=$?" >> "$out/compare/exit-codes.txt"
  done
done
cat "$out/compare/exit-codes.txt"
tar -C "$runs" --exclude="*/traces" -czf "$out/paired-runs.tar.gz" paired
echo "total wall_s=$(( $(date +%s) - t_start ))" | tee -a "$out/walls.txt"
