"""What the dashboard shows, computed once from a loaded frame: runs, case series, verdicts.

This module presents; it computes no statistic of its own. Medians and intervals come from
`stats.summarize`, verdicts from compare's cross-run gate / `compare.compare_variants`, change points
from `history.find_change_points`, the measured commit from `frames.manifest_commit`.

A year of nightly runs (365 runs x 222 cases, about 81,000 records) must build in minutes, so
the expensive parts are bounded, and each page says where:

- a run is judged against the previous run of its case (the cross-run gate, with the noise of the runs before) only
  within the latest JUDGED_RUNS runs of the series, and only where the medians moved outside the
  gate's band (`gate.edges`): a verdict of slower or faster needs the whole interval of the ratio
  outside it, and that interval holds the ratio itself. Older shifts are what the
  change points (`history`) are for;
- the patched-vs-baseline comparison and the full case table are made for the latest
  FULL_RUNS runs of each device model and backend; older runs get a page with their manifest
  and the cases that did not end ok.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import pandas as pd

from dsabench.analysis.host_steady import CaseHost, case_host, probe_reference, row_processes, steady_sides
from dsabench.analysis.compare import (
    Comparison, Decision, Reason, Verdict, compare_variants, gate_decision, process_groups,
)
from dsabench.analysis.gate import edges
from dsabench.analysis.noise import Noise, calibration_run, run_level, series_noise
from dsabench.analysis.history import ChangePoint, MissingDependency, find_change_points, series_ids
from dsabench.analysis.stats import Summary, summarize
from dsabench.errors import DsabenchError
from dsabench.present.findings import finding
from dsabench.store.schema import key_of, measured_git
from dsabench.store.frames import Frame, manifest_commit
from dsabench.store.rundir import read_manifest, read_records

# Scenario axes the filters offer (in this order).
FILTER_AXES = ("phase", "batch", "num_blocks", "variant", "graph", "backend", "device", "scenario")
STATUS_OK = "ok"
# Runs of each device model and backend that get the full case table and the patched-vs-baseline
# comparison (two weeks of nightly runs).
FULL_RUNS = 14
# Runs at the end of each series that are judged against the previous run of their case.
JUDGED_RUNS = 60
# Case series on one trend page (pages hold the series of one device, backend and scenario).
SERIES_PER_PAGE = 40


def expected_finding(status: str, params: Mapping) -> str | None:
    """The neutral label of a status that is its case's expected result (`present.findings`),
    or None when the case ended ok or failed. `params` holds the case's scale_mode,
    layout_mode, graph and message."""
    return None if status == STATUS_OK else finding({**params, "status": status})


def slug(text: str) -> str:
    """A file name or anchor for any text: kept as is when already safe and short, otherwise the
    safe characters plus 8 hex digits of its SHA-1, so different texts never share a name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:120]
    if safe == text and text and not text.startswith("."):
        return text
    return f"{safe.lstrip('.') or 'x'}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def commit_message(manifest: Mapping) -> str | None:
    """The subject recorded beside the measured commit, where the manifest has one."""
    state = measured_git(manifest)
    return state.message if state is not None and state.message else None


@dataclass(frozen=True)
class RunInfo:
    """One run (all its shards) as the pages show it. full: it gets the case table."""

    run_id: str
    device: str
    backend: str
    created_at: pd.Timestamp | None
    commit: str | None
    commit_message: str | None
    preset: str | None
    statuses: tuple[tuple[str, int, str], ...]  # (status, cases, kind: ok, finding or bad)
    findings: int  # cases that did not end ok, as expected (see expected_finding)
    n_cases: int
    shards: tuple[tuple[Path, dict], ...]  # (directory, its manifest), one per shard
    page: str  # relative to the site
    full: bool

    @property
    def manifest(self) -> dict:
        return self.shards[0][1]


@dataclass(frozen=True)
class TrendPoint:
    """One run of one case series. vs_previous is the cross-run gate against the previous ok run
    where it was judged; moved is the ratio of medians to that run (None for the first)."""

    run_id: str
    commit: str | None
    created_at: pd.Timestamp | None
    status: str
    message: str
    finding: str | None
    summary: Summary | None
    vs_previous: Decision | None = None
    previous_run_id: str | None = None
    moved: float | None = None
    change_point: ChangePoint | None = None
    host: CaseHost | None = None  # its chunks classified host-steady or disturbed (judged window only)

    @property
    def verdict(self) -> str:
        return self.vs_previous.verdict.value if self.vs_previous is not None else ""

    @property
    def notable(self) -> bool:
        return self.verdict in ("slower", "faster") or self.change_point is not None or (
            self.summary is None and self.finding is None
        )


@dataclass(frozen=True)
class CaseSeries:
    """Every run of one case on one device model and backend, oldest first."""

    device: str
    backend: str
    case_id: str
    axes: Mapping[str, str]
    points: tuple[TrendPoint, ...]
    page: str  # relative to the site, with the series' anchor: trend/<page>.html#<anchor>
    anchor: str
    pages: tuple[str, ...] = ()  # the trend pages of its device, backend and scenario, in order

    def count(self, verdict: Verdict) -> int:
        return sum(1 for p in self.points if p.vs_previous is not None and p.vs_previous.verdict == verdict)

    @property
    def change_points(self) -> int:
        return sum(1 for p in self.points if p.change_point is not None)

    @property
    def file(self) -> str:
        return self.page.split("#", 1)[0]


@dataclass(frozen=True)
class Dashboard:
    """Everything the pages show. change_note is None when change points were computed, else
    why not. comparisons maps run_id to its patched-vs-baseline Comparison, or to why there is
    none (only runs with full pages have one)."""

    frame: Frame
    runs: Mapping[str, RunInfo]
    series: tuple[CaseSeries, ...]
    comparisons: Mapping[str, Comparison | str]
    summaries: Mapping[tuple[str, str], Summary | None]
    traces: Mapping[tuple[str, str], Path]
    threshold: float
    change_note: str | None
    n_change_points: int
    judged: int
    by_run: Mapping[str, pd.DataFrame]  # each run's rows of frame.df
    warnings: tuple[str, ...] = field(default=())


def axis_value(axis: str, value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if axis == "graph" and str(value) in ("True", "False", "1.0", "0.0"):
        return "graph" if str(value) in ("True", "1.0") else "eager"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def row_axes(row: Mapping, device: str, backend: str) -> dict[str, str]:
    axes = {axis: axis_value(axis, row.get(axis)) for axis in FILTER_AXES}
    axes["device"], axes["backend"] = device, backend
    return axes


def label(value, fallback: str = "unknown") -> str:
    return value if isinstance(value, str) and value else fallback


def _timestamp(value) -> pd.Timestamp | None:
    return value if isinstance(value, pd.Timestamp) and not pd.isna(value) else None


def _samples(value) -> list[float]:
    return [float(v) for v in value] if isinstance(value, (list, tuple)) else []


def record_keys(df) -> list[str]:
    """Each row's record key (`schema.record_key`: the case id, '@impl' unless the mirror's, '#kernel'
    on a kernel axis): what a series, a summary and a trace are keyed by, so that two impls or two
    kernels of one case in one run are two figures, not one overwriting the other."""
    cols = [df[c].tolist() if c in df.columns else [None] * len(df) for c in ("case_id", "impl", "kernel", "kernel_axis")]
    return [key_of({"case_id": c, "impl": i if isinstance(i, str) else None, "kernel": k, "kernel_axis": a})
            for c, i, k, a in zip(*cols)]


def _trace_files(frame: Frame, run_ids) -> dict[tuple[str, str], Path]:
    """(run_id, record key) -> the trace file a record names, where it exists inside its run dir."""
    found: dict[tuple[str, str], Path] = {}
    for run_id in run_ids:
        for run_dir in frame.run_dirs.get(run_id, ()):
            root = Path(run_dir).resolve()
            for record in read_records(run_dir)[0]:
                trace = record.get("trace")
                name = trace.get("file") if isinstance(trace, dict) else None
                if isinstance(name, str) and name:
                    path = (root / name).resolve()
                    if path.is_file() and root in path.parents:
                        found[(run_id, key_of(record))] = path
    return found


def _shards(frame: Frame, run_id: str) -> tuple[tuple[Path, dict], ...]:
    dirs = frame.run_dirs.get(run_id, ())
    out = [(Path(d), frame.manifests[run_id] if i == 0 else read_manifest(d)) for i, d in enumerate(dirs)]
    return tuple(out) or ((Path("."), frame.manifests[run_id]),)


def _run_device(names, manifest: dict) -> str:
    names = sorted({str(n) for n in names if isinstance(n, str) and n})
    if names:
        return " + ".join(names)
    env = manifest.get("env") if isinstance(manifest.get("env"), dict) else {}
    for gpu in env.get("gpus") if isinstance(env.get("gpus"), list) else []:
        if isinstance(gpu, dict) and gpu.get("name"):
            return str(gpu["name"])
    return "unknown"


def _vs_previous(prev: Mapping, row: Mapping, threshold: float, noise: Noise) -> Decision:
    """compare's cross-run gate on two runs of one case, with the series' own run-to-run noise from
    the runs before them; two clocks are not comparable (as compare_runs says)."""
    if isinstance(prev["clock"], str) and isinstance(row["clock"], str) and prev["clock"] != row["clock"]:
        return Decision(
            Verdict.NOT_COMPARABLE, Reason.CLOCK_DIFFERS,
            f"previous run timed with clock {prev['clock']!r}, this one with {row['clock']!r}",
        )  # fmt: skip
    graph = (row.get("_params") or {}).get("graph") in (True, 1)
    steady = None if graph else steady_sides(prev, row)  # an eager case rests on its host-steady chunks
    return gate_decision(process_groups(prev), process_groups(row), threshold, noise=noise, steady=steady)


def _change_points(frame: Frame, wanted: bool) -> tuple[str | None, dict]:
    if not wanted:
        return "change points were not computed (--no-change-points)", {}
    try:
        history = find_change_points(frame)
    except MissingDependency as exc:
        return str(exc), {}
    return None, {(cp.device_name, cp.backend, cp.case_id, cp.run_id): cp for cp in history.change_points}


def _status_order(item) -> tuple:
    (status, kind), _ = item
    return ({"ok": 0, "finding": 1, "bad": 2}[kind], status)


def _runs(frame: Frame, df: pd.DataFrame) -> dict[str, RunInfo]:
    groups = {run_id: sub for run_id, sub in df.groupby("run_id", sort=False)}
    empty = df.iloc[0:0]
    runs = []
    for run_id, manifest in frame.manifests.items():
        sub = groups.get(run_id, empty)
        tally: dict[tuple[str, str], int] = {}
        for s, p in zip(sub["status"].tolist(), sub["_params"].tolist()):
            kind = "ok" if s == STATUS_OK else ("finding" if expected_finding(s, p) else "bad")
            tally[(str(s), kind)] = tally.get((str(s), kind), 0) + 1
        statuses = tuple((s, n, kind) for (s, kind), n in sorted(tally.items(), key=_status_order))
        findings = sum(n for s, n, kind in statuses if kind == "finding")
        created = _timestamp(sub["created_at"].iloc[0]) if len(sub) else _timestamp(
            pd.to_datetime(manifest.get("created_at"), utc=True, errors="coerce"))  # fmt: skip
        backends = sorted({str(b) for b in sub["backend"].unique() if isinstance(b, str) and b})
        runs.append(RunInfo(
            run_id, _run_device(sub["device_name"].unique(), manifest), " + ".join(backends) or label(manifest.get("backend")),
            created, manifest_commit(manifest), commit_message(manifest),
            manifest.get("preset") if isinstance(manifest.get("preset"), str) else None, statuses, findings, len(sub),
            _shards(frame, run_id), f"run/{slug(run_id)}.html", False,
        ))  # fmt: skip
    epoch = pd.Timestamp(0, tz="UTC")
    runs.sort(key=lambda r: (r.created_at is None, r.created_at or epoch, r.run_id))
    # The latest FULL_RUNS of each device model and backend get the full page.
    seen: dict[tuple[str, str], int] = {}
    out: dict[str, RunInfo] = {}
    for run in reversed(runs):
        k = seen[(run.device, run.backend)] = seen.get((run.device, run.backend), 0) + 1
        out[run.run_id] = run if k > FULL_RUNS else replace(run, full=True)
    return {r.run_id: out[r.run_id] for r in runs}


def _series(df, runs, summaries, cps, threshold) -> tuple[list[CaseSeries], int]:
    position = {run_id: i for i, run_id in enumerate(runs)}
    df = df.assign(_pos=df["run_id"].map(position)).sort_values("_pos", kind="stable")
    built, judged = [], 0
    cols = ["run_id", "status", "message", "samples_ms", "process_samples", "clock", "_params", "process_chunks",
            "chunk_size", "_key"]
    for (device, backend, case_id), s in df.groupby(["_device", "_backend", "_series"], sort=True):
        rows = [dict(zip(cols, values)) for values in zip(*(s[c].tolist() for c in cols))]
        first_judged = len(rows) - JUDGED_RUNS
        points, prev, medians = [], None, []
        for i, row in enumerate(rows):
            run = runs[row["run_id"]]
            summary = summaries[(row["run_id"], row["_key"])]
            decision, moved = None, None
            if summary is not None and prev is not None:
                moved = summary.median / prev[1].median
                clocks = isinstance(row["clock"], str) and row["clock"] != prev[0]["clock"]
                low, high = edges(threshold)  # the gate's band, symmetric on the log scale
                if i >= first_judged and (not low <= moved <= high or clocks):
                    decision = _vs_previous(prev[0], row, threshold, series_noise(medians[:-1]))
                    judged += 1
            status = str(row["status"])
            finding = expected_finding(status, row["_params"]) if status != STATUS_OK else None
            points.append(TrendPoint(
                row["run_id"], run.commit, run.created_at, status, label(row["message"], ""), finding, summary,
                decision, prev[0]["run_id"] if moved is not None else None, moved,
                cps.get((device, backend, case_id, row["run_id"])),
                _host(row) if summary is not None and i >= first_judged else None,
            ))  # fmt: skip
            if summary is not None:
                prev = (row, summary)
                medians.append(run_level(row["process_samples"], row["samples_ms"]))  # as compare --history
        last = s.iloc[-1].to_dict()
        built.append(CaseSeries(device, backend, str(case_id), row_axes(last, device, backend), tuple(points), "", ""))
    return _paginate(built), judged


def _host(row: Mapping) -> CaseHost | None:
    """The point's chunks by the host-steady rule (its own probe reference), None without chunks."""
    processes = row_processes(row)
    return case_host(processes, probe_reference(processes)) if processes else None


def _paginate(series: list[CaseSeries]) -> list[CaseSeries]:
    """Place the series on trend pages: one device, backend and scenario to a page, at most
    SERIES_PER_PAGE series each, so the page count grows with scenarios, not with cases."""
    groups: dict[tuple[str, str, str], list[CaseSeries]] = {}
    for s in series:
        groups.setdefault((s.device, s.backend, s.axes.get("scenario", "")), []).append(s)
    out = []
    for (device, backend, scenario), members in sorted(groups.items()):
        name = slug(f"{backend}.{device}.{scenario or 'no-scenario'}")
        starts = range(0, len(members), SERIES_PER_PAGE)
        files = tuple(f"trend/{name}{'' if k == 0 else f'-{k // SERIES_PER_PAGE + 1}'}.html" for k in starts)
        for file, k in zip(files, starts):
            for s in members[k : k + SERIES_PER_PAGE]:
                anchor = f"s-{slug(s.case_id)}"
                out.append(replace(s, page=f"{file}#{anchor}", anchor=anchor, pages=files))
    return out


def collect(frame: Frame, threshold: float, change_points: bool = True) -> Dashboard:
    """Runs, case series and variant comparisons of a loaded frame (see the module docstring).

    A series is one series id (`history.series_ids`: a case id, '@fastdeploy' for FastDeploy's commits,
    '#kernel' on a kernel axis) on one device model and one backend, as in `history`, so change points
    land on the series they were found in; its points are records, keyed by record key (two commits
    of one run are two points of one run); its runs are
    ordered by created_at, then run_id.
    """
    calib = {r for r, m in frame.manifests.items() if calibration_run(m)}  # calibrate's runs are no history
    if calib:
        frame = Frame(frame.df[~frame.df["run_id"].isin(calib)],
                      {r: m for r, m in frame.manifests.items() if r not in calib},
                      tuple(frame.warnings) + (f"{len(calib)} calibrate run(s) left out: {', '.join(sorted(calib))}",),
                      {r: d for r, d in frame.run_dirs.items() if r not in calib})
    df = frame.df
    params_cols = ["scale_mode", "layout_mode", "graph", "message"]
    df = df.assign(
        _device=df["device_name"].where(df["device_name"].notna(), "unknown").astype(str),
        _backend=df["backend"].where(df["backend"].notna(), "unknown").astype(str),
        _params=[dict(zip(params_cols, v)) for v in zip(*(df[c].tolist() for c in params_cols))],
    )
    df = df.assign(_key=record_keys(df), _series=series_ids(df))
    summaries: dict[tuple[str, str], Summary | None] = {}
    for run_id, key, status, samples in zip(*(df[c].tolist() for c in ("run_id", "_key", "status", "samples_ms"))):
        values = _samples(samples)
        ok = status == STATUS_OK and values and all(math.isfinite(v) for v in values)
        summaries[(run_id, key)] = summarize(values) if ok else None

    runs = _runs(frame, df)
    full = [r.run_id for r in runs.values() if r.full]
    comparisons: dict[str, Comparison | str] = {}
    by_run = {run_id: sub for run_id, sub in frame.df.groupby("run_id", sort=False)}
    for run_id in full:
        sub = by_run.get(run_id, frame.df.iloc[0:0])
        try:
            comparisons[run_id] = compare_variants(Frame(sub, {run_id: frame.manifests[run_id]}), threshold=threshold)
        except DsabenchError as exc:
            comparisons[run_id] = f"no patched-vs-baseline comparison: {exc}"
    change_note, cps = _change_points(frame, change_points)
    series, judged = _series(df, runs, summaries, cps, threshold)
    return Dashboard(
        frame, runs, tuple(series), comparisons, summaries, _trace_files(frame, full), threshold, change_note,
        len(cps), judged, by_run, tuple(frame.warnings),
    )  # fmt: skip
