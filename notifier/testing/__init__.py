"""Test helpers for notifier and its plugins.

:class:`LocalServer` is a real HTTP server on 127.0.0.1 that fake providers subclass;
:class:`EnvelopeServer` adds what every provider answering HTTP 200 with a code in the
body needs, and :class:`RateWindows` counts calls per token the way providers do.
"""

from notifier.testing.envelope import EnvelopeServer, Refusal, signature_problem
from notifier.testing.server import Fault, Handler, LocalServer, Request, Response, http_date
from notifier.testing.windows import RateWindows

__all__ = [
    "EnvelopeServer",
    "Fault",
    "Handler",
    "LocalServer",
    "RateWindows",
    "Refusal",
    "Request",
    "Response",
    "http_date",
    "signature_problem",
]
