#!/usr/bin/env bash
# Pack the sources scripts/build_flashmla.sh builds from, out of two git directories (a clone or a
# bare mirror of each): FlashMLA at a pinned commit, and only the CUTLASS headers the build reads
# (include/ and tools/util/include/) at the commit FlashMLA's csrc/cutlass submodule names.
#
#   scripts/pack_flashmla_sources.sh FLASHMLA_GIT CUTLASS_GIT [OUT_DIR]
#
# e.g.  git clone https://github.com/deepseek-ai/FlashMLA /tmp/FlashMLA
#       git clone https://github.com/NVIDIA/cutlass /tmp/cutlass
#       scripts/pack_flashmla_sources.sh /tmp/FlashMLA /tmp/cutlass
# writes OUT_DIR (default third_party/, ignored by git) /
#   flashmla-<commit>.tar.gz                (prefix FlashMLA/, about 0.23 MB)
#   cutlass-<commit>-headers.tar.gz         (prefix cutlass/, about 2.3 MB)
# FLASHMLA_COMMIT overrides the pinned commit. The archives are reproducible (git archive, gzip -n).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 FLASHMLA_GIT CUTLASS_GIT [OUT_DIR]" >&2
  exit 2
fi
fm_git=$1 cu_git=$2
root=$(cd "$(dirname "$0")/.." && pwd)
out=${3:-$root/third_party}
# The last FlashMLA commit with the sm90 kernels and the V3.2 cache format in this snapshot
# (main dropped both on 2026-09-30; its README pins ba89a346 for V3.2 users).
commit=${FLASHMLA_COMMIT:-9241ae3ef9bac614dd25e45e507e089f888280e0}

for d in "$fm_git" "$cu_git"; do
  git -C "$d" rev-parse --git-dir >/dev/null 2>&1 || { echo "$0: $d is not a git directory (a clone or a mirror)" >&2; exit 2; }
done
git -C "$fm_git" cat-file -e "$commit^{commit}" 2>/dev/null \
  || { echo "$0: $fm_git has no commit $commit (fetch it, or set FLASHMLA_COMMIT)" >&2; exit 2; }
# The CUTLASS commit is the submodule pointer recorded in that FlashMLA commit.
cutlass=$(git -C "$fm_git" ls-tree "$commit" csrc/cutlass | awk '$2 == "commit" {print $3}')
[ -n "$cutlass" ] || { echo "$0: $commit has no csrc/cutlass submodule entry" >&2; exit 2; }
git -C "$cu_git" cat-file -e "$cutlass^{commit}" 2>/dev/null \
  || { echo "$0: $cu_git has no commit $cutlass (the one FlashMLA $commit pins)" >&2; exit 2; }

mkdir -p "$out"
fm_tar=$out/flashmla-$commit.tar.gz
cu_tar=$out/cutlass-$cutlass-headers.tar.gz
git -C "$fm_git" archive --format=tar --prefix=FlashMLA/ "$commit" | gzip -n -9 > "$fm_tar.part"
git -C "$cu_git" archive --format=tar --prefix=cutlass/ "$cutlass" include tools/util/include | gzip -n -9 > "$cu_tar.part"
mv "$fm_tar.part" "$fm_tar"
mv "$cu_tar.part" "$cu_tar"
echo "FlashMLA $commit -> $fm_tar ($(stat -c %s "$fm_tar") bytes)"
echo "CUTLASS  $cutlass -> $cu_tar ($(stat -c %s "$cu_tar") bytes)"
