"""PR evidence bundle: one run (its shards included) -> a directory with `evidence.md` and the
charts it links (PNG + SVG).

`evidence.md` says what was run (command, preset, scenario file and hash, backend, device,
versions, git SHAs, protocol), the machine's state at the start (clocks, throttle reasons,
persistence, other processes, advice), the speedup of patched over baseline with intervals
(`compare.compare_variants`), every variant against baseline, copies and syncs per variant,
CUDA Graph capture per variant with the framework's error text, the correctness verdict
(`summary.check_outputs`: bit-identical outputs across variants, oracle error) and, with a
baseline run, the run-vs-run table (`compare.compare_runs`). Presentation only: every number
comes from the records, `compare` or `summary`.

Every string taken from a run goes through `md_cell` (table cells) or a fenced code block, so a
pipe or newline in an error message cannot break the markdown.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from dsabench.analysis.compare import DEFAULT_THRESHOLD, Comparison, compare_runs, compare_variants, format_markdown
from dsabench.errors import DsabenchError, InputError
from dsabench.store.frames import Frame, expand_run_paths, load_frame
from dsabench.store.rundir import LoadedRun, load_run
from dsabench.analysis.checks import CheckResult, check_outputs
from dsabench.workload.variants import ALL_VARIANTS, BASELINE, PATCHED

EVIDENCE = "evidence.md"
DEFAULT_REPORTS = Path("reports")


# ------------------------------------------------------------------------------------ loading


@dataclass(frozen=True)
class RunSet:
    """One run as the report reads it: the frame, and each shard's directory, manifest and raw
    records (check_outputs works on records, the tables on the frame). frozen=True stops
    reassigning fields; the frame and the dicts are shared, treat them as read-only."""

    run_id: str
    frame: Frame
    shards: tuple[LoadedRun, ...]

    @property
    def records(self) -> list[dict]:
        return [r for shard in self.shards for r in shard.records]


def load_run_set(paths: Sequence[Path], run_id: str | None = None, what: str = "RUN") -> RunSet:
    """The one run named by `paths` (run directories, or directories holding runs or shards).

    With several runs below the paths, `run_id` picks one; without it that is an InputError
    listing the run ids found. A run without cases is an InputError too: there is nothing to report.
    """
    dirs = expand_run_paths(paths)
    runs = [load_run(d) for d in dirs]
    ids = sorted({str(r.manifest.get("run_id")) for r in runs})
    if run_id is not None:
        runs = [r for r in runs if r.manifest.get("run_id") == run_id]
        if not runs:
            raise InputError(f"{what} {', '.join(map(str, paths))}: no run with run_id {run_id!r}; found {ids}")
    elif len(ids) > 1:
        raise InputError(
            f"{what} {', '.join(map(str, paths))}: holds {len(ids)} runs ({', '.join(ids)}); expected one run "
            "(pass its directory, the directories of its shards, or --run-id to pick one)"
        )
    frame = load_frame([r.path for r in runs])
    rid = next(iter(frame.manifests), None) or str(runs[0].manifest.get("run_id"))
    if frame.df.empty:
        raise InputError(f"{what} {', '.join(str(r.path) for r in runs)}: run {rid!r} has no cases recorded")
    shards = sorted(runs, key=lambda r: (tuple(r.manifest.get("shard") or (0, 0)), str(r.path)))
    return RunSet(rid, frame, tuple(shards))


# ---------------------------------------------------------------------------------- markdown


def md_cell(value) -> str:
    """Text safe inside a markdown table cell: HTML specials escaped, pipes escaped, newlines
    turned into <br>, so any error text from a run stays inside its cell."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def md_code(value) -> str:
    """Inline code inside a table cell: escaped like md_cell, in <code> (backticks could not
    hold a pipe)."""
    return f"<code>{md_cell(value)}</code>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], align: Sequence[str] | None = None) -> list[str]:
    align = align or ["---"] * len(header)
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _fenced(text: str) -> list[str]:
    fence = "```"
    while fence in text:
        fence += "`"
    return [fence, text, fence]


def _bytes(v) -> str:
    if not isinstance(v, (int, float)) or v != v:
        return "-"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(v) >= size:
            return f"{v / size:.3g} {unit}"
    return f"{v:g} B"


def _num(v) -> str:
    if not isinstance(v, (int, float)) or v != v:
        return "-"
    return f"{v:g}" if float(v).is_integer() else f"{v:.3g}"


def _dig(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _shard_name(shard: LoadedRun) -> str:
    s = shard.manifest.get("shard")
    return f"shard {s[0]}/{s[1]}" if isinstance(s, (list, tuple)) and len(s) == 2 else "run"


def _per_shard(shards: Sequence[LoadedRun], get) -> str:
    """One value when every shard agrees, else 'shard 1/2: a; shard 2/2: b'."""
    values = [get(s) for s in shards]
    shown = ["-" if v in (None, "", [], {}) else str(v) for v in values]
    if len(set(shown)) == 1:
        return md_cell(shown[0])
    return "<br>".join(f"{_shard_name(s)}: {md_cell(v)}" for s, v in zip(shards, shown))


def _command(m: dict) -> str:
    cmd = m.get("command")
    return shlex.join(str(c) for c in cmd) if isinstance(cmd, list) else str(cmd or "")


# ----------------------------------------------------------------------------------- sections


def _what_was_run(rs: RunSet) -> list[str]:
    shards, df = rs.shards, rs.frame.df
    worker = lambda s: (s.manifest.get("workers") or [{}])[0]  # noqa: E731
    avail = lambda s: worker(s).get("availability") or {}  # noqa: E731

    def device(s):
        d = worker(s).get("device") or {}
        if not d:
            return None
        parts = [str(d.get("name"))]
        extra = [f"capability {d['capability']}" if d.get("capability") else "",
                 f"{d['sm_count']} SMs" if d.get("sm_count") else "",
                 _bytes(d["memory_bytes"]) if d.get("memory_bytes") else "", str(d.get("kind") or "")]  # fmt: skip
        extra = [e for e in extra if e]
        return parts[0] + (f" ({', '.join(extra)})" if extra else "") + (f", {d['uuid']}" if d.get("uuid") else "")

    def framework(s):
        a = avail(s)
        details = a.get("details") or {}
        extra = ", ".join(f"{k} {v}" for k, v in details.items() if v)
        return f"{a.get('backend', s.manifest.get('backend'))} {a.get('framework_version', '?')}" + (
            f" ({extra})" if extra else "")

    def git(s):
        g = s.manifest.get("git") or {}
        suite = g.get("suite") or {}
        sha, dirty = suite.get("sha"), suite.get("dirty")
        text = f"suite {sha[:12]}" if sha else "suite SHA not recorded"
        text += "" if dirty is None else (" (dirty)" if dirty else " (clean)")
        measured = _dig(g, "measured", "sha")
        return text + (f"; measured checkout {measured[:12]}" if measured else "; no measured checkout")

    def gpu_driver(s):
        gpus = _dig(s.manifest, "env", "gpus") or []
        return ", ".join(f"{g.get('driver')} (CUDA driver {g.get('cuda_driver')})" for g in gpus) or None

    def packages(s):
        pk = _dig(s.manifest, "env", "packages") or {}
        return ", ".join(f"{k} {v}" for k, v in pk.items() if v) or None

    def protocol(s):
        p = s.manifest.get("protocol") or {}
        return ", ".join(f"{k} {v}" for k, v in p.items()) or None

    def options(s):
        o = s.manifest.get("options") or {}
        return ", ".join(f"{k} {v}" for k, v in o.items()) or None

    statuses = df["status"].value_counts()
    counts = ", ".join(f"{n} {k}" for k, n in statuses.items())
    rows = [
        ("run id", md_code(rs.run_id)),
        ("cases", md_cell(f"{len(df)} in {len(shards)} director{'y' if len(shards) == 1 else 'ies'}: {counts}")),
        ("preset", _per_shard(shards, lambda s: s.manifest.get("preset"))),
        ("scenario file", _per_shard(shards, lambda s: s.manifest.get("scenario_file"))),
        ("scenario sha256", _per_shard(shards, lambda s: s.manifest.get("scenario_sha256"))),
        ("scenario", _per_shard(shards, lambda s: s.manifest.get("scenario_description"))),
        ("backend", _per_shard(shards, framework)),
        ("device", _per_shard(shards, device)),
        ("GPU driver", _per_shard(shards, gpu_driver)),
        ("created", _per_shard(shards, lambda s: s.manifest.get("created_at"))),
        ("dsabench", _per_shard(shards, lambda s: s.manifest.get("dsabench_version"))),
        ("git", _per_shard(shards, git)),
        ("python", _per_shard(shards, lambda s: _dig(s.manifest, "env", "python"))),
        ("platform", _per_shard(shards, lambda s: _dig(s.manifest, "env", "platform"))),
        ("packages", _per_shard(shards, packages)),
        ("options", _per_shard(shards, options)),
        ("protocol", _per_shard(shards, protocol)),
        ("run directories", "<br>".join(md_code(s.path) for s in shards)),
    ]
    lines = ["## What was run", ""]
    lines += _table(["", ""], ([f"**{k}**", v] for k, v in rows))
    lines += ["", "Commands, one per run directory:", ""]
    lines += _fenced("\n".join(f"{_command(s.manifest)}    # {_shard_name(s)}" for s in shards))
    return lines + [""]


def _environment(rs: RunSet) -> list[str]:
    lines = ["## Environment and GPU state at the start of the run", ""]
    rows = []
    for s in rs.shards:
        env = s.manifest.get("env") or {}
        for g in env.get("gpus") or []:
            clocks = (f"SM {g.get('sm_clock_mhz')} / {g.get('sm_clock_max_mhz')} MHz, "
                      f"memory {g.get('mem_clock_mhz')} / {g.get('mem_clock_max_mhz')} MHz")  # fmt: skip
            rows.append([
                md_cell(_shard_name(s)), md_cell(f"{g.get('index')}: {g.get('name')}"), md_cell(clocks),
                md_cell(", ".join(g.get("throttle_reasons") or []) or "none"), md_cell(g.get("persistence_mode")),
                md_cell(g.get("temperature_c")), md_cell(g.get("other_processes")),
                md_cell("; ".join(g.get("advice") or []) or "none"),
            ])  # fmt: skip
    if rows:
        lines += _table(["dir", "GPU", "clocks (current / max)", "throttle reasons", "persistence", "temp C",
                         "other processes", "advice"], rows)  # fmt: skip
        lines += ["", "Clocks and throttle reasons are sampled once, before the first case: an idle GPU reports a "
                  "low SM clock with the reason `gpu_idle`, and the clock rises under load.", ""]  # fmt: skip
    else:
        lines += ["No GPU in the manifest (a CPU run): no clocks, persistence mode or other-process checks.", ""]
    host = []
    for s in rs.shards:
        env = s.manifest.get("env") or {}
        host.append([md_cell(_shard_name(s)), md_cell(env.get("host")), md_cell(env.get("cpu_count")),
                     md_cell(env.get("cpu_governor") or "not readable"),
                     md_cell(env.get("cuda_visible_devices") or "unset"), md_cell(env.get("processor"))])  # fmt: skip
    lines += _table(["dir", "host", "CPUs", "CPU governor", "CUDA_VISIBLE_DEVICES", "processor"], host)
    return lines + [""]


def variant_comparisons(frame: Frame, threshold: float = DEFAULT_THRESHOLD) -> dict[str, Comparison]:
    """compare_variants of every variant of the run (other than baseline) against baseline,
    keyed by variant name; empty when the run has no baseline case."""
    present = set(frame.df["variant"].dropna())
    if BASELINE.name not in present:
        return {}
    return {v.name: compare_variants(frame, BASELINE, v, threshold=threshold)
            for v in ALL_VARIANTS if v != BASELINE and v.name in present}  # fmt: skip


def _speedup_cell(r: dict) -> str:
    if r["verdict"] == "missing":
        return "not run"
    if r["verdict"] == "new":
        return "no baseline"
    if r["base_status"] != "ok" or r["cand_status"] != "ok":
        side = "baseline" if r["base_status"] != "ok" else "variant"
        status = r["base_status"] if r["base_status"] != "ok" else r["cand_status"]
        return md_cell(f"{side} {status}")
    ratio, lo, hi = r["ratio"], r["ci_low"], r["ci_high"]
    if not ratio == ratio or not ratio:
        return md_cell(r["verdict"])
    text = f"{1 / ratio:.2f}x"
    if lo == lo and hi == hi and lo > 0:
        text += f" ({1 / hi:.2f}-{1 / lo:.2f})"
    return md_cell(f"{text} {r['verdict']}")


def _speedup(rs: RunSet, comps: dict[str, Comparison], labels: dict[str, str]) -> list[str]:
    lines = ["## Speedup: patched vs baseline", ""]
    if PATCHED.name not in comps:
        lines += ["No patched-vs-baseline pair in this run (it needs cases of both variants)."
                  if comps else "No baseline cases in this run: nothing to compare against.", ""]  # fmt: skip
    else:
        lines += [format_markdown(comps[PATCHED.name]).rstrip(), ""]
    if not comps:
        return lines
    lines += ["### Every variant vs baseline", "",
              "Speedup = median of baseline / median of the variant (above 1: faster than baseline), with the 95% "
              "bootstrap interval of compare's ratio and its verdict; a cell names the side that did not run.",
              ""]  # fmt: skip
    groups = rs.frame.df.drop_duplicates("group_id").set_index("group_id")
    order = list(labels)
    keys = sorted({k for c in comps.values() for k in c.table["case"]},
                  key=lambda g: (order.index(groups.loc[g, "config_id"]) if g in groups.index and
                                 groups.loc[g, "config_id"] in order else 999, bool(groups.loc[g, "graph"])
                                 if g in groups.index else False, g))  # fmt: skip
    by = {name: {r["case"]: r for r in c.table.to_dict("records")} for name, c in comps.items()}
    rows = []
    for g in keys:
        label = labels.get(groups.loc[g, "config_id"], g) if g in groups.index else g
        mode = ("CUDA Graph" if bool(groups.loc[g, "graph"]) else "eager") if g in groups.index else ""
        rows.append([md_cell(label), md_cell(mode)] + [_speedup_cell(by[n][g]) if g in by[n] else "-" for n in comps])
    lines += _table(["config", "mode"] + [md_cell(n) for n in comps], rows)
    return lines + [""]


def _distinct(values: pd.Series, fmt) -> str:
    vals = sorted({float(v) for v in values.dropna()})
    return " / ".join(fmt(v) for v in vals) if vals else "-"


def _copies(rs: RunSet, labels: dict[str, str]) -> list[str]:
    df = rs.frame.df
    ok = df[(df["status"] == "ok") & (df["trace_iterations"] > 0)]
    lines = ["## Host-device copies and syncs per variant", "",
             "Per forward, from the profiler trace of the profiled pass. Where the cases of a variant disagree, each "
             "distinct value is listed (a / b); the per-case table below has them case by case. *layout copied* is the "
             "size of the buffer the layout phase produced when it is not the cache itself (measured by data pointer, "
             "any device); *layout kernels* is the device work the trace attributes to the layout phase.",
             ""]  # fmt: skip
    if ok.empty:
        return lines + ["No case has a trace (profiled pass off, or no case ran).", ""]
    if not (ok[["kernel_count", "htod_count", "dtoh_count", "dtod_count"]].fillna(0) > 0).any().any():
        devices = ", ".join(sorted({str(v) for v in df["device_name"].dropna()}))
        lines += [f"The traces of this run hold no device events ({md_cell(devices)}): the copy and sync counts "
                  "below are zero by construction, not evidence.", ""]  # fmt: skip
    rows = []
    order = [v.name for v in ALL_VARIANTS]
    for variant in [v for v in order if v in set(ok["variant"])]:
        for graph in (False, True):
            sub = ok[(ok["variant"] == variant) & (ok["graph"] == graph)]
            if sub.empty:
                continue
            rows.append([
                md_cell(variant), "CUDA Graph" if graph else "eager", str(len(sub)),
                _distinct(sub["htod_count"], _num), _distinct(sub["htod_bytes"], _bytes),
                _distinct(sub["dtoh_count"], _num), _distinct(sub["dtoh_bytes"], _bytes),
                _distinct(sub["dtod_count"], _num), _distinct(sub["dtod_bytes"], _bytes),
                _distinct(sub["sync_calls"], _num),
                _distinct(sub["layout_copied_bytes"], _bytes) if "layout_copied_bytes" in sub else "-",
                _distinct(sub["layout_copy_ms"], lambda v: f"{v:.3g} ms"),
            ])  # fmt: skip
    header = ["variant", "mode", "cases", "HtoD", "HtoD bytes", "DtoH", "DtoH bytes", "DtoD", "DtoD bytes",
              "sync calls", "layout copied", "layout kernels"]  # fmt: skip
    lines += _table(header, rows, ["---", "---", "---:"] + ["---:"] * 9)
    detail = []
    rank = {cid: i for i, cid in enumerate(labels)}
    vrank = {name: i for i, name in enumerate(order)}
    ok = ok.assign(_c=ok["config_id"].map(rank), _v=ok["variant"].map(vrank)).sort_values(["_c", "graph", "_v"])
    for r in ok.to_dict("records"):
        copies = [f"{_num(r[f'{d}_count'])} ({_bytes(r[f'{d}_bytes'])})" for d in ("htod", "dtoh", "dtod")]
        detail.append([md_cell(labels.get(r["config_id"], r["config_id"])), md_cell(r["variant"]),
                       "graph" if r["graph"] else "eager", *copies, _num(r["sync_calls"]),
                       _bytes(r.get("layout_copied_bytes", math.nan))])  # fmt: skip
    lines += ["", f"<details><summary>per case ({len(detail)} traced cases)</summary>", ""]
    lines += _table(["config", "variant", "mode", "HtoD", "DtoH", "DtoD", "syncs", "layout copied"], detail)
    return lines + ["", "</details>", ""]


def _capture(rs: RunSet) -> list[str]:
    df = rs.frame.df
    g = df[df["graph"] == True]  # noqa: E712 - a column of Python bools
    lines = ["## CUDA Graph capture per variant", ""]
    if g.empty:
        return lines + ["No CUDA Graph cases in this run.", ""]
    rows = []
    for variant in [v.name for v in ALL_VARIANTS if v.name in set(g["variant"])]:
        sub = g[g["variant"] == variant]
        failed = sub[sub["status"] != "ok"]
        statuses = ", ".join(f"{n} {k}" for k, n in failed["status"].value_counts().items()) or "-"
        messages = sorted({str(m) for m in failed["message"] if m})
        rows.append([md_cell(variant), str(len(sub)), str(int((sub["status"] == "ok").sum())), md_cell(statuses),
                     "<br>".join(md_code(m) for m in messages) or "-"])  # fmt: skip
    header = ["variant", "graph cases", "captured and timed", "not captured", "error text (the framework's own)"]
    lines += _table(header, rows, ["---", "---:", "---:", "---", "---"])
    other = df[(df["status"] != "ok") & (df["graph"] != True)]  # noqa: E712
    if not other.empty:
        lines += ["", "Eager cases that did not run:", ""]
        lines += _table(["case", "status", "message"],
                        ([md_code(r["case_id"]), md_cell(r["status"]), md_cell(r["message"])]
                         for r in other.to_dict("records")))  # fmt: skip
    return lines + [""]


def _correctness(rs: RunSet) -> tuple[list[str], CheckResult]:
    check = check_outputs(rs.records)
    lines = ["## Correctness", ""]
    if check.configs_checked == 0:
        verdict = "**not checked**: no config has outputs of more than one ok case to compare"
    elif not check.mismatches:
        n = check.configs_checked
        verdict = (f"**bit-identical**: in {'the one config' if n == 1 else f'each of the {n} configs'} with several "
                   "variants (eager and CUDA Graph), every ok case produced the same output bytes (SHA-256 of the bf16 "
                   "output)")  # fmt: skip
    else:
        verdict = f"**MISMATCH**: {len(check.mismatches)} of {check.configs_checked} configs have outputs that differ"
    lines += [f"Outputs across variants: {verdict}.", ""]
    if check.mismatches:
        lines += _table(["mismatch"], ([md_cell(m)] for m in check.mismatches)) + [""]
    if check.oracle_worst is None:
        checked = {bool(_dig(s.manifest, "options", "check")) for s in rs.shards}
        why = ("the run was made with `--check`, so every case is larger than the float64 oracle's limit"
               if checked == {True} else "the run was made without `--check`")  # fmt: skip
        lines += [f"Oracle: no case has an oracle error ({why}); the bit-identity above is the correctness "
                  "evidence of this run.", ""]  # fmt: skip
    else:
        n = int(rs.frame.df["oracle_rel_error"].notna().sum())
        state = "all within the bound" if not check.oracle_failures else f"{len(check.oracle_failures)} over the bound"
        lines += [f"Oracle: worst relative error {check.oracle_worst:.3e} against the float64 reference over {n} "
                  f"cases (bound {check.oracle_bound:.1e}): {state}.", ""]  # fmt: skip
        if check.oracle_failures:
            lines += _table(["over the bound"], ([md_cell(m)] for m in check.oracle_failures)) + [""]
    return lines, check


def _run_vs_run(base: RunSet, rs: RunSet, threshold: float, allow_mismatch: bool) -> list[str]:
    comp = compare_runs(base.frame, rs.frame, threshold=threshold, allow_mismatch=allow_mismatch)
    return ["## Run vs run", "", f"BASE is `--baseline` ({md_cell(base.run_id)}), CAND this run.", "",
            format_markdown(comp).rstrip(), ""]  # fmt: skip


def _charts(charts) -> list[str]:
    lines = ["## Charts", ""]
    for c in charts:
        lines += [f"### {c.title}", "", f"![{c.title}]({c.png.name})", "",
                  f"{c.description} ([SVG]({c.svg.name}))", ""]  # fmt: skip
        lines += [f"- Note: {md_cell(n)}" for n in c.notes if n]
        lines += [""] if c.notes else []
    return lines


# ------------------------------------------------------------------------------------ report


@dataclass(frozen=True)
class Report:
    """What `build_report` wrote: the markdown file, the charts, and the correctness check."""

    path: Path
    charts: tuple
    check: CheckResult
    comparisons: dict


def build_report(rs: RunSet, out_dir: Path, *, baseline: RunSet | None = None,
                 threshold: float = DEFAULT_THRESHOLD, copy_bandwidth_gbs: float | None = None,
                 allow_mismatch: bool = False) -> Report:
    """Write evidence.md and the charts for one run into out_dir (created if missing)."""
    from dsabench.present import plots  # noqa: PLC0415 - matplotlib only for this verb

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df = rs.frame.df
    comps = variant_comparisons(rs.frame, threshold)
    labels, label_note = plots.config_labels(df)
    run_vs_run = _run_vs_run(baseline, rs, threshold, allow_mismatch) if baseline is not None else []
    charts = plots.all_charts(df, comps, out_dir, copy_bandwidth_gbs)
    correctness, check = _correctness(rs)

    devices = " + ".join(sorted({str(v) for v in df["device_name"].dropna()})) or "unknown device"
    backends = " + ".join(sorted({str(v) for v in df["backend"].dropna()})) or "unknown backend"
    statuses = ", ".join(f"{n} {k}" for k, n in df["status"].value_counts().items())
    m0 = rs.shards[0].manifest
    preset = f"preset {m0['preset']}" if m0.get("preset") else f"scenario file {m0.get('scenario_file') or 'unknown'}"
    head = [f"# dsabench evidence: run `{md_cell(rs.run_id)}`", "",
            f"{md_cell(devices)}, {md_cell(backends)} backend, {md_cell(preset)}: "
            f"{len(df)} cases ({md_cell(statuses)}) in {len(rs.shards)} run director"
            f"{'y' if len(rs.shards) == 1 else 'ies'}.", ""]  # fmt: skip
    summary = []
    if PATCHED.name in comps:
        t = comps[PATCHED.name].table
        found = t["verdict"].value_counts()
        summary.append("patched vs baseline: " + ", ".join(f"{n} {k}" for k, n in found.items()))
    summary.append("outputs " + ("bit-identical across variants" if check.configs_checked and not check.mismatches
                                 else "MISMATCH" if check.mismatches else "not compared"))  # fmt: skip
    head += [f"**Summary:** {md_cell('; '.join(summary))}.", "",
             f"Config labels: {md_cell(label_note)}. Case ids in the tables are the full ids.", "",
             "Sections: [what was run](#what-was-run), "
             "[environment](#environment-and-gpu-state-at-the-start-of-the-run), "
             "[speedup](#speedup-patched-vs-baseline), [copies and syncs](#host-device-copies-and-syncs-per-variant), "
             "[CUDA Graph capture](#cuda-graph-capture-per-variant), [correctness](#correctness), "
             + ("[run vs run](#run-vs-run), " if run_vs_run else "") + "[charts](#charts).", ""]  # fmt: skip
    if rs.frame.warnings:
        head += [f"> Warning: {md_cell(w)}" for w in rs.frame.warnings] + [""]
    body = (head + _what_was_run(rs) + _environment(rs) + _speedup(rs, comps, labels) + _copies(rs, labels)
            + _capture(rs) + correctness + run_vs_run + _charts(charts))  # fmt: skip
    path = out_dir / EVIDENCE
    path.write_text("\n".join(body).rstrip() + "\n")
    return Report(path, tuple(charts), check, comps)
