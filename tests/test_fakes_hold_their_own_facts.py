"""A fake provider holds the provider's facts itself: importing it loads none of its
plugin's code, so a fake can disagree with the plugin and catch its mistakes."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
import {package}.testing
loaded = sorted(m for m in sys.modules if m.startswith("{package}.") and m != "{package}.testing")
print(" ".join(loaded))
"""


@pytest.mark.parametrize("name", ["wework", "dingtalk", "feishu", "slack"])
def test_importing_a_fake_loads_none_of_its_plugins_modules(name: str):
    package = f"notifier_{name}"
    run = subprocess.run(
        [sys.executable, "-c", CHECK.format(package=package)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert run.stdout.split() == [], f"{package}.testing imports {run.stdout.strip()}"
