#!/usr/bin/env bash
# The gate's verdicts on the runs of scripts/gpu_gate.sh, judged (again) by this checkout's gate, on
# any machine: every compare (the 3% band and --threshold auto) with its JSON and the exit code of
# --fail-on-regression, calibrate --no-run over the A/A, +5% and +1.5% runs, and gate-summary.txt:
# per kind of pair, the verdicts over every case of every pair (graph / eager), how many were noisy,
# what the eager verdicts rested on (host-steady chunks, or all samples), and how many were withheld
# because the host changed between the runs (reason host_changed), and how many cases were not judged
# yet may hide a slowdown of +3% or more (undecided or withheld: --fail-on-regression exits 4 on them
# where nothing is slower; analysis/unjudged.py).
#   bash scripts/gate_rejudge.sh RUNS OUT    RUNS: the directory holding gate-aa0.. (gpu_gate.sh's
#                                            $RUNS_DIR/gate); OUT: where compare/, calibration.* and
#                                            gate-summary.txt go (calibrate works on a copy of RUNS)
# Environment: PRESET (pr), BACKEND (torch): calibrate's arguments, as the runs were made.
set -uo pipefail
runs=$(cd "$1" && pwd) out=$2
preset=${PRESET:-pr} backend=${BACKEND:-torch}
py=${PYTHON:-python3}
mkdir -p "$out/compare"
: > "$out/compare/exit-codes.txt"
judge_pair() {  # judge_pair NAME BASE CAND [compare args]: table, JSON and the exit code of --fail-on-regression
  local name=$1 base=$runs/$2 cand=$runs/$3; shift 3
  [ -f "$base/manifest.json" ] && [ -f "$cand/manifest.json" ] || return
  $py -m dsabench compare "$base" "$cand" --allow-mismatch --fail-on-regression --json "$out/compare/$name.json" "$@" \
    > "$out/compare/$name.txt" 2>&1
  echo "$name exit=$?" >> "$out/compare/exit-codes.txt"
}
for band in fixed auto; do
  extra=(); [ $band = auto ] && extra=(--threshold auto)
  for pair in "aa0 aa1" "aa0 aa2" "aa1 aa2"; do set -- $pair; judge_pair "$band-aa-$1-$2" gate-$1 gate-$2 "${extra[@]}"; done
  for inj in inj050 inj250 inj015 inj010; do
    for a in aa0 aa1 aa2; do judge_pair "$band-$inj-vs-$a" gate-$a gate-$inj "${extra[@]}"; done
  done
done
copy=$(mktemp -d)
cp -r "$runs" "$copy/gate" && chmod -R u+w "$copy"
$py -m dsabench calibrate "$preset" --backend "$backend" --aa-runs 3 --inject 0.05,0.015 --repeats 3 --no-run \
  --out "$copy" --run-id gate > "$out/calibrate.log" 2>&1
cp "$copy"/gate/calibration.* "$out/" 2>/dev/null
rm -rf "$copy"
$py - "$out/compare" > "$out/gate-summary.txt" <<'PY'
import json, sys
from collections import Counter
from pathlib import Path

folder = Path(sys.argv[1])
codes = dict(line.split(" exit=") for line in (folder / "exit-codes.txt").read_text().split("\n") if line)
kinds: dict[str, list] = {}
for f in sorted(folder.glob("*.json")):
    band, kind = f.stem.split("-", 1)
    kind = "aa" if kind.startswith("aa") else kind.split("-vs-")[0]
    kinds.setdefault(f"{band} {kind}", []).append((f.stem, json.loads(f.read_text())))
print("pairs of a kind: verdict counts over every case of every pair (graph / eager), how many noisy, what the eager "
      "verdicts rested on; exit codes of --fail-on-regression; the 3% band ('fixed') and --threshold auto")
for key, docs in kinds.items():
    by = {"graph": Counter(), "eager": Counter()}
    noisy, steady, withheld = Counter(), 0, 0
    unjudged = sum(doc.get("unjudged_count", 0) for _, doc in docs)
    for _, doc in docs:
        for p in doc["pairs"]:
            if p["verdict"] == "failed":
                continue  # the tensor scale's graph capture: an expected finding, in every run
            mode = "graph" if str(p["case"]).endswith(".graph") else "eager"
            by[mode][p["verdict"]] += 1
            noisy[mode] += bool(p.get("noisy"))
            withheld += p.get("reason") == "host_changed"
            steady += mode == "eager" and "host-steady by probe" in str(p.get("rests_on") or "") \
                and not str(p.get("rests_on")).startswith("all samples")
    exits = ", ".join(f"{stem.split('-vs-')[-1] if '-vs-' in stem else stem.split('-', 2)[2]}={codes.get(stem, '?')}"
                      for stem, _ in docs)
    cells = "; ".join(f"{mode}: " + ", ".join(f"{n} {v}" for v, n in sorted(c.items())) + f" ({noisy[mode]} noisy)"
                      for mode, c in by.items() if c)
    eager = sum(by["eager"].values())
    rest = f"; eager on host-steady chunks in {steady} of {eager}" if eager else ""
    rest += f", {withheld} withheld (host_changed)" if withheld else ""
    rest += f"; {unjudged} not judged that may hide +3% or more (exit 4 where nothing is slower)" if unjudged else ""
    print(f"{key:16s} {len(docs)} pair(s): {cells}{rest}; exit {exits}")
PY
cat "$out/gate-summary.txt"
