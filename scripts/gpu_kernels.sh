#!/usr/bin/env bash
# The `pr` preset with the fused Triton attention kernels (issue 12), in one device call: the step
# timeouts add up to 450 s, under 9 minutes with the start-up and the packing.
#   1. `pr --kernel triton --check` on the 8192-block cases: outputs bit for bit across the six
#      variants and eager vs CUDA Graph, and the float64 oracle where it fits.
#   2. the whole `pr` preset with the triton kernel (no --check: the outputs were checked in 1).
#   3. `dsabench report` on it: evidence with the roofline table and the absolute saving.
# A step cut off by its timeout keeps its finished cases; `gpu_kernels.sh resume` finishes step 2
# in a second call while the machine is still warm (the run directories live in /tmp there).
# Back under $OUT (at most 8 files, each under 16 MiB): env.txt, check.log, pr.log, report.log,
# runs.tar.gz (run directories without traces), traces.tar.gz (when small enough),
# evidence.tar.gz, summary.txt.
# Wheels for packages the GPU image lacks (nvtx, msgspec) travel in third_party/wheels/ (the lead carries them).
set -uo pipefail
stage=${1:-all}
out=${OUT:-/tmp/gpu_kernels_out}
source "$(dirname "$0")/gpu_setup.sh"  # wheels from third_party/wheels/, the package importable
python3 -c 'import dsabench, torch, triton; print("dsabench", dsabench.__version__, "torch", torch.__version__, "triton", triton.__version__)' \
  | tee "$out/env.txt" || exit 1
nvidia-smi --query-gpu=name,uuid,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,temperature.gpu,power.draw \
  --format=csv >> "$out/env.txt" 2>&1
runs=/tmp/gpu_kernels_runs
tag=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr -cd 'A-Za-z0-9' | tr 'A-Z' 'a-z' | sed 's/nvidia//')
check_id=pr-n8192-check-triton-${tag:-gpu}
pr_id=pr-triton-${tag:-gpu}
started=$(date +%s)
check_rc=skipped pr_rc=skipped report_rc=skipped

if [ "$stage" = all ]; then
  timeout 120 python3 -m dsabench run pr --backend torch --kernel triton --check --filter '\.n8192\.' \
    --out $runs --run-id "$check_id" > "$out/check.log" 2>&1
  check_rc=$?
  timeout 270 python3 -m dsabench run pr --backend torch --kernel triton --out $runs --run-id "$pr_id" \
    > "$out/pr.log" 2>&1
  pr_rc=$?
elif [ "$stage" = resume ]; then
  timeout 400 python3 -m dsabench run --resume "$runs/$pr_id" >> "$out/pr.log" 2>&1
  pr_rc=$?
else
  echo "usage: gpu_kernels.sh [all|resume]"; exit 2
fi

rm -rf /tmp/gpu_kernels_evidence
if [ -f "$runs/$pr_id/cases.jsonl" ]; then
  timeout 60 python3 -m dsabench report "$runs/$pr_id" --out /tmp/gpu_kernels_evidence > "$out/report.log" 2>&1
  report_rc=$?
  [ -d /tmp/gpu_kernels_evidence ] && tar -C /tmp -czf "$out/evidence.tar.gz" gpu_kernels_evidence
fi
# Run directories without their traces (manifests and records: everything the report reads),
# then the traces only when they fit in one file under 16 MiB.
tar -C $runs --exclude='*/traces/*' -czf "$out/runs.tar.gz" . 2>/dev/null
rm -f /tmp/gpu_kernels_traces.tar.gz
(cd $runs && find . -path '*/traces/*' -type f -print0 | tar --null -T - -czf /tmp/gpu_kernels_traces.tar.gz) 2>/dev/null
if [ -f /tmp/gpu_kernels_traces.tar.gz ] && [ "$(stat -c %s /tmp/gpu_kernels_traces.tar.gz)" -lt 15728640 ]; then
  mv /tmp/gpu_kernels_traces.tar.gz "$out/traces.tar.gz"
else
  traces_note="traces not brought back (over 15 MiB packed); they are in $runs/*/traces on the machine"
fi

{
  echo "gpu_kernels.sh $stage: $(( $(date +%s) - started )) s; exit codes: check $check_rc, pr $pr_rc, report $report_rc (124: cut off by its timeout)"
  [ -f "$out/check.log" ] && grep -E '^(correctness|oracle|non-finite)|records in|MISMATCH|over the bound' "$out/check.log"
  grep -E 'records in|^incomplete|^attention kernel' "$out/pr.log" 2>/dev/null | tail -3
  python3 - "$runs/$pr_id" <<'PY' 2>/dev/null
import json, pathlib, sys
run = pathlib.Path(sys.argv[1])
m = json.loads((run / "manifest.json").read_text())
for w in m.get("workers") or []:
    print("worker kernel", w.get("kernel"), "ceilings", w.get("ceilings"))
rows = [json.loads(l) for l in (run / "cases.jsonl").read_text().splitlines() if l.strip()]
ok = [r for r in rows if r["status"] == "ok"]
print(f"{len(rows)} records, {len(ok)} ok, kernels {sorted({r.get('kernel') for r in rows})}")
for r in ok:
    p = r["params"]
    if p["phase"] == "decode" and p["batch"] == 64 and p["variant"] in ("baseline", "patched"):
        s = sorted(r["timing"]["samples_ms"])
        dec = (r.get("trace") or {}).get("phase_kernel_ms", {}).get("decode")
        print(f"  {r['case_id']}: median {s[len(s) // 2]:.4f} ms, decode phase (device) "
              f"{dec if dec is None else round(dec, 4)} ms")
PY
  [ -n "${traces_note:-}" ] && echo "$traces_note"
  [ "$pr_rc" = 124 ] && echo "step 2 was cut off: finish it with  scripts/gpu_kernels.sh resume  (same warm machine)"
} | tee "$out/summary.txt"
