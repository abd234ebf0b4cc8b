"""The channel contract: a correct plugin passes it; each broken one fails it, and the
failure names the behaviour that is missing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from contract_examples.echo_plugin import TOKEN, EchoPlugin, EchoServer

from notifier.testing.contract import ChannelContract
from notifier.testing.leaks import LogCapture, secret_fragments
from notifier.testing.samples import huge_alert

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).parent / "contract_examples"


class TestACorrectPluginPassesTheContract(ChannelContract):
    kind = "echo-webhook"
    plugin = EchoPlugin()
    max_bytes = 512

    @pytest.fixture
    def provider(self):
        with EchoServer() as server:
            yield server

    @pytest.fixture
    def options(self, provider):
        return {"api_root": provider.root, "token": TOKEN, "max_attempts": 2}

    def fail_permanently(self, provider):
        provider.mode = "denied"

    def fail_retryably(self, provider):
        provider.mode = "throttled"

    def received(self, provider):
        return provider.texts


CONTRACT_FOR = """
import pytest
from echo_plugin import TOKEN, EchoPlugin, EchoServer
from notifier.testing.contract import ChannelContract


class EchoContract(ChannelContract):
    kind = "echo-webhook"
    max_bytes = 512

    # One server per class, reset per test: starting and stopping one per test would
    # make this session of eight contracts several seconds slower.
    @pytest.fixture(scope="class")
    def server(self):
        with EchoServer() as server:
            yield server

    @pytest.fixture
    def provider(self, server):
        server.reset()
        return server

    def make_unreachable(self, provider):
        provider.drop_next(100)

    @pytest.fixture
    def options(self, provider):
        return {"api_root": provider.root, "token": TOKEN, "max_attempts": 2}

    def fail_permanently(self, provider):
        provider.mode = "denied"

    def fail_retryably(self, provider):
        provider.mode = "throttled"

    def received(self, provider):
        return provider.texts
"""

# flaw -> (the check that must fail, what its message must say)
FLAWS = {
    "leaky": ("keeps_secrets_out", "secrets must never reach logs, errors, reprs or receipts"),
    "unbounded": ("respects_its_byte_limit", "must fit the provider's limit of 512"),
    "flat": ("renders_resolved_differently", "resolved alerts must render differently"),
    "all-retryable": ("permanent_error_to_not_retryable", "with retryable=False"),
    "raw-errors": ("permanent_error_to_not_retryable", "must raise a notifier.errors"),
    "greedy": ("ignores_channels_it_did_not_build", "must return None for channels"),
    "no-defaults": ("builds_from_its_required_options", "needs a working default"),
    "overrun": ("keeps_to_the_deadline", "its sends must end by the delivery's deadline"),
}


def class_name(flaw: str) -> str:
    return "Test" + "".join(part.capitalize() for part in flaw.split("-"))


def run_contracts(pytester: pytest.Pytester, flaws) -> pytest.HookRecorder:
    """One pytest session with a contract subclass per flaw (``""``: no flaw)."""
    pytester.syspathinsert(EXAMPLES)
    source = CONTRACT_FOR + "".join(
        f"\n\nclass {class_name(flaw or 'correct')}(EchoContract):\n"
        f"    plugin = EchoPlugin({{{flaw!r}}} - {{''}})\n"
        for flaw in flaws
    )
    pytester.makepyfile(test_echo_contract=source)
    # Hypothesis's pytest plugin costs two seconds per in-process session.
    return pytester.inline_run(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--tb=short"
    )  # fmt: skip


def test_each_broken_plugin_fails_the_contract_naming_the_missing_behaviour(pytester):
    reprec = run_contracts(pytester, ["", *FLAWS])
    passed, _skipped, failures = reprec.listoutcomes()
    correct = [r.nodeid for r in passed if "::TestCorrect::" in r.nodeid]
    assert len(correct) == 12, "the correct example must pass every check when pytest runs it"
    for flaw, (check, message) in FLAWS.items():
        failed = [r for r in failures if f"::{class_name(flaw)}::" in r.nodeid]
        names = [r.nodeid.rsplit("::", 1)[-1] for r in failed]
        assert failed, f"the {flaw!r} plugin passed the whole contract"
        assert any(check in name for name in names), (flaw, names)
        if flaw != "raw-errors":  # raw exceptions rightly fail every error check
            assert all(check in name for name in names), (flaw, names)
        text = "\n".join(str(r.longrepr) for r in failed if check in r.nodeid)
        assert "contract: " in text and message in text, (flaw, text[-2000:])


def test_a_subclass_that_forgets_a_fixture_is_told_which_one(pytester):
    pytester.makepyfile(
        """
        from notifier.testing.contract import ChannelContract

        class TestHalfDone(ChannelContract):
            kind = "x"
            plugin = object()
        """
    )
    result = pytester.runpytest("-q", "-k", "delivers", "-p", "no:hypothesispytest")
    result.stdout.fnmatch_lines(["*contract: TestHalfDone must define a `provider` fixture*"])


def test_secret_fragments_include_the_key_parts_of_a_webhook_url():
    url = "https://open.example.cn/open-apis/bot/v2/hook/0f1e2d3c-aaaa-bbbb?sig=abcdefgh12"
    assert secret_fragments(url) == {url, "0f1e2d3c-aaaa-bbbb", "abcdefgh12"}
    assert secret_fragments("plain-secret") == {"plain-secret"}


def test_the_huge_alert_is_at_least_as_large_as_asked():
    alert = huge_alert(at_least=10_000)
    assert len(alert.body.encode("utf-8")) >= 10_000
    assert "👨‍👩‍👧‍👦" in alert.body


def test_log_capture_sees_every_logger_at_debug_and_restores_levels():
    quiet = logging.getLogger("contract.test.quiet")
    quiet.setLevel(logging.ERROR)
    quiet.propagate = False
    try:
        with LogCapture() as capture:
            quiet.debug("token=%s", "abc")
            logging.getLogger("contract.test.loud").debug("hello")
        assert quiet.level == logging.ERROR
        assert quiet.handlers == []
    finally:
        quiet.propagate = True
    assert any("contract.test.quiet DEBUG token=abc" in line for line in capture.lines)
    assert any("contract.test.loud DEBUG hello" in line for line in capture.lines)
