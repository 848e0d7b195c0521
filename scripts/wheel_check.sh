#!/usr/bin/env bash
# What a user gets from `pip install dsabench`: build the wheel, install it into a fresh virtual
# environment outside the checkout (no system site packages, so nothing of the checkout or of the
# bootstrap's .venv can stand in for a missing file), and from another directory run the commands a
# user runs: scenarios list, env, a small run (twice), compare, report, dashboard and export.
# The editable install of the tests cannot see a module or data file left out of the wheel; this can.
#
#   scripts/wheel_check.sh            # CI calls it after the tests (.ci/run)
#
# Downloads go to a wheelhouse ($DSABENCH_WHEELHOUSE, default .whl/ in the checkout, ignored by git):
# a second check downloads nothing it already holds, and the install itself reads only that folder.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WHEELHOUSE="${DSABENCH_WHEELHOUSE:-$REPO/.whl}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dsabench-wheel-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
say() { printf 'wheel check: %s\n' "$*"; }

say "building the wheel"
"$PYTHON" -m pip wheel --no-deps --quiet -w "$WORK/dist" "$REPO"
WHEEL="$(ls "$WORK"/dist/dsabench-*.whl)"

say "every module and preset of the source tree is in $(basename "$WHEEL")"
"$PYTHON" - "$REPO" "$WHEEL" <<'EOF'
import sys, zipfile
from pathlib import Path
repo, wheel = Path(sys.argv[1]), sys.argv[2]
package = repo / "suite" / "dsabench"
want = {f"dsabench/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py") if "__pycache__" not in p.parts}
want |= {f"dsabench/scenarios/{p.name}" for p in (repo / "scenarios").glob("*.toml")}
missing = sorted(want - set(zipfile.ZipFile(wheel).namelist()))
if missing:
    sys.exit(f"wheel check: {len(missing)} file(s) of the source tree missing from the wheel: {', '.join(missing[:10])}")
print(f"wheel check: {len(want)} modules and presets present")
EOF

say "downloading what the wheel needs (extras cpu, parquet) into $WHEELHOUSE"
mkdir -p "$WHEELHOUSE"
"$PYTHON" -m pip download --quiet --dest "$WHEELHOUSE" "$WHEEL[cpu,parquet]"
rm -f "$WHEELHOUSE"/dsabench-*.whl  # the wheelhouse keeps dependencies only, never a stale build

say "installing into a fresh environment, $WORK/venv (no system site packages)"
"$PYTHON" -m venv "$WORK/venv"
BIN="$WORK/venv/bin"
"$BIN/python" -m pip install --quiet --no-index --find-links "$WHEELHOUSE" "$WHEEL[cpu,parquet]"
"$BIN/python" -m pip check

mkdir "$WORK/user" && cd "$WORK/user"  # a directory with no checkout in it
"$BIN/python" - "$REPO" <<'EOF'
import sys
from pathlib import Path
import dsabench
where = Path(dsabench.__file__).resolve()
if Path(sys.argv[1]) in where.parents:
    sys.exit(f"wheel check: dsabench imported from the checkout ({where}), not from the wheel")
print(f"wheel check: dsabench {dsabench.__version__} imported from {where.parent}")
EOF
DSA="$BIN/dsabench"
FILTER='decode\.b2\.c128\.p0\.n16\.bs64\.ch1\..*\.eager'  # one config, baseline and patched: two cases

set -x
"$DSA" scenarios list | tee scenarios.txt
grep -q '^smoke ' scenarios.txt
"$DSA" env
"$DSA" run smoke --filter "$FILTER" --check --max-time-s 2 --out runs --run-id first | tee run.txt
"$DSA" run smoke --filter "$FILTER" --max-time-s 2 --out runs --run-id second
"$DSA" compare runs/first runs/second | tee compare.txt
"$DSA" compare runs/first runs/first | tee same.txt
grep -q "BASE and CAND are the same run" same.txt
awk 'length($0) > 120 { print "wheel check: wider than 120 columns: " FILENAME ": " $0; bad = 1 } END { exit bad }' \
  run.txt compare.txt same.txt
"$DSA" compare runs/first runs/second --markdown > compare.md
"$DSA" report runs/first --out report
test -s report/evidence.md
"$DSA" dashboard runs --out dashboard --no-change-points
test -s dashboard/index.html
"$DSA" export runs/first runs/second --parquet cases.parquet
"$BIN/python" -c "import pyarrow.parquet as pq, sys; n = pq.read_table('cases.parquet').num_rows; sys.exit(0 if n == 4 else f'wheel check: export wrote {n} rows, expected 4')"
set +x
say "passed: the installed wheel ran scenarios list, env, run, compare, report, dashboard and export from $WORK/user"
