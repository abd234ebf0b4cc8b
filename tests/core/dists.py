"""Fake installed distributions: a package plus a real ``*.dist-info``.

:func:`install_dist` writes METADATA and ``entry_points.txt`` into a directory on
``sys.path`` (the ``site`` fixture), so plugin discovery runs through
``importlib.metadata`` exactly as for a pip install.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Mapping
from pathlib import Path

EXAMPLE_PLUGIN = Path(__file__).parents[1] / "example_plugin"


def install_dist(
    site: Path,
    name: str,
    entry_points: Mapping[str, str],
    files: Mapping[str, str],
    version: str = "0.1.0",
) -> None:
    """Write ``files`` (relative path -> source) and a dist-info for ``name`` into ``site``."""
    for relative, source in files.items():
        target = site / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[notifier]\n{lines}", encoding="utf-8")


def install_example_plugin(site: Path) -> None:
    """Install tests/example_plugin (its own pyproject) into ``site`` as a dist-info."""
    project = tomllib.loads((EXAMPLE_PLUGIN / "pyproject.toml").read_text())["project"]
    shutil.copytree(EXAMPLE_PLUGIN / "notifier_memo", site / "notifier_memo")
    install_dist(site, project["name"], project["entry-points"]["notifier"], {}, project["version"])
