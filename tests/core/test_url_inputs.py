"""URLs that Python's own URL parser refuses (a bracketed host that is no IP address) are
bad input at the boundary: an alert link is an invalid alert, never an alert that fails
on every channel."""

from __future__ import annotations

import pytest

from notifier.errors import InvalidAlert
from notifier.models import Alert

UNPARSEABLE = ["http://[::1", "http://[::1/x", "http://][", "https://[example.com]/x"]


@pytest.mark.parametrize("url", UNPARSEABLE)
def test_an_alert_link_that_is_no_url_is_an_invalid_alert(url: str) -> None:
    with pytest.raises(InvalidAlert, match="link's url is not a URL"):
        Alert.from_dict({"title": "disk full", "links": [url]})
    with pytest.raises(InvalidAlert, match="link's url is not a URL"):
        Alert.from_dict({"title": "disk full", "links": [{"url": url, "title": "graph"}]})
