"""Set up what is missing, then run the default benchmark or the tests. Standard library only.

    python3 suite/bootstrap.py run  [dsabench run arguments]
    python3 suite/bootstrap.py test [pytest arguments]    # all but the slow tests, in parallel
    python3 suite/bootstrap.py test -m slow               # the slow end-to-end ones (CI runs both)

Changes nothing outside the checkout: everything is installed into a virtual environment, the
one already active if there is one, else `.venv` in the checkout, made with the system's site
packages visible so that an installed GPU build of Paddle or PyTorch is used and never replaced.
The suite is installed there in editable mode; a `dsabench` installed elsewhere is left alone
(pip does not uninstall outside the environment it installs into, and the environment's own
copy shadows it).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import urllib.parse
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
PADDLE_CPU = "paddlepaddle>=3.0"
TORCH_CPU = "torch==2.13.0"  # the CPU wheel these CI machines hold on disk
# The `test` extra of pyproject.toml, by module name (tests/test_packaging.py keeps the two equal).
TEST_DEPS = {"pytest": "pytest>=7", "hypothesis": "hypothesis>=6", "xdist": "pytest-xdist>=3.5", "pyarrow": "pyarrow>=14"}
# Not the `history` extra: apache-otava 0.8.0 pins numpy==2.2.0.* and scipy<1.17 and brings BigQuery,
# Postgres and Slack clients; its change-point algorithm needs only numpy and scipy, so --no-deps.
OTAVA = "apache-otava==0.8.0"


def in_virtual_env(prefix: str = sys.prefix, base_prefix: str = sys.base_prefix) -> bool:
    return prefix != base_prefix


def venv_python(venv_dir: Path = VENV) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def _pip(*args: str) -> None:
    """pip's own output, progress bars included, goes straight to the terminal: Paddle and torch
    take minutes to download, and a silent bootstrap looks hung."""
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args]
    print("+", shlex.join(cmd), flush=True)
    code = subprocess.call(cmd)
    if code != 0:
        raise SystemExit(f"bootstrap: pip install {' '.join(args)} failed (exit {code}; pip's message is above)")


def _suite_installed() -> bool:
    """This checkout installed, editable, into the running environment. Not an import test: run as
    `python3 suite/bootstrap.py`, this script's own directory holds suite/dsabench, which an import
    finds although nothing is installed (`python -m dsabench` from the checkout would then fail)."""
    for dist in importlib.metadata.distributions(name="dsabench"):
        info = json.loads(dist.read_text("direct_url.json") or "{}")
        url = urllib.parse.urlparse(info.get("url", ""))
        if info.get("dir_info", {}).get("editable") and url.scheme == "file" and \
                Path(urllib.parse.unquote(url.path)).resolve() == REPO:
            return True
    return False


def ensure(for_tests: bool) -> None:
    """Install, into the running environment, what `import` cannot find."""
    if _missing("paddle"):
        _pip(PADDLE_CPU)
    if not _suite_installed():
        _pip("-e", str(REPO))
    if for_tests:
        missing = [req for module, req in TEST_DEPS.items() if _missing(module)]
        if missing:
            _pip(*missing)
        if _missing("torch"):
            _pip(TORCH_CPU)
        if _missing("otava"):  # change points; its pinned numpy/scipy would downgrade ours, hence --no-deps
            _pip("--no-deps", OTAVA)


def reach_hint(scripts_dir: Path, on_path: str | None, cwd: Path) -> str:
    """One line on how to call `dsabench` from the shell that ran the bootstrap: the bootstrap's
    own `.venv` is not activated in that shell, so a bare `dsabench` would not be found there."""
    exe = scripts_dir / ("dsabench.exe" if os.name == "nt" else "dsabench")
    if on_path is not None and Path(on_path).resolve() == exe.resolve():
        return f"bootstrap: `dsabench` ({exe}) is on your PATH"
    def short(path: Path) -> str:
        rel = os.path.relpath(path, cwd)
        return str(path) if rel.startswith("..") else rel
    activate = short(scripts_dir / ("activate.bat" if os.name == "nt" else "activate"))
    return f"bootstrap: call dsabench as {short(exe)}, or run `source {activate}` once to put `dsabench` on your PATH"


def pytest_command(python: str, rest: list[str], cpus: int, have_xdist: bool) -> list[str]:
    """The test command: one pytest worker per CPU (at most 8) with each test file kept on one worker
    (its module-scoped runs are made once), and without the tests marked slow; arguments of the
    user's own (-n, -p no:xdist, -m) take their place."""
    named = any("::" in a or (not a.startswith("-") and Path(a).exists()) for a in rest)  # tests of the user's choice
    cmd = [python, "-m", "pytest", *([] if named else ["tests"]), "-q"]
    asked = " ".join(rest)
    if have_xdist and not any(flag in rest for flag in ("-n", "--numprocesses")) and "no:xdist" not in asked:
        cmd += ["-n", str(max(1, min(cpus, 8))), "--dist", "loadfile"]
    if "-m" not in rest:
        cmd += ["-m", "not slow"]
    return cmd + rest


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 10):
        raise SystemExit(f"bootstrap: dsabench needs Python >= 3.10, this is {sys.version.split()[0]}")
    if not argv or argv[0] not in ("run", "test"):
        raise SystemExit("usage: python3 suite/bootstrap.py run [dsabench run args] | test [pytest args]")
    if not in_virtual_env():
        python = venv_python()
        if not python.exists():
            print(f"bootstrap: making {VENV} (system site packages visible: an installed GPU Paddle or PyTorch is used)",
                  flush=True)
            venv.create(VENV, with_pip=True, system_site_packages=True)
        os.execv(python, [str(python), __file__, *argv])
    verb, rest = argv[0], argv[1:]
    ensure(for_tests=verb == "test")
    hint = reach_hint(Path(sys.executable).parent, shutil.which("dsabench"), Path.cwd())
    os.chdir(REPO)
    if verb == "run":
        cmd = [sys.executable, "-m", "dsabench", "run", *rest]
    else:
        cmd = pytest_command(sys.executable, rest, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                             else os.cpu_count() or 1, not _missing("xdist"))
    print("+", shlex.join(cmd), flush=True)
    code = subprocess.call(cmd)
    print(hint, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
