"""The static HTML dashboard: built over the committed H100 runs plus synthetic runs written with
store.create_run_dir / append_record, checked as HTML text and in a real headless Chromium.

The browser tests run Debian's `chromium` with --dump-dom: each page's script sets
<html data-ready="1"> when it has finished, and an error collector that runs first in <head>
counts uncaught errors, rejections and console.error calls on <html data-js-errors>. A page
passes when it is ready, has no collected error, and Chromium logged no console message at all
(--enable-logging=stderr prints each one as a CONSOLE line, CSP violations included). Without
chromium these tests skip locally and fail in CI (CI=true).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from dsabench.cli.main import build_parser
from dsabench.workload.cases import Case
from dsabench.present.dashboard import model as dashboard_model
from dsabench.present.dashboard.site import MARKER, build_dashboard
from dsabench.errors import InputError
from dsabench.store.schema import Record, Timing
from dsabench.store.rundir import append_record, create_run_dir
from dsabench.workload.variants import BASELINE, PATCHED
import run_files

REPO = Path(__file__).resolve().parent.parent
H100_RESULTS = REPO / "results" / "h100-2026-11-25"
DEVICE = "NVIDIA H100 80GB HBM3"
EVIL = "<script>alert(1)</script>\"'&"
EVIL_DEVICE = f"Evil GPU {EVIL}"
EVIL_RUN = f"evil-{EVIL}"
RUNS = 8
STEP_AT = 5  # the patched graph case is 6% slower from this run on
T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def case(variant=BASELINE, graph=False, batch=8, scenario="synthetic") -> Case:
    return Case(scenario, "decode", batch, 4096, 0, 1024, 64, 1, 128, 2048, variant, graph, 0)


STEP_CASE = case(PATCHED, graph=True)
CASES = (case(BASELINE), case(PATCHED), case(BASELINE, graph=True), STEP_CASE)


def samples(seed: int, median_ms: float, n: int = 30, sigma: float = 0.01) -> list[float]:
    return [float(v) for v in median_ms * np.exp(np.random.default_rng(seed).normal(0.0, sigma, n))]


def record(c: Case, run_id: str, data, status="ok", message="", device=DEVICE, case_id=None, trace=None) -> dict:
    timing = None if data is None else Timing(tuple(data), 1, 10, 100.0, "cuda_event", "min_samples")
    r = Record(
        run_id, c.id, c.config_id, c.group_id, c.params(), status, message, "paddle",
        {"name": device, "index": 0, "uuid": "GPU-0"}, timing, trace=trace,
    ).to_json()  # fmt: skip
    if case_id is not None:
        r["case_id"] = case_id
    return r


def manifest(run_id: str, created: datetime, sha: str, device=DEVICE, message=None):
    gpu = run_files.gpu(device, throttle_reasons=("sw_thermal_slowdown",),
                        advice=("clocks are being held down (sw_thermal_slowdown): results may be low and noisy",))
    return run_files.manifest(run_id, created_at=created.isoformat(), preset="pr", scenario_file="scenarios/pr.toml",
                              commit=sha, commit_message=message, gpus=(gpu,))  # fmt: skip


def write_synthetic(root: Path) -> Path:
    """RUNS daily runs of four cases on one H100 (paddle), the patched graph case 6% slower from
    run STEP_AT on, then one run on a device whose name, scenario, messages, case id and commit
    message all carry markup and quotes."""
    base_ms = {CASES[0].id: 3.2, CASES[1].id: 2.3, CASES[2].id: 3.1, CASES[3].id: 2.2}
    for i in range(RUNS):
        run_id = f"run{i:02d}"
        path = create_run_dir(root / run_id, manifest(run_id, T0 + timedelta(days=i), f"{i:02d}" + "c" * 38,
                                                      message=f"commit number {i}"))  # fmt: skip
        for k, c in enumerate(CASES):
            median = base_ms[c.id] * (1.06 if c == STEP_CASE and i >= STEP_AT else 1.0)
            trace = None
            if k == 0:
                name = f"traces/{c.id}.paddle.trace.json.gz"
                (path / name).write_bytes(b"not really gzip")
                trace = {"file": name, "memcpy": {"HtoD": {"count": 1.0}}, "sync_calls": 1.0}
            append_record(path, record(c, run_id, samples(100 * i + k, median), trace=trace))
    evil = create_run_dir(root / "evil", manifest(EVIL_RUN, T0 + timedelta(days=RUNS), "e" * 40, EVIL_DEVICE, EVIL))
    bad_case = case(PATCHED, scenario=f"scenario {EVIL}")
    append_record(evil, record(bad_case, EVIL_RUN, samples(7, 1.0), device=EVIL_DEVICE))
    append_record(evil, record(case(BASELINE, scenario=f"scenario {EVIL}"), EVIL_RUN, None, "crashed",
                               f"RuntimeError: {EVIL}", device=EVIL_DEVICE))  # fmt: skip
    append_record(evil, record(case(BASELINE, graph=True), EVIL_RUN, samples(8, 1.0), device=EVIL_DEVICE,
                               case_id=f"case.{EVIL}"))  # fmt: skip
    return root


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def site(synthetic, tmp_path_factory):
    return build_dashboard([H100_RESULTS, synthetic], tmp_path_factory.mktemp("dash") / "site")


def committed_runs() -> dict[str, dict]:
    """run_id -> manifest of the committed H100 runs (shards of one run once): other helpers may
    add runs there, so the tests count them rather than hard-code them."""
    found = {}
    for path in sorted(H100_RESULTS.rglob("manifest.json")):
        m = json.loads(path.read_text())
        found.setdefault(m["run_id"], m)
    return found


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def embedded_data(text: str) -> dict:
    m = re.search(r'<script type="application/json" id="dsabench-data">(.*?)</script>', text, re.S)
    assert m, "page has no embedded JSON data block"
    return json.loads(m.group(1))


def page_of_run(site, run_id: str) -> Path:
    for p in site.pages:
        if p.parent.name == "run" and embedded_data(read(p)).get("run_id") == run_id:
            return p
    raise AssertionError(f"no page for run {run_id!r}")


def page_of_series(site, case_id: str, backend: str = "paddle") -> Path:
    for p in site.pages:
        if p.parent.name == "trend":
            for series in embedded_data(read(p))["series"]:
                if series["case"] == case_id and series["backend"] == backend:
                    return p
    raise AssertionError(f"no trend page for {case_id!r}")


def section_of_series(site, case_id: str, backend: str = "paddle") -> str:
    """The <section> of one case series on its trend page (a page holds a scenario's series)."""
    text = read(page_of_series(site, case_id, backend))
    for m in re.finditer(r'<section class="block series" id="([^"]*)" data-case="([^"]*)">(.*?)</section>', text, re.S):
        if html.unescape(m.group(2)) == case_id:
            return m.group(3)
    raise AssertionError(f"no section for {case_id!r}")


# ------------------------------------------------------------------------------ HTML as text


def test_dashboard_writes_an_index_a_trends_page_a_page_per_run_and_a_trend_page_per_scenario(site):
    names = {p.relative_to(site.out_dir).as_posix() for p in site.pages}
    assert {"index.html", "trends.html"} <= names
    committed = committed_runs()
    assert {"smoke-torch-h100", "pr-torch-h100", "repeat-1", "repeat-5"} <= set(committed)
    assert site.runs == len(committed) + RUNS + 1  # the pr run's two shards count once
    assert sum(1 for n in names if n.startswith("run/")) == site.runs
    trend_pages = [p for p in site.pages if p.parent.name == "trend"]
    placed = [(s["device"], s["backend"], s["case"]) for p in trend_pages for s in embedded_data(read(p))["series"]]
    assert len(placed) == len(set(placed)) == site.series  # every series on exactly one page
    groups = {(s["device"], s["backend"], s["scenario"]) for s in embedded_data(read(site.out_dir / "trends.html"))["items"]}
    assert len(trend_pages) == len(groups) < site.series  # pages follow scenarios, not cases
    assert (site.out_dir / MARKER).is_file()


def test_the_two_shards_of_the_pr_run_make_one_run_page_with_all_52_cases(site):
    text = read(page_of_run(site, "pr-torch-h100"))
    assert "pr-torch-h100-shard1of2" in text and "pr-torch-h100-shard2of2" in text
    assert len(embedded_data(text)["items"]) == 52
    assert "--shard 1/2" in text and "--shard 2/2" in text


def test_index_shows_the_latest_run_of_each_device_and_backend_with_patched_vs_baseline_speedups(site):
    text = read(site.index)
    pattern = r'<section class="block latest" data-device="([^"]*)" data-backend="([^"]*)">(.*?)</section>'
    blocks = re.findall(pattern, text, re.S)
    by_pair = {(d, b): body for d, b, body in blocks}
    torch_block = by_pair[(DEVICE, "torch")]
    latest = max(committed_runs().values(), key=lambda m: m["created_at"])["run_id"]
    assert f'<dt>latest run</dt><dd><a href="run/{latest}.html">{latest}</a>' in torch_block
    assert '<svg class="chart speedup"' in torch_block  # from the latest run with baseline/patched pairs
    assert re.search(r"<td class=\"num\">\d\.\d+x \.\. \d\.\d+x</td>", torch_block), "a speedup interval"
    paddle_block = by_pair[(DEVICE, "paddle")]
    assert ">run07</a>" in paddle_block and "07cccccc" in paddle_block
    assert "cases</dt><dd>4:" in paddle_block


def test_trend_page_marks_the_run_with_the_6_percent_step_as_slower_than_the_previous_run(site):
    text = section_of_series(site, STEP_CASE.id)
    verdicts = dict(re.findall(r'<g class="point" data-run="([^"]*)" data-verdict="([^"]*)">', text))
    assert verdicts[f"run{STEP_AT:02d}"] == "slower"
    assert [r for r, v in verdicts.items() if v == "slower"] == [f"run{STEP_AT:02d}"]
    assert '<circle class="slower"' in text
    axis = re.findall(r'rotate\(-30\)" text-anchor="end">([^<]*)</text>', text)
    assert axis == [f"{i:02d}cccccc" for i in range(RUNS)]  # short measured SHAs, oldest first


def test_trend_pages_mark_the_change_point_when_apache_otava_is_installed(site):
    pytest.importorskip("otava.analysis", reason="apache-otava not installed: pip install --no-deps apache-otava")
    text = section_of_series(site, STEP_CASE.id)
    assert re.findall(r'<g class="cp-mark" data-run="([^"]*)"', text) == [f"run{STEP_AT:02d}"]
    assert "change-point-note" not in read(site.out_dir / "trends.html")


def test_trend_pages_say_how_to_install_apache_otava_when_it_is_missing(synthetic, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "otava", None)
    monkeypatch.setitem(sys.modules, "otava.analysis", None)
    site = build_dashboard(synthetic, tmp_path / "site")
    for page in (site.out_dir / "trends.html", page_of_series(site, STEP_CASE.id)):
        text = read(page)
        assert 'id="change-point-note"' in text and "pip install --no-deps apache-otava" in text
        assert 'class="cp-mark"' not in text
    assert 'data-verdict="slower"' in section_of_series(site, STEP_CASE.id)  # regressions are still marked


def test_run_page_shows_manifest_gpu_advice_cases_copies_and_relative_trace_links(site):
    page = page_of_run(site, "run03")
    text = read(page)
    assert "dsabench run pr --backend paddle --run-id run03" in text
    assert "clocks are being held down (sw_thermal_slowdown)" in text
    assert "03cccccc" in text and "commit number 3" in text
    assert "<dt>attention kernel</dt><dd>reference</dd>" in text  # runs before the option: the reference ops
    rows = re.findall(r'<tr id="case-\d+" data-filter-item>(.*?)</tr>', text, re.S)
    row = next(r for r in rows if f">{CASES[0].id}</a>" in r)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert cells[6:10] == ["1", "-", "-", "1"]  # HtoD copies and syncs per iteration; DtoH, DtoD not traced
    href = re.search(r'<a href="([^"]+)">trace</a>', text).group(1)
    assert not href.startswith(("/", "file:", "http")), href
    assert (page.parent / href).resolve().is_file()
    assert len(cells) == 12


def test_real_runs_link_each_trace_file_that_exists(site):
    page = page_of_run(site, "pr-torch-h100")
    hrefs = re.findall(r'<a href="([^"]+)">trace</a>', read(page))
    assert len(hrefs) == 44  # one per ok case; the 8 capture failures have none
    assert all((page.parent / h).resolve().is_file() for h in hrefs)


def test_every_string_from_a_run_is_html_escaped(site):
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;"
    for page in site.pages:
        text = read(page)
        assert "<script>alert(1)" not in text, page
        assert "alert(1)</script>" not in text, page
        assert len(re.findall(r"<script", text)) == 3, page  # error collector, data block, filters
    text = read(page_of_run(site, EVIL_RUN))
    assert f"RuntimeError: {escaped}" in text  # error message
    assert f"scenario {escaped}" in text  # scenario name
    assert f"case.{escaped}" in text  # case id
    assert f"Evil GPU {escaped}" in text  # device
    assert f"Run evil-{escaped}" in text  # run id
    assert f"eeeeeeee</code> {escaped}" in text  # commit message
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in text  # inside the JSON block
    assert embedded_data(text)["run_id"] == EVIL_RUN  # and the JSON still reads back exactly
    assert f"Evil GPU {escaped}" in read(site.index)


def test_page_names_made_from_run_and_case_ids_stay_inside_their_folder(site):
    for page in site.pages:
        folders = (site.out_dir, site.out_dir / "run", site.out_dir / "trend")
        assert page.resolve().parent in [f.resolve() for f in folders]
        assert re.fullmatch(r"[A-Za-z0-9._-]+\.html", page.name) and not page.name.startswith(".")


def test_pages_fetch_nothing_from_the_network_or_the_disk(site):
    for page in site.pages:
        text = read(page)
        assert not re.search(r"\ssrc\s*=|<link\b|@import|url\(|<iframe|<img\b", text, re.I), page
        # an address may appear as escaped text (torch's OOM message cites its docs), never as a target
        assert not re.search(r"""(href|src|action|content)\s*=\s*["']?\s*(https?:)?//""", text, re.I), page
        assert "Content-Security-Policy" in text and "default-src &#39;none&#39;" in text


def test_a_directory_that_is_not_a_dashboard_is_refused_as_output(synthetic, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"not empty and holds no dsabench dashboard"):
        build_dashboard(synthetic, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_rebuilding_into_a_dashboard_directory_removes_pages_of_runs_that_are_gone(synthetic, tmp_path):
    site = build_dashboard(synthetic, tmp_path / "site")
    stale = site.out_dir / "run" / "old-run.html"
    stale.write_text("old")
    again = build_dashboard(synthetic, tmp_path / "site")
    assert not stale.exists() and len(again.pages) == len(site.pages)


def test_a_baselines_capture_failure_is_shown_as_a_finding_and_a_crash_as_a_failure(site):
    rows = re.findall(r'<tr id="case-\d+" data-filter-item>(.*?)</tr>', read(page_of_run(site, "pr-torch-h100")), re.S)
    captures = [r for r in rows if ">capture_failed<" in r]
    assert len(captures) == 8 and all('class="status status-finding"' in r for r in captures)
    assert not any("status-bad" in r for r in rows)
    torch_block = re.search(r'data-device="[^"]*" data-backend="torch">(.*?)</section>', read(site.index), re.S).group(1)
    assert '<span class="verdict-failed">' not in torch_block  # its failed pairs are the baseline's capture failures
    evil = read(page_of_run(site, EVIL_RUN))
    assert re.search(r'<span class="status status-bad"[^>]*>crashed</span>', evil)


def test_unsupported_and_invalid_cases_are_findings_in_tables_and_charts(tmp_path):
    cpu_case = case(PATCHED, graph=True, scenario="cpu")
    multi_head = Case("cpu", "decode", 8, 4096, 0, 1024, 64, 2, 128, 2048, PATCHED, False, 0)
    for i in range(2):
        run = create_run_dir(tmp_path / "runs" / f"cpu{i}", manifest(f"cpu{i}", T0 + timedelta(days=i), f"{i}" * 40))
        append_record(run, record(cpu_case, f"cpu{i}", None, "unsupported", "CUDA Graph needs a GPU"))
        append_record(run, record(multi_head, f"cpu{i}", None, "invalid", "a view needs cache_heads == 1"))
        append_record(run, record(case(BASELINE, scenario="cpu"), f"cpu{i}", samples(i, 3.0)))
    site = build_dashboard(tmp_path / "runs", tmp_path / "site")
    run_page = read(page_of_run(site, "cpu1"))
    rows = "".join(re.findall(r'<tr id="case-\d+" data-filter-item>(.*?)</tr>', run_page, re.S))
    assert len(re.findall(r'class="status status-finding"[^>]*>(?:unsupported|invalid)<', rows)) == 2
    assert "status status-bad" not in run_page
    chart = section_of_series(site, cpu_case.id)
    assert 'class="finding-mark"' in chart and 'class="failed-mark"' not in chart
    assert "expected finding" in chart and "case failed in this run" not in chart


def test_older_runs_get_a_short_page_with_only_the_cases_that_did_not_end_ok(synthetic, tmp_path, monkeypatch):
    monkeypatch.setattr(dashboard_model, "FULL_RUNS", 3)
    site = build_dashboard(synthetic, tmp_path / "site")
    old, new = read(page_of_run(site, "run00")), read(page_of_run(site, f"run{RUNS - 1:02d}"))
    assert "older than the latest 3 runs" in old and len(embedded_data(old)["items"]) == 0
    assert len(embedded_data(new)["items"]) == len(CASES)
    assert "older than the latest" not in new


def test_series_beyond_a_pages_share_go_to_numbered_pages_that_link_each_other(synthetic, tmp_path, monkeypatch):
    monkeypatch.setattr(dashboard_model, "SERIES_PER_PAGE", 1)
    site = build_dashboard(synthetic, tmp_path / "site")
    names = {p.name for p in site.pages if p.parent.name == "trend"}
    first = next(n for n in names if n.startswith("paddle.NVIDIA") and "synthetic" in n and not re.search(r"-\d\.html", n))
    numbered = {first.replace(".html", f"-{k}.html") for k in range(2, len(CASES) + 1)}
    assert numbered <= names
    assert all(f'href="{n}"' in read(site.out_dir / "trend" / first) for n in numbered)


def run_cli(*argv) -> int:
    args = build_parser().parse_args([str(a) for a in argv])
    return args.func(args)


def test_cli_dashboard_writes_the_site_and_exits_0(synthetic, tmp_path, capsys):
    assert run_cli("dashboard", synthetic, "--out", tmp_path / "site") == 0
    assert f"open {tmp_path / 'site' / 'index.html'}" in capsys.readouterr().out


def test_cli_dashboard_exits_2_on_a_directory_without_runs(tmp_path, capsys):
    assert run_cli("dashboard", tmp_path, "--out", tmp_path / "site") == 2
    assert "dsabench dashboard: error:" in capsys.readouterr().err


# -------------------------------------------------------------------------- headless Chromium

BROWSER_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
)  # fmt: skip


def find_chromium() -> str:
    """The chromium executable; without one, fail under CI=true and skip elsewhere."""
    found = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    if found is None:
        reason = "chromium is not installed (Debian: apt-get install -y chromium; .ci/run installs it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {reason}: the dashboard's browser tests must run in CI")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


def test_without_chromium_the_browser_tests_fail_in_ci_and_skip_elsewhere(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and chromium is not installed"):
        find_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        find_chromium()


class _Dom(HTMLParser):
    """The attributes of <html>, and of every element with an id, from a dumped DOM."""

    def __init__(self):
        super().__init__()
        self.root: dict = {}
        self.by_id: dict[str, dict] = {}
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "html":
            self.root = a
        if "id" in a:
            self.by_id[a["id"]] = a


def load_in_chromium(chromium: str, page: Path, fragment: str = "") -> tuple[_Dom, str]:
    """Load a page in headless Chromium and return its DOM after the scripts ran; fail on any
    error the page collected, any console message, or a page whose script did not finish."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [chromium, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri() + fragment],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    dom = _Dom()
    dom.feed(proc.stdout)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    errors = dom.root.get("data-js-errors")
    assert not console, f"{page.name}: console messages: {console}"
    listed = re.search(r'<pre id="js-errors".*?</pre>', proc.stdout, re.S)
    assert errors is None, f"{page.name}: {errors} JavaScript error(s): {listed.group(0) if listed else ''}"
    assert dom.root.get("data-ready") == "1", f"{page.name}: the page script did not finish (no data-ready)"
    return dom, proc.stdout


def visible(dom: _Dom, prefix: str) -> set[str]:
    return {i for i, a in dom.by_id.items() if i.startswith(prefix) and "hidden" not in a}


def test_every_kind_of_page_loads_in_chromium_without_errors_and_draws_its_charts(site, chromium):
    dom, text = load_in_chromium(chromium, site.index)
    assert len(re.findall(r'<svg class="chart speedup"', text)) == 2  # H100 torch and paddle; the evil
    assert "1 <span class=\"verdict-failed\">failed</span>" in text  # GPU's only pair failed: nothing to draw
    dom, text = load_in_chromium(chromium, site.out_dir / "trends.html")
    charts = re.findall(r'<svg class="chart trend"[^>]*data-points="(\d+)"', text)
    assert len(charts) == site.series and all(int(n) >= 1 for n in charts)
    assert len(dom.by_id["filters"] and [t for t, a in dom.tags if t == "select"]) == 8  # one per axis
    load_in_chromium(chromium, page_of_series(site, STEP_CASE.id))
    text = section_of_series(site, STEP_CASE.id)
    assert len(re.findall(r'<g class="point"', text)) == RUNS
    assert re.search(r'<svg class="chart trend"[^>]*data-points="8"', text)
    load_in_chromium(chromium, page_of_run(site, "pr-torch-h100"))


def test_the_page_of_a_run_with_markup_in_its_strings_runs_no_script_of_theirs(site, chromium):
    dom, text = load_in_chromium(chromium, page_of_run(site, EVIL_RUN))
    assert sum(1 for tag, _ in dom.tags if tag == "script") == 3
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    options = re.findall(r"<option[^>]*>([^<]*)</option>", text)
    assert "scenario &lt;script&gt;alert(1)&lt;/script&gt;\"'&amp;" in options  # filter built from the JSON


def test_filters_from_the_url_hash_show_only_the_matching_case_series(site, chromium):
    trends = site.out_dir / "trends.html"
    items = embedded_data(read(trends))["items"]
    want = {i["el"] for i in items if i["backend"] == "paddle" and i["graph"] == "graph" and i["variant"] == "patched"}
    assert len(want) == 1 + 0  # the step case (the evil run's graph case is a baseline)
    dom, _ = load_in_chromium(chromium, trends, "#backend=paddle&graph=graph&variant=patched")
    assert visible(dom, "series-") == want
    assert dom.root["data-shown"] == "1"
    assert dom.by_id["filter-link"]["href"] == "#variant=patched&graph=graph&backend=paddle"
    dom, _ = load_in_chromium(chromium, trends, "#phase=decode&batch=64&device=" + DEVICE.replace(" ", "%20"))
    expected = {i["el"] for i in items if i["phase"] == "decode" and i["batch"] == "64" and i["device"] == DEVICE}
    assert visible(dom, "series-") == expected and len(expected) > 1


def test_the_run_page_filters_cases_by_status_from_the_url_hash(site, chromium):
    dom, _ = load_in_chromium(chromium, page_of_run(site, "pr-torch-h100"), "#status=capture_failed")
    assert len(visible(dom, "case-")) == 8
    assert dom.root["data-shown"] == "8"


def test_the_browser_check_catches_a_script_error(site, chromium, tmp_path):
    """The harness itself: a page whose script throws must not pass as loaded."""
    text = read(site.index)
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)  # let the edited script run
    text = text.replace('document.documentElement.setAttribute("data-ready", "1");', 'throw new Error("planted");')
    broken = tmp_path / "broken.html"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(AssertionError, match="planted|console messages"):
        load_in_chromium(chromium, broken)


def test_no_chart_label_is_clipped_in_chromium(site, chromium, tmp_path):
    """Every text of every chart on the index and a trend page, measured by the browser itself
    (getBBox), lies inside its SVG's view box: no row label is cut at the left edge."""
    charts = re.findall(r"<svg class=\"chart.*?</svg>", read(site.index), re.S)
    charts += re.findall(r"<svg class=\"chart.*?</svg>", read(page_of_series(site, STEP_CASE.id)), re.S)
    assert len(charts) >= 3
    measure = (
        "var bad = [];"
        "document.querySelectorAll('svg.chart').forEach(function (svg) {"
        "  var box = svg.viewBox.baseVal;"
        "  svg.querySelectorAll('text').forEach(function (t) {"
        "    var b = t.getBBox(), m = t.getCTM(), x0 = b.x * m.a + m.e, x1 = (b.x + b.width) * m.a + m.e;"
        "    if (x0 < box.x - 0.5 || x1 > box.x + box.width + 0.5) { bad.push(t.textContent); }"
        "  });"
        "});"
        "document.documentElement.setAttribute('data-clipped', bad.join('|'));"
        "document.documentElement.setAttribute('data-ready', '1');"
    )
    css = re.search(r"<style>(.*?)</style>", read(site.index), re.S).group(1)
    page = tmp_path / "charts.html"
    page.write_text(f"<!DOCTYPE html><html><head><style>{css}</style></head><body>{''.join(charts)}"
                    f"<script>{measure}</script></body></html>", encoding="utf-8")  # fmt: skip
    dom, _ = load_in_chromium(chromium, page)
    assert dom.root.get("data-clipped") == "", dom.root.get("data-clipped")


def test_two_impls_of_one_case_in_one_run_are_two_series_and_two_rows_not_one_overwriting_the_other(tmp_path):
    """A run of the mirror and a FastDeploy commit measures the same case id twice (the commit's
    variant is the mirror's case): each is its own trend (named as `history` names it, so change
    points land on it) and its own row with its own median."""
    c = case(BASELINE)
    fd = "fastdeploy:0123456789ab"
    for i in range(2):
        run_id = f"impls{i}"
        path = create_run_dir(tmp_path / "results" / run_id, manifest(run_id, T0 + timedelta(days=i), "d" * 40))
        append_record(path, record(c, run_id, samples(i, 2.0)))
        append_record(path, {**record(c, run_id, samples(10 + i, 5.0)), "impl": fd})
    from dsabench.store.frames import load_runs

    dash = dashboard_model.collect(load_runs(sorted((tmp_path / "results").iterdir())), 0.03, change_points=False)
    medians = {s.case_id: [round(p.summary.median) for p in s.points] for s in dash.series}
    assert medians == {c.id: [2, 2], f"{c.id}@fastdeploy": [5, 5]}  # history's series ids: commits are its points
    out = tmp_path / "site"
    build_dashboard([tmp_path / "results"], out, change_points=False)
    page = next((out / "run").glob("impls1*.html")).read_text()
    assert html.escape(f"{c.id}@{fd}") in page and "5.0" in page and "2.0" in page
