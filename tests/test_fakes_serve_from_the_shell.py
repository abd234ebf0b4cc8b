"""Every shipped fake provider serves from the shell: ``python -m notifier_<name>.testing``
prints its address, writes a configuration pointed at it, and serves until terminated."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from notifier.testing.serving import Served, serve_from_shell

FAKES = ["wework", "dingtalk", "feishu", "slack", "email"]
ADDRESS = re.compile(r"^Fake\w+ serving at (?P<address>(?:http|smtp)://127\.0\.0\.1:\d+/?\S*)$")


@pytest.mark.slow
@pytest.mark.parametrize("name", FAKES)
def test_a_fake_run_as_a_module_serves_until_terminated_and_takes_a_message(
    name: str, tmp_path: Path
):
    config = tmp_path / "fake.toml"
    fake = subprocess.Popen(
        [sys.executable, "-m", f"notifier_{name}.testing", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        first = fake.stdout.readline().rstrip("\n")
        assert ADDRESS.match(first), f"first line: {first!r}; stderr: {fake.stderr.read()!r}"
        address = ADDRESS.match(first)["address"]  # type: ignore[index]
        assert address.rsplit(":", 1)[1].split("/")[0] in config.read_text(encoding="utf-8")
        send = ["send", "--config", str(config), "--json", "--title", "Disk almost full"]
        sent = subprocess.run(
            [sys.executable, "-m", "notifier", *send],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        [receipt] = json.loads(sent.stdout)
        assert receipt["outcome"] == "delivered", receipt
        assert fake.poll() is None, "the fake stopped serving by itself"
    finally:
        fake.send_signal(signal.SIGTERM)
        _, err = fake.communicate(timeout=10)
    assert fake.returncode == 0, err


def test_serving_prints_the_address_line_first_then_the_configuration(tmp_path: Path):
    from notifier.testing import LocalServer

    stop, lines = threading.Event(), []

    class Out:
        def write(self, text: str) -> None:
            lines.append(text)
            if "Ctrl-C" in text:
                stop.set()

        def flush(self) -> None:
            pass

    def served(server: LocalServer) -> Served:
        return Served(
            server.root, "hook", f'[channels.hook]\nkind = "webhook"\nurl = "{server.root}"\n'
        )

    status = serve_from_shell(
        "fake",
        LocalServer,
        served,
        ["--config", str(tmp_path / "c.toml")],
        out=Out(),
        stop=stop,  # type: ignore[arg-type]
    )
    assert status == 0
    assert re.fullmatch(r"LocalServer serving at http://127\.0\.0\.1:\d+/\n", lines[0])
    written = (tmp_path / "c.toml").read_text(encoding="utf-8")
    assert written.endswith('[[routes]]\nchannels = ["hook"]\n')
    assert written in "".join(lines)
