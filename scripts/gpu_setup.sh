# Sourced by the GPU scripts: the wheels the GPU image lacks (carried in third_party/wheels/) and the package
# importable without installing it (suite/ is the source root of the package dsabench). Needs $out.
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if ls third_party/wheels/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site third_party/wheels/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
fi
export PYTHONPATH="$PWD/suite:${PYTHONPATH:-}"
# What the calibration scripts share: the backend and preset they measure, and env.txt (the versions
# and the GPU the runs were made with) written before anything is measured.
backend=${BACKEND:-torch}
preset=${PRESET:-pr}
record_env() {
  python3 -c 'import dsabench, torch; print("dsabench", dsabench.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())' \
    | tee "$out/env.txt" || exit 1
  nvidia-smi --query-gpu=index,name,uuid,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
    --format=csv >> "$out/env.txt" 2>&1
}
# The deadline helpers of the multi-step scripts: seconds left of DEADLINE_S (560) since sourcing,
# a step's limit (at most $1, leaving $2 for the steps after it), and a timestamped log line.
t_start=$(date +%s)
left() { echo $(( t_start + ${DEADLINE_S:-560} - $(date +%s) )); }
cap() { local l=$(( $(left) - $2 )); [ "$l" -lt "$1" ] && echo $(( l > 10 ? l : 10 )) || echo "$1"; }
say() { echo "[+$(( $(date +%s) - t_start ))s] $*" | tee -a "$out/log.txt"; }
