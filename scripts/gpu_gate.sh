#!/usr/bin/env bash
# The gate measured on one H200 (issue 19, item 8): `pr` decode at 8192 blocks with the preset's
# repeats (3 worker processes per case), torch backend, in one device call of at most ~9 minutes:
#   3 A/A runs (gate-aa0..2), +5% injected on every forward (gate-inj050), +1% on the CUDA Graph
#   cases (gate-inj010), +25% on the eager cases (gate-inj250) and +1.5% (gate-inj015), A/A and
#   injected runs alternating so slow drift of the machine falls on every kind (about 50-60 s a run
#   on an H200: 3 worker start-ups of ~5 s, 12 cases x 3 processes); each run is marked as
#   calibrate's (`--calibration gate`), so no history or dashboard takes it for a measurement.
# Then, on the host (scripts/gate_rejudge.sh), every comparison with `compare --json` (3% band, and
# --threshold auto), the exit code of `--fail-on-regression`, `calibrate --no-run` over the A/A, +5%
# and +1.5% runs, and gate-summary.txt: per kind of pair, how many cases were called slower / faster
# / same / undecided, and what the eager verdicts rested on.
# Everything lands under $OUT: env.txt, walls.txt, NAME.log per run, compare/*.json|txt,
# calibration.*, gate-summary.txt, gate-runs.tar.gz (the run directories, without traces).
# Environment: BACKEND (torch), FILTER (pr's 8192-block decode cases), MAX_TIME_S (per case, split
# over its processes; 0.6), DEADLINE_S (450: a run is stopped by SIGINT at it and one that would
# start after it is skipped; the compares, about a minute, run on what exists), DEVICES (0; empty
# on a CPU dry run), PRESET (pr; smoke for a CPU dry run), REPEATS (unset: the preset's).
# Run on one H200:  bash scripts/gpu_gate.sh   (kind nvidia-h200; $OUT comes back)
set -uo pipefail
out=${OUT:-/tmp/gpu_gate_out}
source "$(dirname "$0")/gpu_setup.sh"
filter=${FILTER:-'^decode\.b64\.c4096\.p0\.n8192\.'}
max_time=${MAX_TIME_S:-0.6}
devices=${DEVICES-0}
deadline=${DEADLINE_S:-450}
runs=${RUNS_DIR:-/tmp/gpu_gate_runs}/gate
mkdir -p "$runs" "$out/compare"
record_env
t_start=$(date +%s)
left() { echo $(( t_start + deadline - $(date +%s) )); }
dev=(); [ -n "$devices" ] && dev=(--devices "$devices")
dev+=(${REPEATS:+--repeats "$REPEATS"})  # the preset's repeats unless REPEATS is set (a CPU dry run of smoke)
measure() {  # measure NAME INJECT FILTER: one run of pr's cases, stopped by SIGINT at what the call has left
  local name=$1 inject=$2 flt=$3 limit; limit=$(( $(left) - 20 ))
  if [ "$limit" -lt 30 ]; then echo "$name skipped: ${limit}s left" | tee -a "$out/walls.txt"; return; fi
  local t0; t0=$(date +%s.%N)
  local inj=(); [ "$inject" != 0 ] && inj=(--inject-delay "$inject")
  timeout -s INT -k 20 "$limit" python3 -m dsabench run "$preset" --backend "$backend" "${dev[@]}" --filter "$flt" \
    --max-time-s "$max_time" --profile-iters 0 --out "$runs" --run-id "$name" --calibration gate "${inj[@]}" \
    > "$out/$name.log" 2>&1
  local rc=$?
  python3 -c "import sys, time; print(f'{sys.argv[1]} rc={sys.argv[2]} wall_s={time.time() - float(sys.argv[3]):.1f}')" \
    "$name" "$rc" "$t0" | tee -a "$out/walls.txt"
  grep -E "^wall time|records in|^incomplete|^interrupted" "$out/$name.log"
}
measure gate-aa0 0 "$filter"
measure gate-inj050 0.05 "$filter"
measure gate-aa1 0 "$filter"
measure gate-inj010 0.01 "(?=.*\.graph$)$filter"
measure gate-aa2 0 "$filter"
measure gate-inj250 0.25 "(?=.*\.eager$)$filter"
measure gate-inj015 0.015 "$filter"
# ---- the compares (host only): scripts/gate_rejudge.sh, which judges committed runs again the same way ----
PYTHON=python3 PRESET="$preset" BACKEND="$backend" bash "$(dirname "$0")/gate_rejudge.sh" "$runs" "$out"
tar -C "$(dirname "$runs")" --exclude="*/traces" -czf "$out/gate-runs.tar.gz" gate
echo "total wall_s=$(( $(date +%s) - t_start ))" | tee -a "$out/walls.txt"
