"""The pooled ``requests.Session`` an :class:`~notifier.http.HttpClient` owns, and the
environment settings it reads once rather than on every request."""

from __future__ import annotations

import http.cookiejar
import os

import requests
from requests.adapters import HTTPAdapter


def pooled_session(pool_size: int, user_agent: str) -> requests.Session:
    """A session keeping ``pool_size`` keep-alive connections per host, with urllib3's
    retries off (the client counts its own), no cookies and ``trust_env`` off."""
    session = requests.Session()
    session.trust_env = False
    # Providers need no cookies; refusing them keeps threads from sharing a jar.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.headers["User-Agent"] = user_agent
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def ca_bundle() -> bool | str:
    """What requests would read from the environment on every request, read once."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
