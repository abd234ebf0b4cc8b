"""Every answer of the server, over a real local port, against a real outbox file."""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from notifier.server.app import NotifierApp
from tests.server.samples import am_alert, notification

TOKEN = {"Authorization": "Bearer token-one"}


def post(url: str, path: str, body: object, headers: dict[str, str] | None = None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        url + path, data=data, headers=TOKEN if headers is None else headers, timeout=10
    )


def stored(tmp_path: Path) -> list[tuple[str, str]]:
    """(channel, alert title) of every delivery the outbox file holds, as another
    process sees them."""
    with sqlite3.connect(tmp_path / "outbox.db") as conn:
        rows = conn.execute("SELECT channel, alert FROM deliveries ORDER BY id").fetchall()
    return [(channel, json.loads(alert)["title"]) for channel, alert in rows]


def test_a_notification_is_accepted_once_stored_as_one_delivery_per_channel(url, tmp_path):
    alerts = [am_alert(1, team="ops"), am_alert(2, team="ops"), am_alert(3)]
    answer = post(url, "/api/v1/alertmanager", notification(alerts))
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 3
    assert len(answer.json()["ids"]) == 2
    assert answer.headers["X-Request-Id"]
    held = stored(tmp_path)
    assert [c for c, _ in held] == ["audit", "ops"]
    assert held[0][1] == "DiskFull: 3 firing, 0 resolved (alertname=DiskFull)"
    assert held[1][1] == "DiskFull: 2 firing, 0 resolved (alertname=DiskFull)"


def test_the_delivered_message_lists_every_alert_with_its_links(app, url, tmp_path):
    alerts = [am_alert(1), am_alert(2, "resolved")]
    assert post(url, "/api/v1/alertmanager", notification(alerts)).status_code == 200
    app.engine.drain(until_idle=True)
    (line,) = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    sent = json.loads(line)["alert"]
    body = sent["body"]
    assert "[FIRING] critical: Disk full on host-1 (instance=host-1)" in body
    assert "[RESOLVED] critical: Disk full on host-2 (instance=host-2)" in body
    assert "since 2026-12-01 10:00 UTC http://prometheus:9090/graph?g0.expr=disk1" in body
    silence = "http://alertmanager:9093/#/silences/new?filter=%7Balertname%3D%22DiskFull%22%7D"
    assert {"title": "Silence", "url": silence} in sent["links"]


def test_the_same_notification_posted_again_is_one_delivery(url, tmp_path):
    sent = notification([am_alert(1)])
    first = post(url, "/api/v1/alertmanager", sent).json()
    again = post(url, "/api/v1/alertmanager", sent).json()
    assert first["ids"] == again["ids"]
    assert len(stored(tmp_path)) == 1


def test_routes_see_the_receiver_as_a_label(tmp_path):
    from notifier.server import create_app
    from tests.server.conftest import serving, write_config

    config = write_config(
        tmp_path,
        """
[channels.db]
kind = "jsonl"
path = "db.jsonl"
[channels.web]
kind = "jsonl"
path = "web.jsonl"
[[routes]]
channels = ["db"]
labels = { __receiver__ = "team-db" }
[[routes]]
channels = ["web"]
[outbox]
path = "outbox.db"
""",
    )
    app = create_app(config, deliver=False)
    try:
        with serving(app) as url:
            post(url, "/api/v1/alertmanager", notification([am_alert(1)], receiver="team-db"))
            post(url, "/api/v1/alertmanager", notification([am_alert(2)], receiver="team-web"))
    finally:
        app.close()
    assert [c for c, _ in stored(tmp_path)] == ["db", "web"]


def test_a_channel_endpoint_delivers_to_that_channel_only(url, tmp_path):
    answer = post(url, "/api/v1/alertmanager/ops", notification([am_alert(1)]))
    assert answer.status_code == 200
    assert [c for c, _ in stored(tmp_path)] == ["ops"]
    missing = post(url, "/api/v1/alertmanager/nosuch", notification([am_alert(1)]))
    assert missing.status_code == 404
    assert "nosuch" in missing.json()["error"]


def test_plain_alerts_one_or_many(url, tmp_path):
    one = post(url, "/api/v1/alerts", {"title": "CPU hot", "labels": {"team": "ops"}})
    assert one.status_code == 200
    assert one.json()["accepted"] == 1
    many = post(url, "/api/v1/alerts", [{"title": "a"}, {"title": "b"}])
    assert many.json()["accepted"] == 2
    assert stored(tmp_path) == [("audit", "CPU hot"), ("ops", "CPU hot"), ("audit", "a"),
                                ("audit", "b")]  # fmt: skip


def test_grafana_webhook_contact_point_is_accepted(url, tmp_path):
    extra = {"silenceURL": "http://grafana/s", "dashboardURL": "http://grafana/d", "values": {}}
    grafana = notification([{**am_alert(1), **extra}])
    grafana.update(version="1", orgId=1, state="alerting", title="[FIRING:1]", message="m")
    answer = post(url, "/api/v1/alertmanager", grafana)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/api/v1/alertmanager", b"{not json", "body is not JSON"),
        ("/api/v1/alertmanager", b'{"alerts": "\xff\xfe"}', "body is not UTF-8"),
        ("/api/v1/alertmanager", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("/api/v1/alertmanager", {"version": "4", "status": "firing"}, "alerts: expected"),
        ("/api/v1/alertmanager", [1, 2], "a notification is a JSON object"),
        ("/api/v1/alertmanager", {**notification([am_alert(1)]), "alerts": {"a": 1}},
         "alerts: expected"),
        ("/api/v1/alertmanager", notification([{**am_alert(1), "labels": "x"}]),
         "alerts[0].labels"),
        ("/api/v1/alertmanager", notification([{**am_alert(1), "status": 3}]),
         "alerts[0].status"),
        ("/api/v1/alertmanager", {**notification([am_alert(1)]), "version": "3"}, "version"),
        ("/api/v1/alerts", {"title": "x", "sevrity": "critical"}, "unknown alert field"),
        ("/api/v1/alerts", [], "non-empty array"),
        ("/api/v1/alerts", [{"title": "x"}, {"body": "no title"}], "alert 1: "),
    ],
    ids=["not-json", "invalid-utf8", "deep-nesting", "missing-alerts", "not-an-object",
         "alerts-wrong-type", "labels-wrong-type", "status-wrong-type", "wrong-version",
         "alert-unknown-field", "no-alerts", "second-alert-invalid"],
)  # fmt: skip
def test_a_body_that_is_not_a_notification_is_400_with_its_reason(
    url, tmp_path, path, body, reason
):
    answer = post(url, path, body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert reason in error
    assert "\n" not in error
    assert stored(tmp_path) == []


def test_ten_thousand_alerts_in_one_notification_are_accepted(tmp_path):
    from notifier.server import create_app
    from tests.server.conftest import BASE, serving, write_config

    config = write_config(tmp_path, BASE.replace("[server]", "[server]\nmax_body_bytes = 8388608"))
    app = create_app(config, env={"SERVE_TOKEN": "t"}, deliver=False)
    try:
        with serving(app) as url:
            alerts = [am_alert(n) for n in range(10_000)]
            answer = post(url, "/api/v1/alertmanager", notification(alerts))
    finally:
        app.close()
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["accepted"] == 10_000
    assert {c for c, _ in stored(tmp_path)} == {"audit"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer token-on"},
        {"Authorization": "Token token-one"},
        {"Authorization": "Basic " + base64.b64encode(b"prometheus:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"nobody:pass-word").decode()},
        {"Authorization": "Basic not-base64!"},
    ],
    ids=["none", "wrong-token", "token-prefix", "other-scheme", "wrong-password",
         "unknown-user", "malformed-basic"],
)  # fmt: skip
def test_without_valid_credentials_401(url, tmp_path, headers):
    answer = requests.post(
        url + "/api/v1/alertmanager", json=notification([am_alert(1)]), headers=headers, timeout=10
    )
    assert answer.status_code == 401
    assert "Bearer" in answer.headers["WWW-Authenticate"]
    assert "token-one" not in answer.text
    assert stored(tmp_path) == []


@pytest.mark.parametrize(
    "headers",
    [
        TOKEN,
        {"Authorization": "Bearer token-two"},  # from the environment
        {"Authorization": "Basic " + base64.b64encode(b"prometheus:pass-word").decode()},
    ],
    ids=["token", "env-token", "basic"],
)
def test_every_configured_credential_is_accepted(url, headers):
    assert post(url, "/api/v1/alerts", {"title": "x"}, headers).status_code == 200


def test_over_max_body_bytes_is_413_before_reading_it(app, url, tmp_path):
    limit = app.settings.max_body_bytes
    over = post(url, "/api/v1/alerts", b" " * (limit + 1))
    assert over.status_code == 413
    assert str(limit) in over.json()["error"]
    # Far over: refused on the Content-Length alone, without the body ever arriving.
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-one\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 413")
    assert stored(tmp_path) == []


def test_a_locked_outbox_is_503_so_the_sender_retries(app, url, tmp_path):
    holder = sqlite3.connect(tmp_path / "outbox.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        answer = post(url, "/api/v1/alertmanager", notification([am_alert(1)]))
        ready = requests.get(url + "/readyz", timeout=10)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    assert "cannot store" in answer.json()["error"]
    assert ready.status_code == 503
    again = post(url, "/api/v1/alertmanager", notification([am_alert(1)]))
    assert again.status_code == 200
    assert requests.get(url + "/readyz", timeout=10).status_code == 200


def test_health_readiness_unknown_paths_and_methods(url):
    assert requests.get(url + "/healthz", timeout=10).json() == {"status": "alive"}
    assert requests.get(url + "/readyz", timeout=10).status_code == 200
    assert requests.get(url + "/nowhere", headers=TOKEN, timeout=10).status_code == 404
    wrong = requests.get(url + "/api/v1/alerts", headers=TOKEN, timeout=10)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"


def test_every_answer_carries_a_request_id_and_echoes_a_sane_one(url):
    answers = [
        requests.get(url + "/healthz", timeout=10),
        requests.get(url + "/nowhere", timeout=10),
        post(url, "/api/v1/alerts", b"{", TOKEN),
        post(url, "/api/v1/alerts", {"title": "x"}, {}),
    ]
    ids = [a.headers["X-Request-Id"] for a in answers]
    assert all(ids) and len(set(ids)) == len(ids)
    mine = requests.get(url + "/healthz", headers={"X-Request-Id": "abc-123"}, timeout=10)
    assert mine.headers["X-Request-Id"] == "abc-123"
    forged = requests.get(url + "/healthz", headers={"X-Request-Id": "a\tb c"}, timeout=10)
    assert forged.headers["X-Request-Id"] != "a\tb c"


def test_metrics_after_a_run(app: NotifierApp, url):
    post(url, "/api/v1/alertmanager", notification([am_alert(1), am_alert(2, team="ops")]))
    post(url, "/api/v1/alerts", {"title": "x"})
    post(url, "/api/v1/alerts", {"title": "x"}, {})
    app.engine.drain(until_idle=True)
    assert requests.get(url + "/metrics", timeout=10).status_code == 401
    text = requests.get(url + "/metrics", headers=TOKEN, timeout=10).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("notifier_alerts_received_total", (("source", "alertmanager"),))] == 2
    assert samples[("notifier_alerts_received_total", (("source", "api"),))] == 1
    code = (("code", "401"), ("endpoint", "/api/v1/alerts"))
    assert samples[("notifier_http_requests_total", code)] == 1
    delivered = (("channel", "audit"), ("kind", "jsonl"), ("outcome", "delivered"),
                 ("reason", "sent"))  # fmt: skip
    assert samples[("notifier_deliveries_total", delivered)] == 2
    assert samples[("notifier_delivery_duration_seconds_count", (("channel", "audit"),))] == 2
    assert samples[("notifier_outbox_deliveries", (("channel", "audit"), ("state", "delivered")))]
    assert ("notifier_dead_letters", (("channel", "ops"),)) in samples
    assert "token-one" not in text and "pass-word" not in text
