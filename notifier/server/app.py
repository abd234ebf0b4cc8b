"""The WSGI application of ``notifier serve``.

Each request is answered ``200`` only once every delivery it produced is written to the
outbox: from then on a crash loses nothing, and the sender (Alertmanager) stops retrying.
A body that can never be accepted is ``400`` with a one-line reason; a fault on this side
(outbox full or locked) is ``503``, which the sender retries, never a 4xx. Every answer
carries an ``X-Request-Id`` (the client's, when it sent a sane one), and so does every
log line about the request.

Delivery runs on a thread of the same process, woken by each accepted request;
``notifier worker`` processes may deliver from the same outbox beside it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from notifier.alertmanager import parse_notification
from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.config import load_config
from notifier.dispatcher import Dispatcher
from notifier.errors import NotifierError, OutboxError
from notifier.groups import AlertGroup
from notifier.messages import Budgets
from notifier.models import Link
from notifier.outbox.records import NewDelivery
from notifier.plugins import PluginHost
from notifier.routing import Target
from notifier.server.auth import Credentials
from notifier.server.commit import GroupCommit
from notifier.server.ingest import alert_deliveries, notification_deliveries, parse_alerts
from notifier.server.metrics import CONTENT_TYPE, Metrics
from notifier.server.settings import ServerSettings

__all__ = ["NotifierApp", "create_app"]

log = logging.getLogger("notifier.server")

StartResponse = Callable[..., Any]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ALERTMANAGER = "/api/v1/alertmanager"
_GRAFANA_LINKS = (("silenceURL", "Silence"), ("dashboardURL", "Dashboard"), ("panelURL", "Panel"))
# While requests keep arriving, delivery rounds take at most this share of the time: the
# process runs Python on one core at a time, and a round of deliveries costs more than
# accepting them did, so under a storm an unbounded round would slow every answer
# (Alertmanager times out and posts again). What waits is in the outbox and goes out
# at full speed as soon as the requests stop.
DELIVERY_SHARE = 0.5
_LONGEST_YIELD = 1.0  # seconds; a round against a slow provider is not doubled beyond it
_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
    405: "Method Not Allowed", 413: "Content Too Large", 500: "Internal Server Error",
    503: "Service Unavailable",
}  # fmt: skip


@attrs.frozen
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class Refused(Exception):
    """A request answered with an error status and a one-line reason."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


def _json(status: int, value: Any, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(status, json.dumps(value, ensure_ascii=False).encode() + b"\n", headers=headers)


def parse_group(data: Any) -> AlertGroup:
    """An Alertmanager notification, or a Grafana webhook contact point's (the same shape,
    ``version`` "1", with extra fields whose links are kept)."""
    grafana = isinstance(data, Mapping) and "orgId" in data and str(data.get("version")) == "1"
    if grafana:
        data = {**data, "version": "4"}
    group = parse_notification(data)
    if not grafana:
        return group
    alerts = []
    for alert, raw in zip(group.alerts, data["alerts"], strict=True):
        extra = tuple(Link(str(raw[k]), t) for k, t in _GRAFANA_LINKS if raw.get(k))
        alerts.append(attrs.evolve(alert, links=(*alert.links, *extra)) if extra else alert)
    return attrs.evolve(group, alerts=tuple(alerts))


class NotifierApp:
    """The WSGI application: call it with ``(environ, start_response)``."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        metrics: Metrics,
        *,
        settings: ServerSettings | None = None,
        deliver: bool = True,
        delivery_share: float = DELIVERY_SHARE,
    ) -> None:
        """
        :param deliver: deliver on a thread of this process (else only accept).
        :param delivery_share: at most this share (0 to 1) of the time goes to delivery
            rounds while requests keep arriving; 1: no limit.
        """
        if not 0 < delivery_share <= 1:
            raise ValueError(f"delivery_share is a share of the time, 0 to 1; got {delivery_share}")
        if dispatcher.outbox is None and dispatcher.celery is None:
            raise ValueError("notifier serve delivers through an outbox; the dispatcher has none")
        self.dispatcher = dispatcher
        # With [celery] the workers deliver: requests become tasks, nothing runs here.
        self.celery = dispatcher.celery
        self.engine: Any = dispatcher.outbox
        self.settings = settings or dispatcher.config.server
        self.metrics = metrics
        metrics.engine = self.engine
        metrics.kinds.update({n: c.spec.kind for n, c in dispatcher.channels.items()})
        self.credentials = Credentials(self.settings.tokens, self.settings.users)
        self.budgets = Budgets(dispatcher)
        self.commits = GroupCommit(self.engine.enqueue) if self.engine is not None else None
        self.delivery_share = delivery_share
        self._accepted = 0  # requests accepted so far: did any arrive during a round?
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if deliver and self.celery is None:
            self._thread = threading.Thread(
                target=self._deliver_forever, name="notifier-serve-delivery", daemon=True
            )
            self._thread.start()

    # -- delivery ----------------------------------------------------------------------

    def _deliver_forever(self) -> None:
        engine = self.engine
        engine.recover()
        while not self._stop.is_set():
            seen, began = self._accepted, time.monotonic()
            try:
                done = engine.process()
                engine.maintain()
            except OutboxError as exc:  # locked or full: say so, keep going
                log.warning("outbox: %s", exc)
                self._stop.wait(engine.settings.poll_interval)
                continue
            except Exception:
                log.exception("delivery round failed; trying again")
                self._stop.wait(engine.settings.poll_interval)
                continue
            if not done.claimed:
                self._wake.wait(engine.idle_wait())
                self._wake.clear()
            elif self._accepted != seen and self.delivery_share < 1:
                self._stop.wait(self._yield_after(time.monotonic() - began))

    def _yield_after(self, spent: float) -> float:
        """How long to leave the process to requests after a round of ``spent`` seconds."""
        share = self.delivery_share
        return min(spent * (1 - share) / share, _LONGEST_YIELD)

    def close(self) -> None:
        """Stop delivering (what is queued stays queued) and release the outbox."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.dispatcher.config.dispatcher.delivery_timeout + 5)
        self.dispatcher.close()

    # -- WSGI ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        offered = environ.get("HTTP_X_REQUEST_ID", "")
        rid = offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex[:16]
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        started = time.perf_counter()
        endpoint = _endpoint(path)
        try:
            answer = self._answer(environ, method, path, rid)
        except Refused as exc:
            answer = _json(exc.status, {"error": exc.reason, "request_id": rid}, exc.headers)
            level = logging.WARNING if exc.status >= 500 else logging.INFO
            log.log(level, "[%s] %s %s: %d %s", rid, method, endpoint, exc.status, exc.reason)
        except Exception:
            log.exception("[%s] %s %s: failed", rid, method, endpoint)
            answer = _json(500, {"error": "internal error; see the server log", "request_id": rid})
        self.metrics.http_answers.labels(endpoint, str(answer.status)).inc()
        log.debug(
            "[%s] %s %s -> %d in %.1f ms",
            rid, method, endpoint, answer.status, (time.perf_counter() - started) * 1000,
        )  # fmt: skip
        headers = [
            ("Content-Type", answer.content_type),
            ("Content-Length", str(len(answer.body))),
            ("X-Request-Id", rid),
            *answer.headers,
        ]
        start_response(f"{answer.status} {_REASONS.get(answer.status, '')}", headers)
        return [answer.body]

    def _answer(self, environ: dict[str, Any], method: str, path: str, rid: str) -> Answer:
        if path == "/healthz":
            _method(method, "GET")
            return _json(200, {"status": "alive"})
        if path == "/readyz":
            _method(method, "GET")
            return self._ready()
        if path == "/metrics":
            _method(method, "GET")
            self._authorize(environ)
            return Answer(200, self.metrics.exposition(), CONTENT_TYPE)
        if path == "/api/v1/alerts":
            self._authorize(environ)
            _method(method, "POST")
            try:
                alerts = parse_alerts(self._body(environ))
            except (TypeError, ValueError) as exc:
                raise Refused(400, f"not an alert or an array of alerts: {exc}") from None
            return self._accept(alert_deliveries(self.dispatcher, alerts), len(alerts), "api", rid)
        if path == _ALERTMANAGER or path.startswith(_ALERTMANAGER + "/"):
            self._authorize(environ)
            channel = path[len(_ALERTMANAGER) + 1 :] or None
            if channel is not None and channel not in self.dispatcher.channels:
                raise Refused(404, f"no channel named {channel!r}")
            _method(method, "POST")
            data = self._body(environ)
            try:
                group = parse_group(data)
            except (TypeError, ValueError) as exc:
                raise Refused(400, f"not an Alertmanager notification: {exc}") from None
            deliveries = notification_deliveries(self.dispatcher, self.budgets, group, channel)
            return self._accept(deliveries, len(group.alerts), "alertmanager", rid)
        raise Refused(404, f"no such endpoint: {path}")

    def _ready(self) -> Answer:
        if self.celery is not None:
            try:
                self.celery.state.ping()
            except NotifierError as exc:
                raise Refused(503, str(exc), (("Retry-After", "5"),)) from None
            return _json(200, {"status": "ready", "queue": self.celery.settings.queue})
        problem = self.engine.writable()
        if problem is not None:
            raise Refused(503, f"outbox not writable: {problem}", (("Retry-After", "5"),))
        return _json(200, {"status": "ready", "outbox": self.engine.path})

    def _authorize(self, environ: Mapping[str, Any]) -> None:
        if not self.credentials.allows(environ.get("HTTP_AUTHORIZATION")):
            challenge = ("WWW-Authenticate", 'Bearer realm="notifier", Basic realm="notifier"')
            raise Refused(401, "valid credentials required", (challenge,))

    def _body(self, environ: Mapping[str, Any]) -> Any:
        """The request's JSON, read only when within ``max_body_bytes``."""
        limit = self.settings.max_body_bytes
        stream = environ["wsgi.input"]
        raw_length = environ.get("CONTENT_LENGTH") or ""
        if raw_length:
            try:
                length = int(raw_length)
            except ValueError:
                raise Refused(400, f"Content-Length is not a number: {raw_length!r}") from None
            if length > limit:
                raise Refused(413, f"body of {length} bytes is over the limit of {limit}")
            body = stream.read(length)
        else:  # chunked: read one byte past the limit to know it is over
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise Refused(413, f"body is over the limit of {limit} bytes")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Refused(400, f"body is not UTF-8 (byte {exc.start})") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise Refused(400, f"body is not JSON: {exc}") from None
        except RecursionError:
            raise Refused(400, "body is not JSON this server reads: nested too deeply") from None

    def _accept(self, deliveries: list[NewDelivery], alerts: int, source: str, rid: str) -> Answer:
        if self.celery is not None:
            ids: list[Any] = self._queue(deliveries)
        else:
            assert self.commits is not None
            try:
                done = self.commits.write(deliveries)
            except OutboxError as exc:
                raise Refused(
                    503, f"cannot store the deliveries: {exc}", (("Retry-After", "5"),)
                ) from None
            self._accepted += 1
            self._wake.set()
            ids = [e.id for e in done if e.id is not None]
        self.metrics.alerts_received.labels(source).inc(alerts)
        log.info(
            "[%s] accepted %d alert(s) from %s as %d delivery(ies)", rid, alerts, source, len(ids)
        )
        return _json(200, {"accepted": alerts, "ids": ids})

    def _queue(self, deliveries: list[NewDelivery]) -> list[Any]:
        """One Celery task per delivery; their ids. A 503 when the broker or Redis is
        away: the sender retries, and what was queued before is then a duplicate."""
        assert self.celery is not None
        try:
            return [
                self.celery.enqueue(d.alert, Target(d.channel, d.mentions), d.group)
                for d in deliveries
            ]
        except NotifierError as exc:
            raise Refused(
                503, f"cannot queue the deliveries: {exc}", (("Retry-After", "5"),)
            ) from None


def _method(method: str, allowed: str) -> None:
    if method != allowed:
        raise Refused(405, f"{method} not allowed here; use {allowed}", (("Allow", allowed),))


def _endpoint(path: str) -> str:
    """The path as a metric label: one value per endpoint, whatever the channel."""
    if path.startswith(_ALERTMANAGER + "/"):
        return _ALERTMANAGER + "/<channel>"
    if path in ("/healthz", "/readyz", "/metrics", "/api/v1/alerts", _ALERTMANAGER):
        return path
    return "other"


def create_app(
    config: Any = None,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    plugins: Iterable[object] = (),
    listen: str | None = None,
    deliver: bool = True,
    delivery_share: float = DELIVERY_SHARE,
) -> NotifierApp:
    """The WSGI application for a config file (``config``, else ``$NOTIFIER_CONFIG``).

    Deliveries go through the configured ``[outbox]``, else one at the default path.

    :param listen: overrides ``[server] listen`` (``--listen``), held to the same rules.
    :param deliver: deliver on a thread of this process (else only accept; ``notifier
        worker`` processes deliver).
    :param delivery_share: see :class:`NotifierApp`.
    :raises ConfigError: listing every problem in the config.
    """
    metrics = Metrics()
    host = PluginHost.load(env=env, extra=[metrics, *plugins])
    loaded = load_config(config, host, env)
    settings = loaded.server if listen is None else loaded.server.listening_on(listen)
    outbox = loaded.celery is None  # with [celery], the workers deliver
    dispatcher = Dispatcher(loaded, host=host, clock=clock or SYSTEM_CLOCK, outbox=outbox)
    try:
        if dispatcher.celery is not None:
            log.info("notifier serve: queueing for Celery workers (%s)", loaded.celery)
            return NotifierApp(dispatcher, metrics, settings=settings, deliver=False)
        assert dispatcher.outbox is not None
        where = "[outbox]" if loaded.outbox is not None else "the default outbox (no [outbox])"
        log.info("notifier serve: delivering through %s at %s", where, dispatcher.outbox.path)
        return NotifierApp(
            dispatcher, metrics, settings=settings, deliver=deliver, delivery_share=delivery_share
        )
    except BaseException:
        dispatcher.close()
        raise
