#!/usr/bin/env bash
# Build FlashMLA (FastDeploy's attention kernels) for the H200 (sm_90a) from the sources in
# third_party/ (scripts/pack_flashmla_sources.sh makes them; docs/kernels.md says how), into
# third_party/build/ (ignored by git):
#   third_party/build/FlashMLA/            the unpacked sources; `import flash_mla` works with
#                                          this folder on PYTHONPATH (the extension is built in place)
#   third_party/build/stamp.json           what was built: commits, setup.py edits, flags, nvcc and
#                                          torch versions, build wall seconds, per-object compile times
#   third_party/build/prebuilt/            the extension stripped of debug sections (under the
#                                          16 MiB a GPU call can bring back) and its stamp
#   third_party/build/build.log            the compiler's full output (ptxas register reports)
# Incremental: nothing is rebuilt when the stamp's key (commits, edits, environment, versions)
# matches and the extension is there. A stripped extension from an earlier call, put in
# third_party/prebuilt/ (flash_mla_cuda.so + stamp.json), is installed instead of building when
# its key matches. Exit 0 when `flash_mla` is ready; the last line says how it got there.
#
# Edits to FlashMLA's setup.py (each must apply exactly once, or the build stops):
#   - `-lineinfo` and `--source-in-ptx` dropped (line tables and PTX source only grow the .so);
#   - CUDA 13's CCCL folder added to the include path (CUDA 13 moved cuda/std/* there; FlashMLA
#     issue #121);
#   - its `git submodule update` call dropped (the CUTLASS headers are unpacked in place; no network).
# FLASH_MLA_DISABLE_SM100=1 builds sm_90a code only, but setup.py still lists the ten sm100
# sources: for sm_90a they compile to host code and empty kernels (device code behind sm100
# guards), yet slowly (here, on one core: the dense fmha forward 267 s, an sm100 decode instantiation
# 44 s, the sm90 V3.2 decode kernel 52 s), and api.cpp links against their entry points. So by
# default (FLASHMLA_SM100=stub) they are replaced by scripts/flashmla_sm100_stubs.cu, ten entry
# points that throw if called (FlashMLA calls them only on an sm100 device); if that build fails or
# does not import, the script builds again with the full list (FLASHMLA_SM100=full forces it).
# The sm90 objects are the same either way; the stamp records which list was used (sm100_sources)
# and what each object cost (compile_s).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tp=$root/third_party
FLASHMLA_COMMIT=${FLASHMLA_COMMIT:-9241ae3ef9bac614dd25e45e507e089f888280e0}
CUTLASS_COMMIT=${CUTLASS_COMMIT:-147f5673d0c1c3dcf66f78d677fd647e4a020219}
fm_tar=$tp/flashmla-$FLASHMLA_COMMIT.tar.gz
cu_tar=$tp/cutlass-$CUTLASS_COMMIT-headers.tar.gz
build=$tp/build
dest=$build/FlashMLA
export MAX_JOBS=${MAX_JOBS:-16}      # one nvcc per core of the 16-core GPU machine
export NVCC_THREADS=${NVCC_THREADS:-1}  # one -gencode target: nvcc's --threads has nothing to split
export FLASH_MLA_DISABLE_SM100=1
say() { echo "[$(date +%H:%M:%S)] build_flashmla: $*"; }

missing() { echo "build_flashmla: $1 is missing; make it with scripts/pack_flashmla_sources.sh (docs/kernels.md)" >&2; }
[ -f "$fm_tar" ] || { missing "$fm_tar"; exit 2; }
command -v nvcc >/dev/null || { echo "build_flashmla: nvcc is not on PATH" >&2; exit 2; }
mkdir -p "$build"

cuda_home=$(python3 -c 'from torch.utils.cpp_extension import CUDA_HOME; print(CUDA_HOME or "")')
[ -n "$cuda_home" ] || { echo "build_flashmla: torch finds no CUDA_HOME" >&2; exit 2; }
cccl=
for d in "$cuda_home/targets/x86_64-linux/include/cccl" "$cuda_home/include/cccl"; do
  [ -d "$d" ] && { cccl=$d; break; }
done
nvcc_version=$("$cuda_home/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
torch_version=$(python3 -c 'import torch; print(torch.__version__)')
ext_suffix=$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
edits="drop -lineinfo; drop --source-in-ptx; include_dirs += CCCL (${cccl:-none: CUDA 12 layout}); drop git submodule update"

# The key: everything that decides what the extension is.
key=$(python3 - "$FLASHMLA_COMMIT" "$CUTLASS_COMMIT" "$edits" "$nvcc_version" "$torch_version" "$ext_suffix" <<'PY'
import json, sys
fm, cu, edits, nvcc, torch_v, suffix = sys.argv[1:]
print(json.dumps({"flashmla_commit": fm, "cutlass_commit": cu, "setup_py_edits": edits,
                  "env": {"FLASH_MLA_DISABLE_SM100": "1"}, "arch": "sm_90a",
                  "nvcc": nvcc, "torch": torch_v, "ext_suffix": suffix}, sort_keys=True))
PY
)
stamp_key() {  # the key stored in a stamp file, or nothing
  [ -f "$1" ] && python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])).get("key"), sort_keys=True))' "$1" 2>/dev/null || true
}
so_path() { ls "$dest"/flash_mla/cuda*.so 2>/dev/null | head -1; }

if [ "$(stamp_key "$build/stamp.json")" = "$key" ] && [ -n "$(so_path)" ]; then
  say "up to date (stamp matches, $(basename "$(so_path)") present)"
  echo "flashmla: up to date"
  exit 0
fi

unpack() {
  rm -rf "$dest" "$build/prebuilt"
  tar -xzf "$fm_tar" -C "$build"
  [ -d "$dest/csrc" ] || { echo "build_flashmla: $fm_tar did not unpack to FlashMLA/" >&2; exit 1; }
}

pre=$tp/prebuilt
if [ "$(stamp_key "$pre/stamp.json")" = "$key" ] && { [ -f "$pre/flash_mla_cuda.so" ] || [ -f "$pre/flash_mla_cuda.so.gz" ]; }; then
  say "installing the prebuilt extension from third_party/prebuilt/ (its stamp matches)"
  unpack
  if [ -f "$pre/flash_mla_cuda.so" ]; then
    cp "$pre/flash_mla_cuda.so" "$dest/flash_mla/cuda$ext_suffix"
  else
    gzip -dc "$pre/flash_mla_cuda.so.gz" > "$dest/flash_mla/cuda$ext_suffix"
  fi
  if (cd "$build" && PYTHONPATH="$dest" python3 -c 'import flash_mla, flash_mla.cuda') > "$build/import.log" 2>&1; then
    python3 - "$pre/stamp.json" "$build/stamp.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["installed_from"] = "third_party/prebuilt (stripped copy of an earlier build)"
json.dump(s, open(sys.argv[2], "w"), indent=1, sort_keys=True)
PY
    echo "flashmla: installed prebuilt"
    exit 0
  fi
  cat "$build/import.log" >&2
  say "the prebuilt extension does not import; building instead"
fi

build_once() {  # $1: stub or full; exit status 0 when the extension built and imports
  local mode=$1 rc
  say "unpacking FlashMLA ${FLASHMLA_COMMIT:0:8} and CUTLASS ${CUTLASS_COMMIT:0:8} headers into $build (sm100 sources: $mode)"
  [ -f "$cu_tar" ] || { missing "$cu_tar"; return 2; }  # only a build needs CUTLASS: a prebuilt carries without it
  unpack
  mkdir -p "$dest/csrc/cutlass"
  tar -xzf "$cu_tar" -C "$dest/csrc/cutlass" --strip-components=1
  [ -f "$dest/csrc/cutlass/include/cute/tensor.hpp" ] || { echo "build_flashmla: CUTLASS headers missing after unpacking $cu_tar" >&2; return 1; }
  [ "$mode" = stub ] && cp "$root/scripts/flashmla_sm100_stubs.cu" "$dest/csrc/sm100_stubs.cu"
  python3 - "$dest/setup.py" "$cccl" "$mode" <<'PY' || return 1
import pathlib, re, sys
path, cccl, mode = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
text = path.read_text()
anchor = '            Path(this_dir) / "csrc" / "cutlass" / "tools" / "util" / "include",\n'
edits = [
    ('                "-lineinfo",\n', ''),
    ('                "--source-in-ptx",\n', ''),
    ('subprocess.run(["git", "submodule", "update", "--init", "csrc/cutlass"])\n',
     '# (git submodule update dropped: the CUTLASS headers are unpacked into csrc/cutlass)\n'),
]
if cccl:
    edits.append((anchor, anchor + f'            "{cccl}",   # CUDA 13: cuda/std/* moved here\n'))
if mode == "stub":
    edits.append(('            "csrc/api/api.cpp",\n',
                  '            "csrc/api/api.cpp",\n            "csrc/sm100_stubs.cu",   # sm100 entry points that throw\n'))
for old, new in edits:
    n = text.count(old)
    if n != 1:
        sys.exit(f"build_flashmla: setup.py edit expected 1 match of {old.strip()!r}, found {n}")
    text = text.replace(old, new)
if mode == "stub":
    text, n = re.subn(r'^ *"csrc/sm100/[^"]*\.cu",\n', '', text, flags=re.M)
    if n != 10:
        sys.exit(f"build_flashmla: expected 10 sm100 sources in setup.py, found {n}")
path.write_text(text)
PY
  say "compiling (MAX_JOBS=$MAX_JOBS NVCC_THREADS=$NVCC_THREADS, nvcc $nvcc_version, torch $torch_version); log: $build/build.log"
  start=$(date +%s.%N)
  (cd "$dest" && GIT_CEILING_DIRECTORIES="$build" python3 setup.py build_ext --inplace) > "$build/build.log" 2>&1
  rc=$?
  wall=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
  so=$(so_path)
  if [ $rc -ne 0 ] || [ -z "$so" ]; then
    grep -E "error|Error" "$build/build.log" | head -20 >&2 || true
    tail -5 "$build/build.log" >&2
    echo "build_flashmla: the build ($mode) failed (exit $rc) after $wall s; log: $build/build.log" >&2
    return 1
  fi
  if ! (cd "$build" && PYTHONPATH="$dest" python3 -c 'import flash_mla, flash_mla.cuda' > "$build/import.log" 2>&1); then
    cat "$build/import.log" >&2
    echo "build_flashmla: the build ($mode) does not import (see above)" >&2
    return 1
  fi
  sm100_sources=$mode
}

mode=${FLASHMLA_SM100:-stub}
case $mode in stub|full) ;; *) echo "build_flashmla: FLASHMLA_SM100=$mode; expected stub or full" >&2; exit 2 ;; esac
if ! build_once "$mode"; then
  [ "$mode" = stub ] || exit 1
  say "the build with stubbed sm100 sources failed; building with FlashMLA's full source list"
  cp "$build/build.log" "$build/build-stub-failed.log"
  build_once full || exit 1
fi

mkdir -p "$build/prebuilt"
strip --strip-debug -o "$build/prebuilt/flash_mla_cuda.so" "$so"
python3 - "$key" "$wall" "$so" "$build" "$sm100_sources" <<'PY'
import glob, json, os, re, sys, time
key, wall, so, build, sm100 = json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
temp = sorted(glob.glob(os.path.join(build, "FlashMLA", "build", "temp.*")))
flags, compile_s = {}, {}
if temp:
    ninja = os.path.join(temp[0], "build.ninja")
    if os.path.exists(ninja):
        for line in open(ninja):
            m = re.match(r"(cuda_cflags|cuda_post_cflags|cflags|post_cflags) = (.*)", line)
            if m:  # drop the include paths: long, and machine specific
                flags[m.group(1)] = " ".join(w for w in m.group(2).split() if not w.startswith("-I"))
    log = os.path.join(temp[0], ".ninja_log")
    if os.path.exists(log):
        for line in open(log):
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 4 and parts[0].isdigit():
                rel = parts[3].split("/csrc/", 1)[-1]
                compile_s[rel] = round((int(parts[1]) - int(parts[0])) / 1000, 1)
stripped = os.path.join(build, "prebuilt", "flash_mla_cuda.so")
stamp = {
    "key": key,
    "build_wall_s": wall,
    "sm100_sources": sm100 + (" (scripts/flashmla_sm100_stubs.cu: entry points that throw)" if sm100 == "stub" else ""),
    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "so_bytes": os.path.getsize(so),
    "so_stripped_bytes": os.path.getsize(stripped),
    "max_jobs": os.environ.get("MAX_JOBS"), "nvcc_threads": os.environ.get("NVCC_THREADS"),
    "flags": flags,
    "compile_s": dict(sorted(compile_s.items(), key=lambda kv: -kv[1])),
}
for path in (os.path.join(build, "stamp.json"), os.path.join(build, "prebuilt", "stamp.json")):
    with open(path, "w") as f:
        json.dump(stamp, f, indent=1)
slowest = list(stamp["compile_s"].items())[:5]
print(f"build_flashmla: {wall} s wall; .so {stamp['so_bytes']/2**20:.1f} MiB, stripped {stamp['so_stripped_bytes']/2**20:.1f} MiB; "
      f"slowest objects: " + ", ".join(f"{k} {v} s" for k, v in slowest))
PY
say "built in $wall s"
echo "flashmla: built in $wall s"
