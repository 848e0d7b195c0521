"""The dashboard's pages: view data from the model, rendered by the jinja2 templates in templates/.

Templates autoescape every value; the only markup passed in unescaped is what this package
wrote itself (the SVG charts, small pieces of <code>, the inlined assets), wrapped in Markup.
The JSON block the filters read is escaped for a <script> element (`json_for_html`).
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Mapping
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from dsabench.analysis.compare import Comparison, Verdict
from dsabench.analysis.gate import band_text
from dsabench.analysis.stats import CONFIDENCE
from dsabench.analysis.history import series_ids
from dsabench.present.dashboard import model
from dsabench.present.dashboard.model import (
    FILTER_AXES, JUDGED_RUNS, STATUS_OK, CaseSeries, Dashboard, RunInfo, expected_finding, label, record_keys, row_axes,
)  # fmt: skip
from dsabench.present.text import fmt_ms as ms, fmt_num as count
from dsabench.workload.variants import BASELINE, PATCHED
from dsabench.present.dashboard.svg import (
    COMPACT_POINTS, finite, short, speedup, speedup_svg, times, trend_svg, when,
)  # fmt: skip

# Rows of a series table: the latest runs, and every notable one before them.
TABLE_RUNS = 30

_ENV = Environment(
    loader=PackageLoader("dsabench.present.dashboard", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=False,
)
_ENV.globals.update(when=when, short=short)


def json_for_html(obj) -> Markup:
    """JSON safe inside <script type="application/json">: `<`, `>`, `&`, U+2028/9 escaped, so
    `</script>` or `<!--` in a run's strings cannot end or alter the block."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char in ("&", "<", ">", "\u2028", "\u2029"):
        text = text.replace(char, f"\\u{ord(char):04x}")
    return Markup(text)


def _render(template: str, assets, *, title: str, depth: int, data: Mapping, **context) -> str:
    return _ENV.get_template(template).render(
        assets=assets, title=title, up="../" * depth, data_json=json_for_html(data), **context
    )


def _pct(x: float) -> str:
    return f"{x * 100:g}"


def _speedups(dash: Dashboard, run: RunInfo) -> dict:
    comp = dash.comparisons.get(run.run_id)
    if not isinstance(comp, Comparison):
        return {"note": comp or "no patched-vs-baseline comparison for this run"}
    t = comp.table
    if not len(t):
        return {"note": "No baseline/patched pairs in this run."}
    rows, findings = [], 0
    for r in t.to_dict("records"):
        sp, lo, hi = speedup(r)
        finding = None
        if r["verdict"] == Verdict.FAILED.value:
            graph = str(r["case"]).endswith(".graph")
            sides = ((r["base_status"], BASELINE), (r["cand_status"], PATCHED))
            why = [expected_finding(st, {"scale_mode": v.scale, "layout_mode": v.layout, "graph": graph})
                   for st, v in sides if st not in (None, STATUS_OK)]
            if why and all(why):
                finding, findings = "; ".join(dict.fromkeys(why)), findings + 1
        rows.append({"case": r["case"], "base": ms(r["base_level_ms"]), "cand": ms(r["cand_level_ms"]),
                     "speedup": times(sp), "ci": f"{times(lo)} .. {times(hi)}" if finite(lo) else "-",
                     "verdict": r["verdict"], "noisy": r.get("noisy") is True, "finding": finding,
                     "message": r["message"]})  # fmt: skip
    rows.sort(key=lambda row: row["finding"] is not None)  # verdicts first, expected findings after them
    counts = dict(comp.counts())
    if findings:  # expected failures are findings, not failures
        counts[Verdict.FAILED.value] -= findings
        counts = {k: v for k, v in counts.items() if v}
        counts["finding"] = findings
    title = f"Patched vs baseline speedup in run {run.run_id} ({run.device}, {run.backend})"
    return {"note": None, "groups": len(t), "counts": list(counts.items()), "confidence": _pct(comp.confidence),
            "threshold": band_text(comp.threshold), "findings": findings, "svg": speedup_svg(comp, title),
            "rows": rows}  # fmt: skip


def _has_pairs(comp) -> bool:
    """Whether a comparison paired at least one group (both variants present, whatever the status)."""
    if not isinstance(comp, Comparison) or not len(comp.table):
        return False
    return bool((comp.table["base_status"].notna() & comp.table["cand_status"].notna()).any())


def render_index(dash: Dashboard, assets) -> str:
    groups: dict[tuple[str, str], list[RunInfo]] = {}
    for run in dash.runs.values():
        groups.setdefault((run.device, run.backend), []).append(run)
    blocks = []
    for (device, backend), runs in sorted(groups.items()):
        latest = runs[-1]
        paired = next((r for r in reversed(runs) if _has_pairs(dash.comparisons.get(r.run_id))), None)
        slower = sum(1 for s in dash.series if (s.device, s.backend) == (device, backend)
                     and s.points[-1].run_id == latest.run_id and s.points[-1].verdict == Verdict.SLOWER.value)  # fmt: skip
        blocks.append({"device": device, "backend": backend, "latest": latest, "n_runs": len(runs), "paired": paired,
                       "slower": slower, "speedups": _speedups(dash, paired) if paired else None})  # fmt: skip
    newest_first = list(reversed(list(dash.runs.values())))
    rows = [(f"run-{i}", run) for i, run in enumerate(newest_first)]
    data = {"page": "index", "axes": ["device", "backend", "preset"],
            "items": [{"el": el, "device": r.device, "backend": r.backend, "preset": r.preset or ""} for el, r in rows],
            "runs": [{"run_id": r.run_id, "page": r.page, "device": r.device, "backend": r.backend, "commit": r.commit,
                      "created_at": r.created_at.isoformat() if r.created_at is not None else None,
                      "statuses": {s: n for s, n, _ in r.statuses}} for r in dash.runs.values()]}  # fmt: skip
    return _render("index.html", assets, title="latest runs", depth=0, data=data, runs=dash.runs, blocks=blocks,
                   n_series=len(dash.series), warnings=dash.warnings, rows=rows)  # fmt: skip


def _series_item(s: CaseSeries, el: str) -> dict:
    return {"el": el, **dict(s.axes), "case": s.case_id, "page": s.page, "slower": s.count(Verdict.SLOWER),
            "change_points": s.change_points}  # fmt: skip


def render_trends(dash: Dashboard, assets) -> str:
    # Series that need a look first (slower runs, change points), then the longest histories.
    ranked = sorted(dash.series, key=lambda s: (-(s.count(Verdict.SLOWER) + s.change_points), -len(s.points), s.case_id))
    by_pair: dict[tuple[str, str], list[CaseSeries]] = {}
    for s in ranked:
        by_pair.setdefault((s.device, s.backend), []).append(s)
    groups, items, k = [], [], 0
    for (device, backend), members in sorted(by_pair.items()):
        cards = []
        for s in members:
            el, k = f"series-{k}", k + 1
            items.append(_series_item(s, el))
            cards.append({"el": el, "series": s, "slower": s.count(Verdict.SLOWER),
                          "svg": trend_svg(s, compact=True, change_points=dash.change_note is None)})  # fmt: skip
        groups.append({"device": device, "backend": backend, "cards": cards})
    data = {"page": "trends", "axes": list(FILTER_AXES), "items": items}
    return _render("trends.html", assets, title="trends", depth=0, data=data, dash=dash, groups=groups,
                   n_series=len(dash.series), compact_points=COMPACT_POINTS, judged_runs=JUDGED_RUNS,
                   judged=dash.judged, confidence=_pct(CONFIDENCE), threshold=band_text(dash.threshold))  # fmt: skip


def _point_row(dash: Dashboard, p, old: bool) -> dict:
    run, sm = dash.runs[p.run_id], p.summary
    note = ""
    if p.change_point is not None:
        c = p.change_point
        note = (f"change point: {ms(c.before_median_ms)} -> {ms(c.after_median_ms)} ms "
                f"({c.rel_change * 100:+.1f}%, p={c.p_value:.1g}) ")  # fmt: skip
    if sm is None:
        note += p.finding or p.message
    if p.host is not None and p.host.disturbed:
        h = p.host
        note += (f"host-disturbed chunks {h.disturbed_share:.0%} of {h.chunks} "
                 f"({', '.join(f'{k} {v}' for k, v in sorted(h.by_reason.items()))})")
    if p.vs_previous is not None:
        vs = p.vs_previous.message
    elif p.moved is not None:
        why = f"older than the latest {JUDGED_RUNS} runs" if old else f"within {band_text(dash.threshold)}"
        vs = f"median {(p.moved - 1) * 100:+.1f}% ({why}: not judged)"
    else:
        vs = ""
    kind = "ok" if p.status == STATUS_OK else ("finding" if p.finding else "bad")
    return {"run_id": p.run_id, "page": run.page, "commit": p.commit, "commit_message": run.commit_message,
            "created": when(p.created_at), "status": p.status, "kind": kind, "finding": p.finding,
            "median": ms(sm.median if sm else None), "ci": f"{ms(sm.ci_low)} .. {ms(sm.ci_high)}" if sm else "-",
            "n": sm.n if sm else "-", "verdict": p.verdict, "noisy": bool(p.vs_previous and p.vs_previous.noisy),
            "vs": vs, "note": note}  # fmt: skip


def render_trend_page(dash: Dashboard, members: list[CaseSeries], assets) -> str:
    """One page of case series of one device, backend and scenario (see model._paginate)."""
    first = members[0]
    sections, series_data = [], []
    for s in members:
        n = len(s.points)
        keep = [(i, p) for i, p in enumerate(s.points) if i >= n - TABLE_RUNS or p.notable]
        rows = [_point_row(dash, p, i < n - JUDGED_RUNS) for i, p in keep]
        sections.append({"series": s, "rows": rows, "hidden": n - len(keep),
                         "svg": trend_svg(s, compact=False, change_points=dash.change_note is None)})  # fmt: skip
        series_data.append({"case": s.case_id, "device": s.device, "backend": s.backend, "anchor": s.anchor,
                            "runs": len(s.points)})  # fmt: skip
    scenario = first.axes.get("scenario", "")
    page_no = first.pages.index(first.file) + 1
    links = [{"no": i + 1, "href": Path(f).name} for i, f in enumerate(first.pages)]
    data = {"page": "trend", "axes": [], "items": [], "series": series_data}
    return _render("trend.html", assets, title=f"trends {scenario}", depth=1, data=data, dash=dash,
                   heading=f"Scenario {scenario or '-'}: {first.device}, {first.backend}", device=first.device,
                   backend=first.backend, scenario=scenario, sections=sections, pages=links, page_no=page_no,
                   table_runs=TABLE_RUNS, threshold=band_text(dash.threshold), confidence=_pct(CONFIDENCE))  # fmt: skip


def _plain(value) -> Markup:
    if isinstance(value, (dict, list)):
        return Markup("<code>%s</code>") % json.dumps(value, sort_keys=True, default=str)
    return escape("-" if value is None else value)


def _command(value) -> str:
    if isinstance(value, list):
        return shlex.join(str(v) for v in value)
    return str(value) if value is not None else "-"


def _gpus(env: Mapping) -> list[dict]:
    out = []
    for g in (g for g in env.get("gpus") or [] if isinstance(g, dict)):
        unit = lambda v, u: _plain(v) + (f" {u}" if v is not None else "")  # noqa: E731
        clocks = (f"SM {_plain(g.get('sm_clock_mhz'))} / {_plain(g.get('sm_clock_max_mhz'))} MHz, "
                  f"memory {_plain(g.get('mem_clock_mhz'))} / {_plain(g.get('mem_clock_max_mhz'))} MHz")  # fmt: skip
        facts = [("uuid", _plain(g.get("uuid"))), ("driver", _plain(g.get("driver"))),
                 ("CUDA driver", _plain(g.get("cuda_driver"))), ("memory", unit(g.get("memory_total_bytes"), "bytes")),
                 ("clocks (now / max)", clocks),
                 ("throttle reasons", ", ".join(map(str, g.get("throttle_reasons") or [])) or "none"),
                 ("persistence mode", _plain(g.get("persistence_mode"))),
                 ("temperature", unit(g.get("temperature_c"), "C")), ("other processes", _plain(g.get("other_processes")))]  # fmt: skip
        out.append({"index": _plain(g.get("index")), "name": g.get("name"), "facts": facts,
                    "advice": list(g.get("advice") or [])})  # fmt: skip
    return out


def _case_rows(dash: Dashboard, run: RunInfo, out_dir: Path) -> tuple[list[dict], list[dict]]:
    series_page = {(s.case_id, s.device, s.backend): s.page for s in dash.series}
    df = dash.by_run.get(run.run_id, dash.frame.df.iloc[0:0])
    if not run.full:
        df = df[df["status"] != STATUS_OK]
    page_dir = (out_dir / "run").resolve()
    rows, items = [], []
    columns = list(dict.fromkeys(["case_id", "status", "message", "device_name", "backend", "scale_mode", "layout_mode",
                                  "htod_count", "dtoh_count", "dtod_count", "sync_calls", *FILTER_AXES]))  # fmt: skip
    columns = [c for c in columns if c in df.columns]
    for i, (key, sid, values) in enumerate(zip(record_keys(df), series_ids(df), zip(*(df[c].tolist() for c in columns)))):
        r = dict(zip(columns, values))
        status = str(r["status"])
        el = f"case-{i}"
        device, backend = label(r["device_name"]), label(r["backend"])
        items.append({"el": el, **row_axes(r, device, backend), "status": status, "case": key})
        sm = dash.summaries.get((run.run_id, key))
        trace = dash.traces.get((run.run_id, key))
        finding = expected_finding(status, r) if status != STATUS_OK else None
        rows.append({
            "el": el, "case": key, "page": series_page.get((sid, device, backend)),
            "scenario": r["scenario"], "status": status, "finding": finding,
            "kind": "ok" if status == STATUS_OK else ("finding" if finding else "bad"),
            "median": ms(sm.median if sm else None), "ci": f"{ms(sm.ci_low)} .. {ms(sm.ci_high)}" if sm else "-",
            "n": sm.n if sm else "-", "htod": count(r["htod_count"]), "dtoh": count(r["dtoh_count"]),
            "dtod": count(r["dtod_count"]), "syncs": count(r["sync_calls"]), "message": r["message"],
            "trace": quote(Path(os.path.relpath(trace, page_dir)).as_posix()) if trace is not None else None,
        })  # fmt: skip
    return rows, items


def render_run_page(dash: Dashboard, run: RunInfo, out_dir: Path, assets) -> str:
    m = run.manifest
    env = m.get("env") if isinstance(m.get("env"), dict) else {}
    shards = Markup("<ul>%s</ul>") % Markup("").join(
        Markup("<li><code>%s</code>: shard %s, <code>%s</code></li>") % (d, _shard(sm.get("shard")),
                                                                         _command(sm.get("command")))
        for d, sm in run.shards
    )  # fmt: skip
    statuses = _ENV.get_template("macros.html").module.statuses(run)
    commit = _ENV.get_template("macros.html").module.commit(run.commit, run.commit_message, short)
    opts = m.get("options") if isinstance(m.get("options"), dict) else {}
    resolved = sorted({str(w.get("kernel")) for w in m.get("workers") or [] if isinstance(w, dict) and w.get("kernel")})
    kernel = (" + ".join(resolved) or str(opts.get("kernel") or "reference")) + (
        f" (asked: {opts.get('kernel')})" if resolved and opts.get("kernel") not in (None, *resolved) else "")
    facts = [
        ("device", run.device), ("backend", run.backend), ("attention kernel", kernel),
        ("created", when(run.created_at)), ("commit", commit),
        ("preset", run.preset or "-"),
        ("scenario", Markup('%s <span class="muted">sha256 %s</span>') % (
            _plain(m.get("scenario_file")), str(m.get("scenario_sha256") or "-")[:16])),
        ("description", _plain(m.get("scenario_description"))),
        ("command", Markup("<code>%s</code>") % _command(m.get("command"))), ("directories", shards),
        ("cases", Markup("%s recorded (%s planned in the first shard): %s") % (
            run.n_cases, _plain(m.get("cases_planned")), statuses)),
        ("options", _plain(m.get("options"))), ("protocol", _plain(m.get("protocol"))),
        ("dsabench", _plain(m.get("dsabench_version"))),
    ]  # fmt: skip
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    environment = [
        ("host", _plain(env.get("host"))), ("platform", _plain(env.get("platform"))),
        ("python", _plain(env.get("python"))), ("CPUs", _plain(env.get("cpu_count"))),
        ("CPU governor", _plain(env.get("cpu_governor"))),
        ("CUDA_VISIBLE_DEVICES", _plain(env.get("cuda_visible_devices"))),
        ("packages", ", ".join(f"{k} {v}" for k, v in sorted(packages.items()) if v) or "-"),
    ] + [(f"worker {i}", _plain({"framework": (w.get("availability") or {}).get("framework_version"),
                                 "device": w.get("device"), "kernel": w.get("kernel"),
                                 "ceilings": w.get("ceilings")}))
         for i, w in enumerate(m.get("workers") or []) if isinstance(w, dict)]  # fmt: skip
    rows, items = _case_rows(dash, run, out_dir)
    speedups = _speedups(dash, run) if run.full else {
        "note": f"Made for the latest {model.FULL_RUNS} runs of each device and backend; "
                "dsabench compare --variants RUN compares this one."}  # fmt: skip
    data = {"page": "run", "run_id": run.run_id, "axes": list(FILTER_AXES) + ["status"], "items": items}
    warnings = [w for w in dash.warnings if any(str(d) in w for d, _ in run.shards)]
    return _render("run.html", assets, title=f"run {run.run_id}", depth=1, data=data, run=run, facts=facts,
                   environment=environment, gpus=_gpus(env), speedups=speedups, rows=rows, warnings=warnings,
                   full_runs=model.FULL_RUNS, confidence=_pct(CONFIDENCE))  # fmt: skip


def _shard(value) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{value[0]}/{value[1]}"
    return "-" if value is None else str(value)
