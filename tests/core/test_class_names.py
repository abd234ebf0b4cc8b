"""Each class name in the core means one thing: no two of its classes share a name."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import notifier

PACKAGE = Path(notifier.__file__).resolve().parent


def test_no_two_classes_of_the_core_share_a_name():
    defined: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                defined[node.name].append(str(path.relative_to(PACKAGE.parent)))
    shared = {name: where for name, where in defined.items() if len(where) > 1}
    assert not shared, f"one class name, several classes: {shared}"
