"""A base for fake providers that answer every call with HTTP 200 and a code in the body.

WeCom (``errcode``/``errmsg``), DingTalk (``errcode``/``errmsg``) and Feishu
(``code``/``msg``) answer success and failure alike with HTTP 200 and a JSON envelope.
:class:`EnvelopeServer` holds what every such fake needs, so that a fake holds only its
provider's facts: handlers registered with :meth:`EnvelopeServer.envelope_route` return
the extra fields of a successful answer or raise :class:`Refusal` with the provider's
code; the server scripts codes (:meth:`~EnvelopeServer.refuse_next`), keeps the code of
every answer (:attr:`~EnvelopeServer.answers`) and per-key rate windows
(:class:`~notifier.testing.windows.RateWindows`)::

    class FakeRobot(EnvelopeServer):
        refusal_texts = {40035: "invalid parameter", 130101: "send too fast"}

        def setup(self) -> None:
            self.sent: list[dict] = []
            self.envelope_route("POST", "/robot/send", self.send)

        def send(self, request: Request) -> None:
            body = self.json_object(request, 40035)
            if not self.windows.admit(request.query["access_token"], self.clock.monotonic(),
                                      [(20, 60.0)]):
                raise Refusal(130101)
            self.sent.append(body)

    with FakeRobot() as robot:
        robot.refuse_next(2, 130101)   # the next two calls answer errcode 130101
        ...
        assert robot.answers == [130101, 130101, 0]

Handlers run one at a time under :attr:`EnvelopeServer.lock`, so they may change the
fake's state without locking of their own.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.testing.server import LocalServer, Request, Response
from notifier.testing.windows import RateWindows

__all__ = ["Envelope", "EnvelopeHandler", "EnvelopeServer", "Refusal", "signature_problem"]

#: A handler: the extra fields of a successful answer (``None`` for none), or it raises
#: :class:`Refusal`.
EnvelopeHandler = Callable[[Request], "Mapping[str, Any] | None"]
#: Builds the HTTP answer from the code, the message and a successful answer's fields.
Envelope = Callable[[int, str, Mapping[str, Any]], Response]


class Refusal(Exception):
    """Raised by a handler to answer with the provider's error envelope.

    :param code: the provider's error code.
    :param detail: what the provider says about this case;
        :meth:`EnvelopeServer.refusal_message` decides how it shows in the answer.
    """

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(code, detail)
        self.code, self.detail = code, detail


@attrs.define
class _Scripted:
    code: int
    path: str | None
    skip: int


class EnvelopeServer(LocalServer):
    """A :class:`LocalServer` whose routes answer HTTP 200 with a code and a message.

    Class attributes name the provider's fields; override :meth:`envelope` where the
    answer has another shape and :meth:`refusal_message` where messages carry more.

    :param clock: the fake's time, for signatures, windows and records.
    """

    code_field: ClassVar[str] = "errcode"
    message_field: ClassVar[str] = "errmsg"
    ok_code: ClassVar[int] = 0
    ok_message: ClassVar[str] = "ok"
    #: the provider's message for each code, when a refusal has no detail
    refusal_texts: ClassVar[Mapping[int, str]] = {}
    #: endpoints a scripted code without a path leaves alone (a token endpoint, say)
    unscripted_endpoints: ClassVar[frozenset[str]] = frozenset()
    #: the detail of a scripted refusal
    scripted_detail: ClassVar[str] = ""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        #: held while a handler runs; hold it to change the fake's state from a test
        self.lock = threading.RLock()
        self.windows = RateWindows()
        self._answers: list[int] = []
        self._scripted: list[_Scripted] = []
        super().__init__()

    # -- for subclasses -----------------------------------------------------------------

    def envelope_route(
        self,
        method: str,
        path: str,
        handler: EnvelopeHandler,
        *,
        endpoint: str | None = None,
        envelope: Envelope | None = None,
    ) -> None:
        """Register ``handler`` for ``method path``, answered through :meth:`answer`."""

        def route(request: Request) -> Response:
            return self.answer(request, handler, endpoint=endpoint, envelope=envelope)

        self.route(method, path, route)

    def answer(
        self,
        request: Request,
        handler: EnvelopeHandler,
        *,
        endpoint: str | None = None,
        envelope: Envelope | None = None,
    ) -> Response:
        """Answer ``request`` with a scripted code if one is due, else with ``handler``'s
        outcome; record the code and call :meth:`answered`.

        :param endpoint: the name scripted codes and :meth:`answered` see (the path if
            omitted).
        :param envelope: builds this route's answer instead of :meth:`envelope`.
        """
        name = endpoint if endpoint is not None else request.path
        with self.lock:
            try:
                scripted = self._take_scripted(request.path, name)
                if scripted is not None:
                    raise Refusal(scripted, self.scripted_detail)
                fields: Mapping[str, Any] = handler(request) or {}
                code, message = self.ok_code, self.ok_message
            except Refusal as refusal:
                code, message, fields = refusal.code, self.refusal_message(refusal), {}
            self._answers.append(code)
            self.answered(request, name, code)
        return (envelope or self.envelope)(code, message, fields)

    def envelope(self, code: int, message: str, fields: Mapping[str, Any]) -> Response:
        """The provider's answer: HTTP 200 with the code, the message and ``fields``."""
        return Response.from_json({self.code_field: code, self.message_field: message, **fields})

    def refusal_message(self, refusal: Refusal) -> str:
        """The message for ``refusal``: its detail, else the provider's text for its code."""
        return refusal.detail or self.refusal_texts.get(refusal.code, "error")

    def answered(self, request: Request, endpoint: str, code: int) -> None:
        """Called under :attr:`lock` after every envelope answer; for a fake's own log."""

    def json_object(self, request: Request, code: int) -> dict[str, Any]:
        """The body as a JSON object, or a refusal with ``code`` saying what is wrong."""
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise Refusal(code, "body is not UTF-8 JSON") from None
        if not isinstance(body, dict):
            raise Refusal(code, "body is not a JSON object")
        return body

    # -- controls -----------------------------------------------------------------------

    def refuse_next(
        self, count: int = 1, code: int = -1, *, path: str | None = None, after: int = 0
    ) -> None:
        """Answer the next ``count`` envelope calls with ``code`` before any check.

        :param path: only calls to this path; without one, calls to any endpoint but the
            :attr:`unscripted_endpoints`.
        :param after: let this many matching calls through before the ``count`` refusals.
        """
        with self.lock:
            self._scripted.extend(
                _Scripted(code, path, after if i == 0 else 0) for i in range(count)
            )

    def reset(self) -> None:
        """Forget recorded requests, answers and pending faults and scripted codes."""
        super().reset()
        with self.lock:
            self._answers.clear()
            self._scripted.clear()

    # -- observations -------------------------------------------------------------------

    @property
    def answers(self) -> list[int]:
        """The code of every envelope answer, in order."""
        with self.lock:
            return list(self._answers)

    # -- internals ----------------------------------------------------------------------

    def _take_scripted(self, path: str, endpoint: str) -> int | None:
        for i, scripted in enumerate(self._scripted):
            if scripted.path == path or (
                scripted.path is None and endpoint not in self.unscripted_endpoints
            ):
                if scripted.skip:
                    scripted.skip -= 1
                    return None
                del self._scripted[i]
                return scripted.code
        return None


def signature_problem(
    stamp: object, sign: object, *, now: float, tolerance: float, expected: Callable[[int], str]
) -> str | None:
    """Why a timestamped signature fails, or ``None`` when it checks out.

    :param stamp: the request's timestamp, an integer in the unit of ``now``.
    :param sign: the request's base64 signature.
    :param tolerance: how far ``stamp`` may be from ``now``.
    :param expected: the base64 signature the provider computes for a timestamp.
    :returns: ``"timestamp"`` or ``"sign"``.
    """
    text = str(stamp)
    if not text.isdigit() or abs(int(text) - now) > tolerance:
        return "timestamp"
    try:
        given = base64.b64decode(str(sign), validate=True)
    except (binascii.Error, ValueError):
        return "sign"
    if not hmac.compare_digest(given, base64.b64decode(expected(int(text)))):
        return "sign"
    return None
