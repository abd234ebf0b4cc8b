"""notifier: route alerts to WeCom and other channels, at once and durably.

Plugin authors need only :data:`hookimpl`; see ``notifier.hookspecs`` for the hooks and
``docs/writing-a-plugin.md`` for a worked example. Applications use :class:`Alert` and
:class:`Dispatcher`. Heavy modules load on first use so ``notifier --version`` stays fast.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# A library leaves logging to the application: without this, Python's last-resort
# handler would print every WARNING to stderr of a program that configured none.
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    import pluggy

    from notifier.attempt import Attempt
    from notifier.deliverer import ChannelInfo, Deliverer
    from notifier.dispatcher import Dispatcher
    from notifier.errors import NotifierError
    from notifier.models import Alert, Receipt
    from notifier.pacing import Pacer

_LAZY = {
    "Alert": "notifier.models",
    "Attempt": "notifier.attempt",
    "ChannelInfo": "notifier.deliverer",
    "Deliverer": "notifier.deliverer",
    "Receipt": "notifier.models",
    "Dispatcher": "notifier.dispatcher",
    "NotifierError": "notifier.errors",
    "Pacer": "notifier.pacing",
}

__all__ = [
    "Alert",
    "Attempt",
    "ChannelInfo",
    "Deliverer",
    "Dispatcher",
    "NotifierError",
    "Pacer",
    "Receipt",
    "__version__",
    "hookimpl",
]


hookimpl: pluggy.HookimplMarker


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        import pluggy

        # Created on first use so `notifier --version` does not import pluggy.
        globals()["hookimpl"] = marker = pluggy.HookimplMarker("notifier")
        return marker
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'notifier' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
