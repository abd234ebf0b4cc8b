"""The ``site`` fixture: a directory on ``sys.path`` for one test's fake distributions."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "site"
    path.mkdir()
    sys.path.insert(0, str(path))
    importlib.invalidate_caches()
    before = set(sys.modules)
    yield path
    sys.path.remove(str(path))
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if str(path) in str(getattr(module, "__file__", "") or ""):
            del sys.modules[name]
    importlib.invalidate_caches()
