"""Where the outbox file lives when the configuration does not say."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

MEMORY = ":memory:"
FILENAME = "outbox.db"


def data_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The user's data directory for notifier, by the platform's convention.

    Linux and other Unixes follow the XDG base directory spec (``$XDG_DATA_HOME``, else
    ``~/.local/share``); macOS uses ``~/Library/Application Support``; Windows uses
    ``%LOCALAPPDATA%``.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    home = Path(env.get("HOME") or Path.home())
    if platform.startswith("win"):
        local = env.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(local) / "notifier"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "notifier"
    xdg = env.get("XDG_DATA_HOME")
    # The spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "share"
    return base / "notifier"


def default_path(env: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """The outbox file used when ``[outbox] path`` is not set."""
    return str(data_dir(env, platform) / FILENAME)


def resolve(path: str | os.PathLike[str] | None) -> str:
    """``path`` with ``~`` expanded; the default when empty; ``:memory:`` unchanged."""
    if path is None or str(path) == "":
        return default_path()
    text = os.fspath(path)
    return text if text == MEMORY else os.path.expanduser(text)
