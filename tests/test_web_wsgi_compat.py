"""circuits.web's ``wsgi.Application`` (a netcomp tree as a WSGI application) under the
standard library's ``wsgiref`` server and under netcomp's own gateway, and circuits'
``wsgi.Gateway`` (a dict of mounts, ``str`` bodies) with http.client."""

from __future__ import annotations

import http.client
import threading
import wsgiref.simple_server
from collections.abc import Iterator
from typing import Any

import pytest

from _web_support import TIMEOUT, get, serve
from netcomp import Component, Event, sleep
from netcomp.web import Controller, NotFound, Response
from netcomp.web.wsgi import Application, Gateway


class hello(Event):
    """hello(name)"""


class Greeter(Component):
    def hello(self, name: str) -> str:
        return f"hello {name}"


class Root(Controller):
    def index(self) -> str:
        return "Hello World!"

    def args(self, *args: str, **kwargs: str) -> dict[str, Any]:
        request = self.request
        return {"args": list(args), "kwargs": kwargs, "path": request.path,
                "script": request.script_name, "method": request.method}  # fmt: skip

    def yielded(self) -> Any:
        yield "Hello "
        yield "World!"

    def generator(self) -> Any:
        return (part for part in ("a", "b"))

    async def waits(self) -> str:
        await sleep(0)
        return await self.call(hello("ada"))

    def missing(self) -> str:
        raise NotFound(description="nothing here")

    def broken(self) -> str:
        raise RuntimeError("bug")

    def cookie_set(self) -> Response:
        self.response.set_cookie("a", "b", httponly=True)
        self.response.headers["Connection"] = "close"  # hop-by-hop: not the app's to send
        return self.response


def make_app() -> Application:
    app = Application()
    Root().register(app)
    Greeter().register(app)
    return app


@pytest.fixture
def wsgiref_url() -> Iterator[str]:
    class Quiet(wsgiref.simple_server.WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = wsgiref.simple_server.make_server("127.0.0.1", 0, make_app(), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def fetch(where: str, path: str, method: str = "GET", body: bytes | None = None) -> Any:
    host, port = where.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    connection.request(method, path, body, headers)
    reply = connection.getresponse()
    reply.data = reply.read()
    connection.close()
    return reply


def test_application_under_wsgiref(wsgiref_url: str) -> None:
    assert fetch(wsgiref_url, "/").data == b"Hello World!"
    reply = fetch(wsgiref_url, "/args/1/2?x=3", "POST", b"y=4")
    assert reply.getheader("Content-Type") == "application/json"
    assert reply.data == (
        b'{"args":["1","2"],"kwargs":{"x":"3","y":"4"},"path":"/args/1/2",'
        b'"script":"","method":"POST"}'
    )
    assert fetch(wsgiref_url, "/yielded").data == b"Hello World!"
    assert fetch(wsgiref_url, "/generator").data == b"ab"
    assert fetch(wsgiref_url, "/waits").data == b"hello ada"
    missing = fetch(wsgiref_url, "/missing")
    assert missing.status == 404 and b"nothing here" in missing.data
    assert fetch(wsgiref_url, "/nowhere").status == 404
    broken = fetch(wsgiref_url, "/broken")
    assert broken.status == 500 and b"bug" not in broken.data
    cookie = fetch(wsgiref_url, "/cookie_set")
    assert cookie.getheader("Set-Cookie") == "a=b; HttpOnly"
    assert fetch(wsgiref_url, "/", "HEAD").data == b""


def test_application_mounted_by_netcomp(caplog: pytest.LogCaptureFixture) -> None:
    with serve(Gateway({"/app": make_app()}), check_errors=False) as site:
        reply = get(site.port, "/app/args/a")
        assert reply.status == 200
        assert b'"script":"/app"' in reply.body and b'"path":"/args/a"' in reply.body
        assert get(site.port, "/app/waits").body == b"hello ada"


def test_application_with_its_tree_running() -> None:
    app = make_app()
    app.start()
    try:
        with serve(Gateway({"/": app})) as site:
            assert get(site.port, "/waits").body == b"hello ada"
            assert get(site.port, "/").body == b"Hello World!"
    finally:
        app.stop()
        app.join(TIMEOUT)


# ---------------------------------------------------------- circuits' Gateway
def text_app(environ: dict[str, Any], start_response: Any) -> Any:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return "Hello World!"  # a str: PEP 3333 says bytes; circuits took it


def foobar(environ: dict[str, Any], start_response: Any) -> Any:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write("Foo")
    yield "Bar!"


def test_gateway_mounts_by_longest_path_and_takes_str() -> None:
    with serve(Gateway({"/": text_app, "/foobar": foobar})) as site:
        assert get(site.port, "/").body == b"Hello World!"
        assert get(site.port, "/anything").body == b"Hello World!"
        assert get(site.port, "/foobar/x").body == b"FooBar!"
