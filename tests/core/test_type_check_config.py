"""A bare ``mypy`` from the project root checks, strictly, the core and every bundled plugin,
and CI runs it after the test suite: each ships ``py.typed``, so its annotations are a promise.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import notifier

ROOT = Path(notifier.__file__).resolve().parent.parent


def _mypy_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]


def _typed_packages() -> dict[str, Path]:
    """Every import package shipping ``py.typed``: the core and plugins/*/notifier_*."""
    found = {"notifier": ROOT}
    for marker in sorted(ROOT.glob("plugins/*/notifier_*/py.typed")):
        found[marker.parent.name] = marker.parent.parent
    return found


def test_mypy_is_strict():
    assert _mypy_config()["strict"] is True


def test_mypy_checks_the_core_and_every_plugin_package():
    packages = _typed_packages()
    assert len(packages) > 1, "no plugin package found under plugins/"
    assert set(packages) <= set(_mypy_config()["packages"])


def test_mypy_finds_each_plugin_package_where_it_lives():
    searched = {
        Path(entry.replace("$MYPY_CONFIG_FILE_DIR", str(ROOT))).resolve()
        for entry in _mypy_config()["mypy_path"]
    }
    outside = {name: where for name, where in _typed_packages().items() if name != "notifier"}
    missing = {name for name, where in outside.items() if where.resolve() not in searched}
    assert not missing, f"not on mypy_path: {sorted(missing)}"


def test_ci_runs_mypy_after_the_test_suite():
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    tests = lines.index("python -m pip install -r requirements-test.txt && python -m pytest")
    assert "python -m mypy" in lines[tests + 1 :]


def test_the_type_checker_and_stubs_are_test_requirements():
    text = (ROOT / "requirements-test.txt").read_text(encoding="utf-8")
    names = {line.split(">")[0].split("=")[0].strip() for line in text.splitlines()}
    assert {"mypy", "types-requests", "types-cachetools"} <= names
