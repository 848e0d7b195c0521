"""The real CLI in a child process, as a user runs it: `python -m dsabench ARGS` from the checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def dsabench(*args, cwd=REPO, timeout=600, env=None, preexec_fn=None) -> subprocess.CompletedProcess:
    """Its exit code, stdout and stderr; `timeout` only guards against a hang."""
    return subprocess.run([sys.executable, "-m", "dsabench", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env, preexec_fn=preexec_fn)
