"""The pooled ``requests.Session`` an :class:`~notifier.http.HttpClient` owns, and the
environment settings it reads once rather than on every request."""

from __future__ import annotations

import http.cookiejar
import os
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from notifier.http.timelimit import POOL_CLASSES


class _LimitedAdapter(HTTPAdapter):
    """An adapter whose connections, direct or through a proxy, keep to the running
    attempt's total time (:mod:`notifier.http.timelimit`)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have classes of their own
            manager.pool_classes_by_scheme = POOL_CLASSES
        return manager


def pooled_session(pool_size: int, user_agent: str) -> requests.Session:
    """A session keeping ``pool_size`` keep-alive connections per host, with urllib3's
    retries off (the client counts its own), no cookies and ``trust_env`` off."""
    session = requests.Session()
    session.trust_env = False
    # Providers need no cookies; refusing them keeps threads from sharing a jar.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.headers["User-Agent"] = user_agent
    adapter = _LimitedAdapter(pool_connections=4, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def ca_bundle() -> bool | str:
    """What requests would read from the environment on every request, read once."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
