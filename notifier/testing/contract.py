"""The channel contract: behaviours every channel plugin owes, as a test base class.

Subclass :class:`ChannelContract` in a test module (name the subclass ``Test...`` so pytest
collects it), point it at your plugin and a fake provider, and pytest runs every check
below against your channel. ``docs/testing-channels.md`` walks through an example::

    class TestMyRobotContract(ChannelContract):
        kind = "my-robot"
        plugin = my_plugin.plugin        # the module (or object) holding the hookimpls
        max_bytes = 4096                 # the provider's limit on one message

        @pytest.fixture
        def provider(self, contract_clock):
            with FakeRobot(clock=contract_clock) as server:
                yield server

        @pytest.fixture
        def options(self, provider):
            return {"key": "robot-key-0001", "api_root": provider.root}

        def fail_permanently(self, provider): provider.reject_key()
        def fail_retryably(self, provider): provider.throttle()
        def received(self, provider): return [m.content for m in provider.messages]

Every failed check says which behaviour is missing, starting with ``contract:``.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from notifier import deadline
from notifier.clock import FakeClock
from notifier.config import Config, parse_channel
from notifier.dispatcher import Dispatcher
from notifier.errors import ConfigError, NotifierError, UnsupportedOperation
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option
from notifier.models import Alert, DeliveryContext, SendResult
from notifier.plugins import PluginHost
from notifier.render import byte_len
from notifier.testing.leaks import LogCapture, secret_fragments
from notifier.testing.samples import huge_alert, resolved, sample_alert

__all__ = ["ChannelContract"]

# The deadline the bounded-sends check gives a send to a provider that never answers.
_DEADLINE = 0.3
# Wrong values per option type, for the schema checks.
_WRONG = {str: 12345, int: "not-a-number", float: "not-a-number", bool: "yes", list: 42, dict: 42}


class ChannelContract:
    """Base class of a channel plugin's contract tests.

    Set :attr:`kind`, :attr:`plugin` and :attr:`max_bytes`; define the ``provider`` and
    ``options`` fixtures and the :meth:`fail_permanently`, :meth:`fail_retryably` and
    :meth:`received` methods. The base provides ``contract_clock`` (a
    :class:`~notifier.clock.FakeClock` the channel is built with; give it to your fake
    server if it checks timestamps) and ``channel`` (the built channel, closed after).
    """

    #: the kind name, as ``kind = "..."`` in a config file
    kind: ClassVar[str] = ""
    #: the module or object holding the plugin's hookimpls
    plugin: ClassVar[Any] = None
    #: the provider's limit in UTF-8 bytes on each item :meth:`received` returns; ``None``
    #: for a provider without one (the size check is then skipped)
    max_bytes: ClassVar[int | None] = None
    #: the configured channel's name in messages and key paths
    channel_name: ClassVar[str] = "contract"

    # -- what a subclass provides ---------------------------------------------------------

    @pytest.fixture
    def provider(self) -> Any:
        pytest.fail(f"contract: {type(self).__name__} must define a `provider` fixture")

    @pytest.fixture
    def options(self, provider: Any) -> dict[str, Any]:
        pytest.fail(f"contract: {type(self).__name__} must define an `options` fixture")

    def fail_permanently(self, provider: Any) -> None:
        """Make the provider reject every following message for good (bad credentials)."""
        pytest.fail(f"contract: {type(self).__name__} must define fail_permanently()")

    def fail_retryably(self, provider: Any) -> None:
        """Make the provider refuse every following message for now (throttled, busy).
        Keep it failing: channels may retry within one send."""
        pytest.fail(f"contract: {type(self).__name__} must define fail_retryably()")

    def received(self, provider: Any) -> list[str]:
        """What the provider accepted, in order: one item per message, each the text
        :attr:`max_bytes` limits."""
        pytest.fail(f"contract: {type(self).__name__} must define received()")

    def make_unreachable(self, provider: Any) -> None:
        """Make the provider unreachable (default: ``provider.stop()``)."""
        provider.stop()

    def make_silent(self, provider: Any) -> None:
        """Make the provider take requests and not answer them (default: hold the next
        hundred for a minute, as :meth:`~notifier.testing.LocalServer.delay_next` does)."""
        provider.delay_next(60, count=100)

    # -- what the base provides -----------------------------------------------------------

    @pytest.fixture
    def contract_clock(self) -> FakeClock:
        return FakeClock(start=datetime.now(UTC).timestamp())

    @pytest.fixture
    def contract_host(self) -> Iterator[PluginHost]:
        assert self.kind, f"contract: {type(self).__name__} must set `kind`"
        assert self.plugin is not None, f"contract: {type(self).__name__} must set `plugin`"
        host = PluginHost.from_plugins([self.plugin], builtins=False)
        yield host
        host.close()

    @pytest.fixture
    def channel(
        self, contract_host: PluginHost, options: dict[str, Any], contract_clock: FakeClock
    ) -> Iterator[Any]:
        spec = self.parse(contract_host, {"kind": self.kind, **options})
        channel = contract_host.build_channel(spec, BuildContext(clock=contract_clock))
        yield channel
        channel.close()

    @pytest.fixture
    def contract_logs(self) -> Iterator[LogCapture]:
        """Every log record of every logger, at DEBUG, while the test runs."""
        with LogCapture() as capture:
            yield capture

    def parse(self, host: PluginHost, table: dict[str, Any]) -> ChannelSpec:
        return parse_channel(self.channel_name, table, host, file="<contract>")

    def send(
        self, host: PluginHost, channel: Any, alert: Alert, key: str = "contract-1"
    ) -> SendResult:
        try:
            result = host.send(channel, alert, DeliveryContext(idempotency_key=key))
        except UnsupportedOperation as exc:
            pytest.fail(f"contract: notifier_send must answer for its own channels: {exc}")
        assert isinstance(result, SendResult), (
            f"contract: notifier_send must return a SendResult for its own channel, got {result!r}"
        )
        return result

    def send_failing(self, host: PluginHost, channel: Any, what: str) -> NotifierError:
        """Send and return the error; fail the check unless it is a NotifierError."""
        try:
            result = host.send(channel, sample_alert(), DeliveryContext(idempotency_key="fail"))
        except UnsupportedOperation as exc:
            pytest.fail(f"contract: notifier_send must answer for its own channels: {exc}")
        except NotifierError as exc:
            return exc
        except Exception as exc:
            pytest.fail(
                f"contract: {what} must raise a notifier.errors.NotifierError, "
                f"got {type(exc).__name__}: {exc}"
            )
        pytest.fail(
            f"contract: {what} must raise a NotifierError, but the send returned {result!r}"
        )

    # -- the checks ---------------------------------------------------------------------

    def test_contract_declares_its_kind(self, contract_host: PluginHost) -> None:
        kind = contract_host.kinds.get(self.kind)
        assert isinstance(kind, ChannelKind), (
            f"contract: the plugin must declare the kind {self.kind!r} through "
            f"notifier_channel_kinds (it declares {sorted(contract_host.kinds)})"
        )

    def test_contract_delivers(
        self, contract_host: PluginHost, channel: Any, provider: Any
    ) -> None:
        alert = sample_alert()
        self.send(contract_host, channel, alert)
        got = self.received(provider)
        assert got, "contract: a delivered alert must reach the provider"
        assert any(alert.title in text for text in got), (
            "contract: the delivered message must show the alert's title"
        )

    def test_contract_renders_resolved_differently_from_firing(
        self, contract_host: PluginHost, channel: Any, provider: Any
    ) -> None:
        firing = sample_alert()
        self.send(contract_host, channel, firing, key="firing")
        after_firing = list(self.received(provider))
        self.send(contract_host, channel, resolved(firing), key="resolved")
        resolved_texts = self.received(provider)[len(after_firing) :]
        assert after_firing, "contract: a firing alert must reach the provider"
        assert resolved_texts, "contract: a resolved alert must reach the provider too"
        assert resolved_texts != after_firing, (
            "contract: resolved alerts must render differently from firing ones"
        )

    def test_contract_keeps_to_the_deadline_it_declares(
        self, contract_host: PluginHost, channel: Any, provider: Any
    ) -> None:
        if not contract_host.kinds[self.kind].bounded:
            pytest.skip("the kind does not declare bounded sends")
        self.make_silent(provider)
        started = time.monotonic()
        with deadline.within(_DEADLINE):
            error = self.send_failing(contract_host, channel, "a send nobody answers")
        took = time.monotonic() - started
        assert took < _DEADLINE + 2.0, (
            f"contract: kind {self.kind!r} declares bounded=True, so its sends must end by "
            f"the delivery's deadline; one took {took:.1f}s against {_DEADLINE}s: send "
            f"through HttpClient, or bound your own waits by notifier.deadline.remaining()"
        )
        assert error.retryable, (
            "contract: a send cut short by the deadline must raise with retryable=True"
        )

    def test_contract_respects_its_byte_limit(
        self, contract_host: PluginHost, channel: Any, provider: Any
    ) -> None:
        if self.max_bytes is None:
            pytest.skip(f"{self.kind} declares no byte limit")
        try:
            self.send(contract_host, channel, huge_alert(at_least=3 * self.max_bytes))
        except NotifierError as exc:
            pytest.fail(
                f"contract: every message must fit the provider's limit of {self.max_bytes} "
                f"UTF-8 bytes; sending an alert larger than that failed: {exc}"
            )
        got = self.received(provider)
        assert got, "contract: an alert larger than the byte limit must still be delivered"
        sizes = [byte_len(text) for text in got]
        assert max(sizes) <= self.max_bytes, (
            f"contract: every message must fit the provider's limit of {self.max_bytes} "
            f"UTF-8 bytes; the provider received {sizes}"
        )

    def test_contract_maps_a_permanent_error_to_not_retryable(
        self, contract_host: PluginHost, channel: Any, provider: Any
    ) -> None:
        self.fail_permanently(provider)
        error = self.send_failing(contract_host, channel, "a permanent provider error")
        assert error.retryable is False, (
            f"contract: a permanent provider error must be a NotifierError with "
            f"retryable=False, got {type(error).__name__} retryable={error.retryable}: {error}"
        )

    def test_contract_maps_a_retryable_error_to_retryable(
        self, contract_host: PluginHost, channel: Any, provider: Any
    ) -> None:
        self.fail_retryably(provider)
        error = self.send_failing(contract_host, channel, "a retryable provider error")
        assert error.retryable is True, (
            f"contract: a retryable provider error (throttled, busy) must be a NotifierError "
            f"with retryable=True, got {type(error).__name__} retryable={error.retryable}: "
            f"{error}"
        )

    def test_contract_keeps_secrets_out_of_logs_errors_reprs_and_receipts(
        self,
        contract_host: PluginHost,
        channel: Any,
        provider: Any,
        options: dict[str, Any],
        contract_clock: FakeClock,
        contract_logs: LogCapture,
    ) -> None:
        secret_options = [o.name for o in contract_host.kinds[self.kind].options if o.secret]
        if not secret_options:
            pytest.skip(f"{self.kind} has no secret option")
        secrets: set[str] = set()
        for name in secret_options:
            if isinstance(options.get(name), str):
                secrets |= secret_fragments(options[name])
        assert secrets, (
            f"contract: the `options` fixture must set a secret option ({secret_options}) "
            "so the check can look for it"
        )
        shown = {"repr(channel)": repr(channel), "str(channel)": str(channel)}
        for name, value in getattr(channel, "__dict__", {}).items():
            shown[f"repr(channel.{name})"] = repr(value)
        spec = self.parse(contract_host, {"kind": self.kind, **options})
        config = Config("<contract>", {self.channel_name: spec})
        with Dispatcher(config, host=contract_host, clock=contract_clock) as dispatcher:
            shown["the SendResult"] = repr(self.send(contract_host, channel, sample_alert()))
            receipts = [dispatcher.deliver(self.channel_name, sample_alert())]
            assert receipts[0].ok, f"contract: a dispatcher delivery must succeed: {receipts}"
            for make_fail, label, what in [
                (self.fail_permanently, "permanent", "a permanent provider error"),
                (self.fail_retryably, "retryable", "a retryable provider error"),
                (self.make_unreachable, "unreachable", "an unreachable provider"),
            ]:
                make_fail(provider)
                error = self.send_failing(contract_host, channel, what)
                shown[f"the {label} error"] = "".join(traceback.format_exception(error))
                shown[f"repr of the {label} error"] = repr(error) + repr(vars(error))
                receipts.append(dispatcher.deliver(self.channel_name, sample_alert()))
        for receipt in receipts:
            shown[f"the {receipt.outcome} receipt"] = repr(receipt) + repr(receipt.to_dict())
        shown["the logs"] = contract_logs.text
        for where, text in shown.items():
            for secret in secrets:
                assert secret not in text, (
                    f"contract: secrets must never reach logs, errors, reprs or receipts; "
                    f"a secret option's value shows in {where}"
                )

    def test_contract_ignores_channels_it_did_not_build(self, contract_host: PluginHost) -> None:
        try:
            result = contract_host.send(object(), sample_alert(), DeliveryContext())
        except UnsupportedOperation:
            return
        pytest.fail(
            "contract: operation hooks must return None for channels another kind built; "
            f"notifier_send answered {result!r} for a foreign object"
        )

    def test_contract_builds_from_its_required_options_alone(
        self, contract_host: PluginHost, options: dict[str, Any], contract_clock: FakeClock
    ) -> None:
        required = {o.name for o in contract_host.kinds[self.kind].options if o.required}
        table = {"kind": self.kind, **{k: v for k, v in options.items() if k in required}}
        try:
            spec = self.parse(contract_host, table)
            contract_host.build_channel(spec, BuildContext(clock=contract_clock)).close()
        except Exception as exc:
            pytest.fail(
                f"contract: every optional option needs a working default; building from "
                f"the required options alone failed with {type(exc).__name__}: {exc}"
            )

    def test_contract_rejects_a_missing_required_option(
        self, contract_host: PluginHost, options: dict[str, Any]
    ) -> None:
        required = [o for o in contract_host.kinds[self.kind].options if o.required]
        if not required:
            pytest.skip(f"{self.kind} has no required option")
        for opt in required:
            table = {"kind": self.kind, **{k: v for k, v in options.items() if k != opt.name}}
            self._expect_config_error(contract_host, table, opt, "a missing required option")

    def test_contract_rejects_options_of_the_wrong_type(
        self, contract_host: PluginHost, options: dict[str, Any]
    ) -> None:
        for opt in contract_host.kinds[self.kind].options:
            wrong = "no-such-choice" if opt.choices and opt.type is str else _WRONG[opt.type]
            table = {"kind": self.kind, **options, opt.name: wrong}
            self._expect_config_error(contract_host, table, opt, "an option of the wrong type")

    def _expect_config_error(
        self, host: PluginHost, table: dict[str, Any], opt: Option, what: str
    ) -> None:
        try:
            self.parse(host, table)
        except ConfigError as exc:
            paths = [issue.path for issue in exc.issues]
            assert any(opt.name in p and self.channel_name in p for p in paths), (
                f"contract: the options schema must reject {what} with a message naming "
                f"its key path (channels.{self.channel_name}.{opt.name}); got {exc}"
            )
            return
        pytest.fail(
            f"contract: the options schema must reject {what} "
            f"(channels.{self.channel_name}.{opt.name}); it was accepted"
        )
