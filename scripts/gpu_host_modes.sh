#!/usr/bin/env bash
# Issue 22's host experiment on one H200 (kind nvidia-h200, 16 cores), one device call of <= 9 minutes:
# the eager decode forward (pr's b64 c4096, 8192 and 65536 blocks, Triton kernel, baseline and patched
# interleaved in chunks with the host evidence) in four processes, alternately never traced
# (--profile-iters 0) and traced first (--profile-iters 5); in each, blocks that cycle pinned to a
# probed core vs unpinned and a second worker's host load stopped vs running (scripts/host_modes_gpu.py).
# Then the summary (probe vs chunk time, disturbed shares, steady-round ratios per setting) and, if
# the call has time left, one `dsabench run --pin probe` of the same cases through the CLI.
# Back under $OUT: env.txt, summary.txt, hm-N.jsonl.gz (every chunk of process N), log.txt,
# pin-run.tar.gz (that run's directory).
#   bash scripts/gpu_host_modes.sh          (DEADLINE_S, default 530: seconds this call may take;
#   SWEEPS, BLOCK_S; HOST_MODES_ARGS=--check-on-cpu runs the same flow on a CPU, as a check of the script)
set -uo pipefail
out=${OUT:-/tmp/gpu_host_modes_out}
source "$(dirname "$0")/gpu_setup.sh"
t_start=$(date +%s)
left() { echo $(( t_start + ${DEADLINE_S:-530} - $(date +%s) )); }
{
  python3 -c 'import dsabench, torch, triton; print("dsabench", dsabench.__version__, "torch", torch.__version__, "triton", triton.__version__, "gpus", torch.cuda.device_count())'
  nvidia-smi --query-gpu=index,name,uuid,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv
  echo "nproc $(nproc)"; python3 -c 'import os; print("affinity", sorted(os.sched_getaffinity(0)))'
  lscpu 2>/dev/null | grep -E "Model name|Thread|Core|Socket|NUMA|MHz|Hypervisor|Virtualization"
  for c in /sys/devices/system/cpu/cpu[0-9]*; do echo "$(basename $c) siblings $(cat $c/topology/thread_siblings_list 2>/dev/null) freq $(cat $c/cpufreq/scaling_cur_freq 2>/dev/null)"; done
  ls /proc/thread-self/schedstat >/dev/null 2>&1 && echo "schedstat: yes" || echo "schedstat: no"
  grep -E "^cpu " /proc/stat
} > "$out/env.txt" 2>&1
cat "$out/env.txt"
export TRITON_CACHE_DIR=/tmp/triton-host-modes
for i in 0 1 2 3; do
  limit=$(( ($(left) - 50) / (4 - i) ))  # an even share of what is left; 50 s for the summary
  [ $limit -lt 45 ] && { echo "process $i skipped: $(left) s left" | tee -a "$out/log.txt"; continue; }
  [ $limit -gt 140 ] && limit=140
  traced=""; [ $((i % 2)) -eq 1 ] && traced="--traced"
  echo "process $i ${traced:-fresh} limit ${limit}s" | tee -a "$out/log.txt"
  t0=$(date +%s)
  timeout -s INT -k 10 $limit python3 scripts/host_modes_gpu.py run --out /tmp/hm-$i.jsonl $traced \
    --sweeps ${SWEEPS:-2} --block-s ${BLOCK_S:-4} ${HOST_MODES_ARGS:-} >> "$out/log.txt" 2>&1
  echo "process $i rc=$? wall $(( $(date +%s) - t0 ))s blocks $(wc -l < /tmp/hm-$i.jsonl 2>/dev/null)" | tee -a "$out/log.txt"
done
python3 scripts/host_modes_gpu.py summary /tmp/hm-*.jsonl > "$out/summary.txt" 2>> "$out/log.txt"
for f in /tmp/hm-*.jsonl; do gzip -c "$f" > "$out/$(basename $f).gz"; done
cat "$out/summary.txt"
if [ $(left) -gt 75 ]; then
  timeout -s INT -k 10 $(( $(left) - 10 )) python3 -m dsabench run pr --backend torch --kernel triton --pin probe \
    --filter 'decode\.b64\.c4096\.p0\.n8192\..*\.hot\.(tensor-contiguous|scalar-view)\.eager$' --max-time-s 3 \
    --profile-iters 0 --out /tmp/hm-runs --run-id pin-run >> "$out/log.txt" 2>&1
  echo "pin-run rc=$?" | tee -a "$out/log.txt"
  [ -d /tmp/hm-runs/pin-run ] && tar -C /tmp/hm-runs -czf "$out/pin-run.tar.gz" pin-run
  python3 -c 'import json,sys; w=json.load(open(sys.argv[1]))["workers"][0]; print("pin-run worker pin:", w.get("pin"))' \
    /tmp/hm-runs/pin-run/manifest.json 2>/dev/null | tee -a "$out/log.txt"
fi
echo "total $(( $(date +%s) - t_start ))s"
