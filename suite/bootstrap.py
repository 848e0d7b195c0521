"""Set up what is missing, then run the default benchmark or the tests. Standard library only.

    python3 suite/bootstrap.py run  [dsabench run arguments]
    python3 suite/bootstrap.py test [pytest arguments]

Never replaces a Paddle or PyTorch that is already installed (a GPU build from Paddle's own
index, say): each is installed only when `import` cannot find it. Where pip refuses to install
into this Python (PEP 668, "externally managed"), a virtual environment `.venv` in the
repository is made and the command re-runs inside it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
PADDLE_CPU = "paddlepaddle>=3.0"
TORCH_CPU = "torch==2.13.0"  # the CPU wheel these CI machines hold on disk
TEST_DEPS = ["pytest>=7", "hypothesis>=6"]
OTAVA = "apache-otava==0.8.0"


def _missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args]
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(proc.stdout[-2000:])
    if proc.returncode != 0:
        if "externally-managed-environment" in proc.stderr and sys.prefix == sys.base_prefix:
            raise _ExternallyManaged()
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"bootstrap: pip install {' '.join(args)} failed (exit {proc.returncode})")


class _ExternallyManaged(Exception):
    pass


def _suite_installed() -> bool:
    spec = importlib.util.find_spec("dsabench")
    return spec is not None and spec.origin is not None and Path(spec.origin).resolve() == REPO / "suite" / "__init__.py"


def ensure(for_tests: bool) -> None:
    if _missing("paddle"):
        _pip(PADDLE_CPU)
    if not _suite_installed():
        _pip("-e", str(REPO))
    if for_tests:
        if _missing("pytest") or _missing("hypothesis"):
            _pip(*TEST_DEPS)
        if _missing("torch"):
            _pip(TORCH_CPU)
        if _missing("otava"):  # change points; its pinned numpy/scipy would downgrade ours, hence --no-deps
            _pip("--no-deps", OTAVA)


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 10):
        raise SystemExit(f"bootstrap: dsabench needs Python >= 3.10, this is {sys.version.split()[0]}")
    if not argv or argv[0] not in ("run", "test"):
        raise SystemExit("usage: python3 suite/bootstrap.py run [dsabench run args] | test [pytest args]")
    verb, rest = argv[0], argv[1:]
    try:
        ensure(for_tests=verb == "test")
    except _ExternallyManaged:
        if not VENV.exists():
            print(f"bootstrap: this Python is externally managed; making {VENV}", flush=True)
            venv.create(VENV, with_pip=True)
        python = VENV / "bin" / "python"
        os.execv(python, [str(python), __file__, *argv])
    os.chdir(REPO)
    if verb == "run":
        cmd = [sys.executable, "-m", "dsabench", "run", *rest]
    else:
        cmd = [sys.executable, "-m", "pytest", "tests", "-q", *rest]
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
