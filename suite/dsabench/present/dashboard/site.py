"""A static HTML dashboard over every run under a results directory: `dsabench dashboard`.

The site is self-contained and fetches nothing: the CSS and JavaScript in assets/ are inlined
into each page, charts are inline SVG (svg.py), and each page carries a Content-Security-Policy
of `default-src 'none'` that lets only its own two scripts (by hash) and its own stylesheet run,
so a stray URL can neither load nor execute. Pages (templates/):

- `index.html`: the latest run of each device model and backend (cases, statuses, and the
  patched-vs-baseline speedups with their intervals), and every run;
- `trends.html`: a compact chart per case series (device, backend, case), filterable by axis;
- `trend/<backend>.<device>.<scenario>.html`: the case series of one scenario in full, median
  per run with the 95% CI of the median, run-vs-previous-run verdicts, change points; at most
  model.SERIES_PER_PAGE series a page, so the page count follows scenarios, not cases;
- `run/<run>.html`: one run: manifest, environment, GPU state and advice, and its cases.

The data model is model.py, the charts svg.py, the pages pages.py; this module loads the runs,
checks the output directory and writes the files.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

from markupsafe import Markup

from dsabench.analysis.compare import DEFAULT_THRESHOLD
from dsabench.errors import InputError
from dsabench.present.dashboard.model import CaseSeries, collect
from dsabench.present.dashboard.pages import render_index, render_run_page, render_trend_page, render_trends
from dsabench.store.frames import load_runs

# Written into DIR on every build; a non-empty DIR without it is refused, so a typo in --out
# cannot overwrite someone's files. With it, DIR is replaced whole by the new build.
MARKER = ".dsabench-dashboard"


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@dataclass(frozen=True)
class Assets:
    """The stylesheet and the two scripts every page inlines, and the CSP that admits only them."""

    css: Markup
    errors_js: Markup
    js: Markup

    @property
    def csp(self) -> str:
        return (
            f"default-src 'none'; script-src {_csp_hash(self.errors_js)} {_csp_hash(self.js)}; "
            f"style-src {_csp_hash(self.css)}; img-src 'none'; connect-src 'none'; font-src 'none'; "
            "base-uri 'none'; form-action 'none'"
        )


def load_assets() -> Assets:
    """The inlined assets; each must be safe inside its <style>/<script> element."""
    texts = {}
    for name in ("dashboard.css", "errors.js", "dashboard.js"):
        text = resources.files("dsabench.present.dashboard").joinpath("assets", name).read_text(encoding="utf-8")
        if re.search(r"</?(script|style)|<!--", text, re.I):
            raise InputError(f"dashboard assets/{name}: holds '<script', '</style' or '<!--', which would end or "
                             "alter its inline element; reword it")  # fmt: skip
        texts[name] = Markup(text)
    return Assets(texts["dashboard.css"], texts["errors.js"], texts["dashboard.js"])


@dataclass(frozen=True)
class Site:
    """What `build_dashboard` wrote: the directory, its pages (index first), and the counts."""

    out_dir: Path
    pages: tuple[Path, ...]
    runs: int
    series: int
    change_note: str | None
    warnings: tuple[str, ...]

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"


def _check_out(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory; expected a new or empty directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise InputError(
            f"--out {out_dir}: directory is not empty and holds no dsabench dashboard ({MARKER} missing); "
            "expected a new or empty directory, or one an earlier `dsabench dashboard` wrote"
        )


def _staging(out_dir: Path) -> Path:
    """A new directory beside out_dir (same file system, so the build moves into place by rename),
    with the site's layout and its marker."""
    where = out_dir.absolute()
    where.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{where.name}.building-", dir=where.parent))
    os.chmod(stage, 0o755 & ~_umask())
    for sub in ("run", "trend"):
        (stage / sub).mkdir()
    (stage / MARKER).write_text("written by `dsabench dashboard`, which replaces this directory on each build\n")
    return stage


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _move_into_place(stage: Path, out_dir: Path) -> None:
    """The finished build becomes out_dir: an earlier build (or an empty directory) is renamed
    aside, the new one renamed in, the old one removed. Readers see the old site or the new one."""
    old = None
    if out_dir.exists():
        where = out_dir.absolute()
        old = Path(tempfile.mkdtemp(prefix=f".{where.name}.old-", dir=where.parent))
        os.rename(out_dir, old / "site")
    try:
        os.rename(stage, out_dir)
    except OSError:
        if old is not None:
            os.rename(old / "site", out_dir)  # put the earlier build back
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_dashboard(
    paths: Sequence[Path] | Path,
    out_dir: Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    change_points: bool = True,
) -> Site:
    """Load every run under `paths` (results directories or run directories, searched
    recursively; shards of one run_id are one run) and write the site into `out_dir`.

    Raises InputError for unreadable runs (as every analysis verb does) and for an `out_dir`
    that is not empty and was not written by an earlier build. Pages are written one at a time,
    so memory holds the model and one page, never the whole site, into a temporary directory
    beside `out_dir` that replaces it only when every page is written: a build that fails (a full
    disk) leaves `out_dir` as it was and no partial site.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    frame = load_runs([Path(p) for p in paths])
    out_dir = Path(out_dir)
    dash = collect(frame, threshold, change_points)
    assets = load_assets()
    _check_out(out_dir)
    try:
        stage = _staging(out_dir)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot write there ({exc.strerror or exc}); expected a writable "
                         "directory") from None
    try:
        site = _write_site(dash, assets, stage, out_dir)
        _move_into_place(stage, out_dir)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: could not write the site ({exc.strerror or exc}); {out_dir} is as it "
                         "was") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # gone once moved into place; a failed build's partial site
    return site


def _write_site(dash, assets: Assets, stage: Path, out_dir: Path) -> Site:
    """Every page into `stage`; the Site names them where they will be, under `out_dir`."""
    written = []

    def write(rel: str, text: str) -> None:
        (stage / rel).write_text(text, encoding="utf-8")
        written.append(out_dir / rel)

    write("index.html", render_index(dash, assets))
    write("trends.html", render_trends(dash, assets))
    for run in dash.runs.values():
        write(run.page, render_run_page(dash, run, out_dir, assets))
    by_file: dict[str, list[CaseSeries]] = {}
    for s in dash.series:
        by_file.setdefault(s.file, []).append(s)
    for file, members in by_file.items():
        write(file, render_trend_page(dash, members, assets))
    return Site(out_dir, tuple(written), len(dash.runs), len(dash.series), dash.change_note, dash.warnings)

