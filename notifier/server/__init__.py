"""``notifier serve``: an HTTP receiver for Alertmanager, Grafana and any client.

:func:`create_app` builds the WSGI application (waitress serves it in ``notifier
serve``; any WSGI server may, e.g. ``gunicorn 'notifier.server:create_app()'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notifier.server.app import NotifierApp

__all__ = ["create_app"]


def create_app(config: Any = None, **kwargs: Any) -> NotifierApp:
    """The WSGI application for the config file ``config`` (else ``$NOTIFIER_CONFIG``).

    See :func:`notifier.server.app.create_app` for the keyword arguments.
    """
    from notifier.server.app import create_app as create

    return create(config, **kwargs)
