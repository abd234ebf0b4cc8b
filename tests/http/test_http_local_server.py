"""LocalServer, the real test server fake providers build on."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
import requests

from notifier.testing import LocalServer, Request, Response

pytest_plugins = ["pytester"]


class Echo(LocalServer):
    def setup(self) -> None:
        self.route("POST", "/echo", self.echo)

    def echo(self, request: Request) -> Response:
        return Response.from_json(
            {"query": dict(request.query), "body": request.json(), "ua": request.header("X-T")},
            headers={"X-Served": "yes"},
        )


def test_a_subclass_route_answers_with_json_and_the_request_is_recorded():
    with Echo() as server:
        answer = requests.post(
            server.root + "echo?a=1&a=2&b=", json={"名": "值"}, headers={"X-T": "t"}, timeout=5
        )
        assert answer.json() == {"query": {"a": "2", "b": ""}, "body": {"名": "值"}, "ua": "t"}
        assert answer.headers["X-Served"] == "yes"
        (request,) = server.requests
        assert request.query_all["a"] == ["1", "2"]
        assert request.method == "POST"
        assert request.path == "/echo"


def test_unrouted_paths_are_404_and_handler_errors_are_500():
    with LocalServer() as server:
        server.route("GET", "/boom", lambda r: 1 / 0)
        assert requests.get(server.root + "nothing", timeout=5).status_code == 404
        broken = requests.get(server.root + "boom", timeout=5)
        assert broken.status_code == 500
        assert "ZeroDivisionError" in broken.text


def test_routes_can_be_added_with_a_decorator_and_return_dicts_or_none():
    server = LocalServer()

    @server.route("GET", "/d")
    def as_dict(request):
        return {"ok": 1}

    server.route("DELETE", "/n", lambda r: None)
    with server:
        assert requests.get(server.root + "d", timeout=5).json() == {"ok": 1}
        assert requests.delete(server.root + "n", timeout=5).content == b""


def test_keep_alive_connections_are_counted_once_per_tcp_connection():
    with Echo() as server, requests.Session() as session:
        for _ in range(10):
            session.post(server.root + "echo", json={}, timeout=5)
        requests.post(server.root + "echo", json={}, timeout=5)
        assert server.connections == 2
        assert [r.connection for r in server.requests] == [1] * 10 + [2]


def test_faults_apply_in_order_and_only_to_their_path():
    with Echo() as server:
        server.route("GET", "/other", lambda r: {})
        server.fail_next(1, status=503, retry_after=5, path="/echo")
        server.fail_next(1, status=418)
        assert requests.get(server.root + "other", timeout=5).status_code == 418
        limited = requests.post(server.root + "echo", json={}, timeout=5)
        assert (limited.status_code, limited.headers["Retry-After"]) == (503, "5")
        assert requests.post(server.root + "echo", json={}, timeout=5).status_code == 200


def test_a_dropped_request_is_read_and_recorded_but_never_answered():
    with Echo() as server:
        server.drop_next()
        with pytest.raises(requests.ConnectionError):
            requests.post(server.root + "echo", json={"x": 1}, timeout=5)
        assert server.requests[0].json() == {"x": 1}


def test_stop_cuts_a_delayed_answer_short():
    server = Echo().start()
    server.delay_next(60)
    done = threading.Event()

    def call() -> None:
        with contextlib.suppress(requests.RequestException):
            requests.post(server.root + "echo", json={}, timeout=30)
        done.set()

    threading.Thread(target=call, daemon=True).start()
    while not server.requests:  # poll until the request is being held
        time.sleep(0.005)
    started = time.monotonic()
    server.stop()
    assert done.wait(5)
    assert time.monotonic() - started < 2


def test_reset_forgets_requests_and_faults_but_keeps_routes():
    with Echo() as server:
        requests.post(server.root + "echo", json={}, timeout=5)
        server.fail_next(3)
        server.reset()
        assert server.requests == []
        assert requests.post(server.root + "echo", json={}, timeout=5).status_code == 200


def test_a_fake_provider_subclass_works_in_a_users_test_suite(pytester):
    pytester.makepyfile(
        """
        import requests
        from notifier.testing import LocalServer, Response

        class Fake(LocalServer):
            def setup(self):
                self.route("GET", "/hi", lambda r: Response.text("hello"))

        def test_it():
            with Fake() as server:
                assert requests.get(server.root + "hi", timeout=5).text == "hello"
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
