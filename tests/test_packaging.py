"""What a normal install gets: every package, the presets, one extra per optional part, and a
bootstrap that installs what the tests need and says how to reach `dsabench`. The end-to-end proof
(wheel built, installed into a fresh environment, used from another directory) is
scripts/wheel_check.sh, which CI runs after the tests."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE_ROOT = REPO / "suite"

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bootstrap():
    spec = importlib.util.spec_from_file_location("dsabench_bootstrap", SOURCE_ROOT / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_package_discovery_finds_every_directory_that_holds_python_code(pyproject):
    setuptools = pytest.importorskip("setuptools")
    find = pyproject["tool"]["setuptools"]["packages"]["find"]
    found = set(setuptools.find_packages(str(REPO / find["where"][0]), include=find["include"]))
    code_dirs = {
        ".".join(p.parent.relative_to(SOURCE_ROOT).parts)
        for p in (SOURCE_ROOT / "dsabench").rglob("*.py") if "__pycache__" not in p.parts
    }
    assert code_dirs - found == set(), "a directory of modules without __init__.py is left out of the wheel"


def test_presets_ship_inside_the_package_from_the_top_level_scenarios_directory(pyproject):
    link = SOURCE_ROOT / "dsabench" / "scenarios"
    assert link.is_symlink() and link.resolve() == (REPO / "scenarios").resolve()
    assert "scenarios/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["dsabench"]


def test_each_optional_part_has_an_extra(pyproject):
    extras = pyproject["project"]["optional-dependencies"]
    assert {"cpu", "gpu", "torch", "nvtx", "parquet", "history", "test"} <= set(extras)


def test_bootstrap_installs_what_the_test_extra_lists(pyproject, bootstrap):
    assert sorted(bootstrap.TEST_DEPS.values()) == sorted(pyproject["project"]["optional-dependencies"]["test"])


def test_the_history_extra_and_the_bootstrap_pin_the_same_apache_otava(pyproject, bootstrap):
    assert pyproject["project"]["optional-dependencies"]["history"] == [bootstrap.OTAVA]


def test_bootstrap_names_the_command_and_how_to_put_it_on_the_path(bootstrap, tmp_path):
    scripts = tmp_path / ".venv" / "bin"
    line = bootstrap.reach_hint(scripts, None, tmp_path)
    assert re.search(r"call dsabench as \.venv/bin/dsabench, or run `source \.venv/bin/activate`", line)


def test_bootstrap_names_the_absolute_path_when_run_from_elsewhere(bootstrap, tmp_path):
    scripts = tmp_path / "checkout" / ".venv" / "bin"
    (tmp_path / "elsewhere").mkdir()
    assert str(scripts / "dsabench") in bootstrap.reach_hint(scripts, None, tmp_path / "elsewhere")


def test_bootstrap_says_when_dsabench_is_already_on_the_path(bootstrap, tmp_path):
    scripts = tmp_path / "env" / "bin"
    line = bootstrap.reach_hint(scripts, str(scripts / "dsabench"), tmp_path)
    assert line.endswith("is on your PATH") and "source" not in line


def test_ci_runs_the_wheel_check_after_the_tests():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.index("suite/bootstrap.py test") < ci.index("scripts/wheel_check.sh")


def test_the_test_command_runs_a_worker_per_cpu_keeps_files_together_and_leaves_slow_tests_out(bootstrap):
    cmd = bootstrap.pytest_command("py", [], cpus=2, have_xdist=True)
    assert cmd == ["py", "-m", "pytest", "tests", "-q", "-n", "2", "--dist", "loadfile", "-m", "not slow"]
    assert bootstrap.pytest_command("py", [], cpus=64, have_xdist=True)[6] == "8"


def test_the_users_own_selection_replaces_the_defaults(bootstrap):
    cmd = bootstrap.pytest_command("py", ["-m", "slow", "-n", "1"], cpus=2, have_xdist=True)
    assert cmd == ["py", "-m", "pytest", "tests", "-q", "-m", "slow", "-n", "1"]
    cmd = bootstrap.pytest_command("py", [str(Path(__file__))], cpus=2, have_xdist=False)
    assert cmd == ["py", "-m", "pytest", "-q", "-m", "not slow", str(Path(__file__))]


def test_ci_runs_the_slow_tests_too():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "suite/bootstrap.py test -m slow" in ci


class _Dist:
    def __init__(self, direct_url: str | None):
        self.direct_url = direct_url

    def read_text(self, name):
        return self.direct_url if name == "direct_url.json" else None


@pytest.mark.parametrize("dists, installed", [
    ([], False),  # suite/dsabench next to the script imports, but nothing is installed
    ([_Dist(None)], False),  # a stale dsabench.egg-info in the checkout
    ([_Dist('{"url": "file:///elsewhere/dsabench", "dir_info": {"editable": true}}')], False),
    ([_Dist(None), _Dist(f'{{"url": "{REPO.as_uri()}", "dir_info": {{"editable": true}}}}')], True),
    ([_Dist(f'{{"url": "{REPO.as_uri()}", "dir_info": {{}}}}')], False),  # a copy, not this checkout's files
])
def test_the_bootstrap_counts_only_an_editable_install_of_this_checkout(bootstrap, monkeypatch, dists, installed):
    monkeypatch.setattr(bootstrap.importlib.metadata, "distributions", lambda name: dists)
    assert bootstrap._suite_installed() is installed
