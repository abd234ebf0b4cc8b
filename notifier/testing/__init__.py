"""Test helpers for notifier and its plugins.

:class:`LocalServer` is a real HTTP server on 127.0.0.1 that fake providers subclass.
"""

from notifier.testing.server import Fault, Handler, LocalServer, Request, Response, http_date

__all__ = ["Fault", "Handler", "LocalServer", "Request", "Response", "http_date"]
