"""WSGIGateway over real sockets: the environ, start_response, bodies, errors, threads.

Most applications are wrapped in ``wsgiref.validate.validator``: any PEP 3333 violation by
the gateway raises (or warns, and warnings are errors) inside the application, which
would turn the expected status into a 500.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.validate import validator

import pytest

from netcomp import Component, Manager, handler, sleep
from netcomp.testing import Recorder, running
from netcomp.web import Controller, Response, Server, WSGIGateway

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


# ----------------------------------------------------------- applications
def env_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Answers with the environ's str values, the flags and the body it read, as JSON."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    report = {k: v for k, v in environ.items() if isinstance(v, str)}
    report["body"] = body.decode("latin-1")
    report["body_sha256"] = hashlib.sha256(body).hexdigest()
    for key in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"):
        report[key] = environ[key]
    report["wsgi.version"] = list(environ["wsgi.version"])
    report["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
    data = json.dumps(report).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


class Closing:
    """A body iterable that records its close()."""

    def __init__(self, chunks: list[bytes], closed: threading.Event) -> None:
        self.chunks = chunks
        self.closed = closed

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed.set()


class Apps:
    """One validated application routing on PATH_INFO, and what the tests watch."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        text = [("Content-Type", "text/plain; charset=utf-8")]
        if path == "/teapot":
            start_response("418 I'm a teapot", [*text, ("X-Custom", "caf\u00e9")])
            return [b"short and stout"]
        if path == "/reason":
            start_response("200 Fine Thanks", text)
            return [b"ok"]
        if path == "/write":
            write = start_response("201 Created", text)
            write(b"written, ")
            write(b"")
            return Closing([b"then ", b"", b"iterated"], self.closed)
        if path == "/generator":
            start_response("200 OK", text)
            return (f"{n},".encode() for n in range(5))
        if path == "/exc-before-body":
            start_response("200 OK", text)
            try:
                raise ValueError("changed my mind")
            except ValueError:
                start_response("503 Service Unavailable", text, sys.exc_info())
            return [b"replaced"]
        if path == "/exc-after-body":
            start_response("200 OK", text)
            return self._late_error(start_response, text)
        if path == "/raise":
            raise RuntimeError("boom in the app")
        if path == "/slow":
            self.entered.set()
            released = self.gate.wait(10)
            start_response("200 OK", text)
            return [b"slow done" if released else b"gate timed out"]
        if path == "/errors":
            errors = environ["wsgi.errors"]
            errors.write("first line\nsecond ")
            errors.writelines(["line\n", "unfinished"])
            start_response("200 OK", text)
            return [b"logged"]
        if path == "/empty":
            start_response("204 No Content", [])
            return []
        return env_app(environ, start_response)

    def _late_error(self, start_response: StartResponse, text: Any) -> Iterator[bytes]:
        yield b"partial"
        try:
            raise KeyError("too late")
        except KeyError:
            start_response("500 Internal Server Error", text, sys.exc_info())  # re-raises
        yield b"never"


class Api(Controller):
    """A netcomp controller on the same server; "/" catches what nothing else takes."""

    channel = "/"

    def index(self, *args: str) -> str:
        return "controller:" + "/".join(args)


class Site:
    def __init__(self, port: int, apps: Apps, recorder: Recorder) -> None:
        self.port = port
        self.apps = apps
        self.recorder = recorder


def serve(check_errors: bool = True, workers: int | None = 4) -> Iterator[Site]:
    apps = Apps()
    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    WSGIGateway(validator(apps), path="/wsgi", workers=workers).register(server)
    Api().register(server)
    try:
        with running(manager, check_errors=check_errors) as recorder:
            yield Site(server.port, apps, recorder)
    finally:
        apps.gate.set()


@pytest.fixture
def site() -> Iterator[Site]:
    yield from serve()


@pytest.fixture
def failing_site() -> Iterator[Site]:
    """A site whose applications are expected to raise (errors checked by the test)."""
    yield from serve(check_errors=False)


def fetch(
    port: int,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | None = None,
) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        pairs = headers.items() if isinstance(headers, dict) else headers or []
        for name, value in pairs:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def environ_of(port: int, path: str, **kwargs: Any) -> dict[str, Any]:
    response, body = fetch(port, path, **kwargs)
    assert response.status == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


# ---------------------------------------------------------------- environ
def test_environ_basics(site: Site) -> None:
    env = environ_of(site.port, "/wsgi/some/where?a=1&b=%20x")
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == "/wsgi"
    assert env["PATH_INFO"] == "/some/where"
    assert env["QUERY_STRING"] == "a=1&b=%20x"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(site.port))
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert int(env["REMOTE_PORT"]) > 0
    assert env["HTTP_HOST"] == f"127.0.0.1:{site.port}"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert "CONTENT_LENGTH" not in env and "CONTENT_TYPE" not in env


def test_mount_point_itself_and_decoded_path(site: Site) -> None:
    env = environ_of(site.port, "/wsgi")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/wsgi", "")
    env = environ_of(site.port, "/wsgi/a%2Fb/%C3%A9")
    # PEP 3333: decoded bytes, as latin-1; the raw target stays in REQUEST_URI.
    assert env["PATH_INFO"] == "/a/b/\u00c3\u00a9"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/a/b/\u00e9"
    assert env["REQUEST_URI"] == "/wsgi/a%2Fb/%C3%A9"


def test_remote_port_is_the_clients(site: Site) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    try:
        conn.request("GET", "/wsgi/env")
        response = conn.getresponse()
        env = json.loads(response.read())
        assert conn.sock is not None
        assert env["REMOTE_PORT"] == str(conn.sock.getsockname()[1])
    finally:
        conn.close()


def test_headers_in_the_environ(site: Site) -> None:
    headers = [
        ("X-Multi", "one"),
        ("X-Multi", "two"),
        ("Cookie", "a=1"),
        ("Cookie", "b=2"),
        ("X_Sneaky", "dropped"),
        ("Content-Type", "text/x-test"),
        ("Accept", "*/*"),
    ]
    env = environ_of(site.port, "/wsgi/env", method="POST", headers=headers, body=b"abc")
    assert env["HTTP_X_MULTI"] == "one, two"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["HTTP_ACCEPT"] == "*/*"
    assert env["CONTENT_TYPE"] == "text/x-test"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_X_SNEAKY" not in env
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_post_body(site: Site) -> None:
    body = bytes(range(256)) * 4
    env = environ_of(
        site.port,
        "/wsgi/env",
        method="POST",
        headers={"Content-Type": "application/octet-stream"},
        body=body,
    )
    assert env["REQUEST_METHOD"] == "POST"
    assert env["body"].encode("latin-1") == body
    assert env["CONTENT_LENGTH"] == str(len(body))


def test_chunked_post_body_gets_a_content_length(site: Site) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    try:
        conn.request("POST", "/wsgi/env", body=iter([b"hello ", b"chunks"]), encode_chunked=True)
        env = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert env["body"] == "hello chunks"
    assert env["CONTENT_LENGTH"] == "12"


def test_large_streamed_body(site: Site) -> None:
    """A body above max_buffered_body (1 MiB) reaches the app whole."""
    body = bytes(range(256)) * (3 * 4096)  # 3 MiB
    env = environ_of(site.port, "/wsgi/env", method="POST", body=body)
    assert env["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert env["CONTENT_LENGTH"] == str(len(body))


def test_http10_without_host_uses_the_server_address(site: Site) -> None:
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as sock:
        sock.sendall(b"GET /wsgi/env HTTP/1.0\r\n\r\n")
        data = b""
        for _ in range(1000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    env = json.loads(body)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(site.port))


# -------------------------------------------------------- start_response
def test_status_line_and_headers(site: Site) -> None:
    response, body = fetch(site.port, "/wsgi/teapot")
    assert (response.status, response.reason, body) == (418, "I'm a teapot", b"short and stout")
    assert response.headers["X-Custom"].encode("latin-1") == "caf\u00e9".encode("latin-1")
    response, _ = fetch(site.port, "/wsgi/reason")
    assert (response.status, response.reason) == (200, "Fine Thanks")


def test_write_callable_then_iterable_closed(site: Site) -> None:
    response, body = fetch(site.port, "/wsgi/write")
    assert (response.status, body) == (201, b"written, then iterated")
    assert site.apps.closed.is_set()


def test_generator_body(site: Site) -> None:
    """Streamed as it is produced: chunked, since the application gave no length."""
    response, body = fetch(site.port, "/wsgi/generator")
    assert (response.status, body) == (200, b"0,1,2,3,4,")
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.headers["Content-Length"] is None


def test_a_list_is_sent_whole_with_a_length() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"one ", b"list"]

    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    WSGIGateway(app, workers=1).register(server)  # unwrapped: the validator hides lists
    with running(manager):
        response, body = fetch(server.port, "/")
    assert (response.status, body) == (200, b"one list")
    assert response.headers["Content-Length"] == "8"


def test_head_sends_no_body(site: Site) -> None:
    """HEAD gets GET's fields: chunked framing announced (the validator's wrapper makes
    the teapot's list an iterator), no body."""
    response, body = fetch(site.port, "/wsgi/teapot", method="HEAD")
    assert (response.status, body) == (418, b"")
    assert response.headers["Transfer-Encoding"] == "chunked"


def test_no_content(site: Site) -> None:
    response, body = fetch(site.port, "/wsgi/empty")
    assert (response.status, body) == (204, b"")


def test_exc_info_before_the_body_replaces_the_status(site: Site) -> None:
    response, body = fetch(site.port, "/wsgi/exc-before-body")
    assert (response.status, body) == (503, b"replaced")
    assert site.recorder.errors == []


def test_exc_info_after_the_body_reraises(failing_site: Site) -> None:
    """The first chunk went out with a 200: too late for a 500, the body is cut (the
    client cannot take it for complete), the error reported once."""
    with socket.create_connection(("127.0.0.1", failing_site.port), timeout=10) as sock:
        sock.sendall(b"GET /wsgi/exc-after-body HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\n\r\n7\r\npartial\r\n" in data
    assert not data.endswith(b"0\r\n\r\n")  # no last chunk: a truncated body
    failing_site.recorder.wait_for("exception", timeout=5)
    errors = [e.args[1] for e in failing_site.recorder.errors]
    assert len(errors) == 1
    assert isinstance(errors[0], KeyError)


def test_app_raising_gives_500_and_one_exception_event(failing_site: Site) -> None:
    response, body = fetch(failing_site.port, "/wsgi/raise")
    assert response.status == 500
    assert b"boom" not in body  # no traceback without expose_tracebacks
    failing_site.recorder.wait_for("exception", timeout=5)
    errors = [e.args[1] for e in failing_site.recorder.errors]
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError) and str(errors[0]) == "boom in the app"
    # The server goes on.
    assert fetch(failing_site.port, "/wsgi/reason")[0].status == 200


def test_wsgi_errors_are_logged(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="netcomp.web.wsgi"):
        response, _ = fetch(site.port, "/wsgi/errors")
    assert response.status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "netcomp.web.wsgi"]
    assert lines == ["first line", "second line", "unfinished"]


# --------------------------------------------------------------- mounting
def test_mount_is_a_segment_prefix(site: Site) -> None:
    """Outside the mount the controller answers; inside it only the app does."""
    response, body = fetch(site.port, "/wsgix/a")
    assert (response.status, body) == (200, b"controller:wsgix/a")
    response, body = fetch(site.port, "/other")
    assert (response.status, body) == (200, b"controller:other")
    response, body = fetch(site.port, "/wsgi/teapot")
    assert (response.status, body) == (418, b"short and stout")


def test_slow_app_does_not_block_the_loop(site: Site) -> None:
    apps = site.apps
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    try:
        conn.request("GET", "/wsgi/slow")
        assert apps.entered.wait(5), "the slow application never started"
        # The app holds a worker thread; the loop still serves others.
        response, body = fetch(site.port, "/hello")
        assert (response.status, body) == (200, b"controller:hello")
        response, body = fetch(site.port, "/wsgi/reason")
        assert (response.status, body) == (200, b"ok")
        apps.gate.set()
        slow = conn.getresponse()
        assert (slow.status, slow.read()) == (200, b"slow done")
    finally:
        apps.gate.set()
        conn.close()


def test_mounted_at_the_root() -> None:
    captured: list[dict[str, Any]] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        captured.append({k: environ[k] for k in ("SCRIPT_NAME", "PATH_INFO")})
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"root app"]

    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    WSGIGateway(validator(app), workers=1).register(server)
    Api().register(server)  # never reached: the app owns every path
    with running(manager):
        response, body = fetch(server.port, "/x/y")
        assert (response.status, body) == (200, b"root app")
        response, body = fetch(server.port, "/")
        assert (response.status, body) == (200, b"root app")
    assert captured == [
        {"SCRIPT_NAME": "", "PATH_INFO": "/x/y"},
        {"SCRIPT_NAME": "", "PATH_INFO": "/"},
    ]


# ----------------------------------------------------- broken applications
def broken(kind: str) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    """Applications breaking PEP 3333 in one way each (not validated: the gateway checks)."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        text = [("Content-Type", "text/plain")]
        if kind == "str-chunk":
            start_response("200 OK", text)
            return ["text, not bytes"]  # type: ignore[list-item]
        if kind == "no-start-response":
            return [b"body"]
        if kind == "twice":
            start_response("200 OK", text)
            start_response("200 OK", text)
            return [b""]
        if kind == "hop-by-hop":
            start_response("200 OK", [*text, ("Connection", "close")])
            return [b""]
        if kind == "crlf":
            start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: x=1")])
            return [b""]
        if kind == "not-latin1":
            start_response("200 OK", [("X-Snow", "\u2603")])
            return [b""]
        if kind == "bad-status":
            start_response("OK", text)
            return [b""]
        if kind == "short":
            start_response("200 OK", [*text, ("Content-Length", "10")])
            return [b"abc"]
        raise AssertionError(kind)

    return app


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("str-chunk", TypeError),
        ("no-start-response", AssertionError),
        ("twice", AssertionError),
        ("hop-by-hop", ValueError),
        ("crlf", ValueError),
        ("not-latin1", UnicodeEncodeError),
        ("bad-status", ValueError),
        ("short", ValueError),
    ],
)
def test_contract_violations_give_500(kind: str, error: type[BaseException]) -> None:
    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    WSGIGateway(broken(kind), workers=1).register(server)
    with running(manager, check_errors=False) as recorder:
        response, _ = fetch(server.port, "/")
        assert response.status == 500
        recorder.wait_for("exception", timeout=5)
        assert [type(e.args[1]) for e in recorder.errors] == [error]


def test_streamed_body_shorter_than_its_content_length_is_cut() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        yield b"abc"

    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    WSGIGateway(app, workers=1).register(server)
    with running(manager, check_errors=False) as recorder:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            data = read_until_closed(sock)
        recorder.wait_for("exception", timeout=5)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 10\r\n" in data
    assert data.endswith(b"\r\n\r\nabc")  # then the close: 7 bytes short
    assert [type(e.args[1]) for e in recorder.errors] == [ValueError]


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    for _ in range(10_000):
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_longer_body_than_content_length_is_cut() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"abcdef"]

    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    WSGIGateway(validator(app), workers=1).register(server)
    with running(manager):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for _ in range(2):  # the framing holds: the second answer is intact too
                conn.request("GET", "/")
                response = conn.getresponse()
                assert (response.status, response.read()) == (200, b"abc")
        finally:
            conn.close()


def test_constructor_checks() -> None:
    with pytest.raises(TypeError):
        WSGIGateway("not an app")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WSGIGateway(env_app, path="wsgi")
    gateway = WSGIGateway(env_app, path="/mounted/")
    assert (gateway.path, gateway.script_name) == ("/mounted", "/mounted")


def test_async_request_handler_is_not_overridden_by_the_dispatcher() -> None:
    """Why the gateway stops the event: the Dispatcher only looks at results so far."""

    class Late(Component):
        channel = "web"

        @handler("request", priority=1)
        async def answer(self, request: Any, response: Any) -> Response:
            await sleep(0)
            return Response(b"late answer")

    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    Late().register(server)
    with running(manager):
        response, body = fetch(server.port, "/x")
    assert (response.status, body) == (200, b"late answer")
