"""The package's shape is part of its contract: data flows one way, frameworks stay in bench/,
no import cycles, no module past 500 lines (scripts/import_graph.py reads the imports statically)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_imports_follow_the_data_flow_with_no_cycle_and_no_framework_outside_bench():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "import_graph.py"), str(REPO)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cycles: none" in r.stdout and "arrows against the flow: none" in r.stdout
    assert "framework imports outside bench: none" in r.stdout


def test_no_module_of_the_package_is_over_500_lines():
    big = {str(p.relative_to(REPO)): n for p in (REPO / "suite" / "dsabench").rglob("*.py")
           if (n := sum(1 for _ in p.open(encoding="utf-8"))) > 500}
    assert not big, big
