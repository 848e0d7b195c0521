# Sourced by the GPU scripts: the wheels the GPU image lacks (carried in third_party/wheels/) and the package
# importable without installing it (suite/ is the source root of the package dsabench). Needs $out.
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if ls third_party/wheels/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site third_party/wheels/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
fi
export PYTHONPATH="$PWD/suite:${PYTHONPATH:-}"
