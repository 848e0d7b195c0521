"""A case measured in several worker processes (`run --repeats R`) is R records, one per process
pass; readers see one case whose samples are pooled and kept grouped per process, so that
statistics can resample processes first (`analysis.hierarchy`)."""

from __future__ import annotations

from collections import defaultdict

from dsabench.store.schema import key_of


def merge_repeats(records: list[dict]) -> list[dict]:
    """One record per case (and impl, and kernel on a kernel axis: `schema.key_of`), in first-seen order. A case with one record comes back as it is
    plus `process_samples` (one group). With several: the first ok record's figures, samples of
    every ok process pooled in `timing.samples_ms` and grouped in `process_samples`; status ok
    when any process measured it (the others are named in the message), else the first's.
    `process_chunks` goes beside `process_samples`: per process its (repeat, pid) and its timed
    chunks (empty before schema 3), so the host-steady analysis can pair and classify rounds."""
    by_case: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_case[key_of(r)].append(r)
    out = []
    for group in by_case.values():
        group = sorted(group, key=lambda r: r.get("repeat", 0))
        ok = [r for r in group if r.get("status") == "ok" and (r.get("timing") or {}).get("samples_ms")]
        if not ok:
            first = dict(group[0])
            first["process_samples"] = []
            first["repeats"] = len(group)
            out.append(first)
            continue
        merged = dict(ok[0])
        groups = [list(r["timing"]["samples_ms"]) for r in ok]
        chunks = [list(r["timing"].get("chunks") or []) for r in ok]
        merged["timing"] = {**ok[0]["timing"], "samples_ms": [s for g in groups for s in g],
                            "chunks": [c for g in chunks for c in g]}
        merged["process_samples"] = groups
        merged["process_chunks"] = [{"key": [r.get("repeat", 0), (r.get("worker") or {}).get("pid")], "chunks": g}
                                    for r, g in zip(ok, chunks)]
        if not merged.get("trace"):  # only the first pass traces; a later process may be the first ok one
            merged["trace"] = next((r["trace"] for r in group if r.get("trace")), None)
        merged["repeats"] = len(group)
        failed = [r for r in group if r not in ok]
        if failed:
            notes = "; ".join(f"repeat {r.get('repeat', 0)} {r.get('status')}: {r.get('message', '')}" for r in failed)
            merged["message"] = "; ".join(filter(None, [merged.get("message", ""), notes]))
        out.append(merged)
    return out
