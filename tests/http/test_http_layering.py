"""The HTTP layer's modules depend on each other one way, and endpoints are replayed by
the HTTP meaning of their method."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import notifier.http
from notifier.http import Endpoint

PACKAGE = Path(notifier.http.__file__).parent


def _imports(path: Path) -> set[str]:
    """``notifier.http`` modules ``path`` imports anywhere in it, functions included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("notifier.http."):
            found.add(node.module.rsplit(".", 1)[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("notifier.http."):
                    found.add(alias.name.rsplit(".", 1)[1])
    return found


def test_no_two_modules_of_the_http_layer_import_each_other():
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            step == goal or (step not in seen and reaches(step, goal, seen | {step}))
            for step in graph.get(start, ())
        )

    cycles = sorted(name for name in graph if reaches(name, name))
    assert cycles == []


@pytest.mark.parametrize(
    ("method", "replayable"),
    [
        ("GET", True),
        ("HEAD", True),
        ("OPTIONS", True),
        ("PUT", True),
        ("DELETE", True),
        ("POST", False),
        ("PATCH", False),
    ],
)
def test_only_idempotent_methods_are_sent_again_by_default(method, replayable):
    assert Endpoint("e", method, "p").idempotent is replayable
