"""The HTTP server over real sockets: framing, keep-alive, pipelining, the Request and
Response APIs, errors and the access log.

Clients: http.client, urllib, curl, raw sockets, and h11 (a strict HTTP/1.1 client that
must accept every response netcomp sends: every raw-socket response here is parsed by it).
"""

from __future__ import annotations

import hashlib
import http.client
import http.cookies
import json
import logging
import random
import re
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import h11
import pytest

from _net_support import cert_files, client_ssl_context
from _web_support import (
    Client,
    Gauge,
    Site,
    curl,
    get,
    raw_request,
    serve,
    small_buffer_listener,
)
from netcomp import Component, Event, handler, sleep
from netcomp.web import (
    Forbidden,
    HTTPError,
    HTTPLimits,
    MethodNotAllowed,
    NotFound,
    Redirect,
    Request,
    Response,
)

KiB = 1024
MiB = 1024 * KiB
DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d\d:\d\d:\d\d GMT\Z"
)


def hello(request: Request, response: Response) -> str:
    return "hello, world"


def echo(request: Request, response: Response) -> bytes:
    """The request body back (any method)."""
    response.headers["X-Method"] = request.method
    return request.body


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


# ---------------------------------------------------------------- basics
def test_hello_world_with_http_client() -> None:
    with serve(hello) as site:
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
    assert (response.status, response.reason, body) == (200, "OK", b"hello, world")
    assert response.version == 11
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Length"] == "12"
    assert response.headers["Server"] == "netcomp"
    assert DATE.match(response.headers["Date"])
    assert abs(parsedate_to_datetime(response.headers["Date"]).timestamp() - time.time()) < 60
    assert "Transfer-Encoding" not in response.headers


def test_hello_world_with_urllib() -> None:
    with serve(hello) as site, urllib.request.urlopen(site.url + "/", timeout=5) as response:
        assert response.status == 200
        assert response.read() == b"hello, world"


def test_hello_world_with_curl() -> None:
    with serve(hello) as site:
        result = curl("--include", site.url + "/")
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 12" in head
    assert body == b"hello, world"


def test_hello_world_with_h11() -> None:
    with serve(hello) as site:
        reply = get(site.port)
    assert (reply.status, reply.body, reply.version) == (200, b"hello, world", "1.1")
    assert reply.header("server") == "netcomp"
    assert DATE.match(reply.header("date") or "")


def test_server_and_date_fields_can_be_set_or_dropped() -> None:
    def own(request: Request, response: Response) -> str:
        if request.path == "/own":
            response.headers["Server"] = "mine/1"
            response.headers["Date"] = "Mon, 01 Jan 2024 00:00:00 GMT"
        return "x"

    with serve(own, server_name="custom/2") as site, site.client() as client:
        first = client.request(target="/")
        second = client.request(target="/own")
    assert first.all("server") == ["custom/2"]
    assert second.all("server") == ["mine/1"]
    assert second.all("date") == ["Mon, 01 Jan 2024 00:00:00 GMT"]
    with serve(hello, server_name=None) as site:
        reply = get(site.port)
    assert reply.header("server") is None
    assert reply.header("date") is not None


# ----------------------------------------------------------- keep-alive
def test_keep_alive_reuses_the_socket() -> None:
    def port(request: Request, response: Response) -> str:
        return str(request.remote[1])

    with serve(port) as site:
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
        try:
            ports = []
            sockets = []
            for _ in range(5):
                conn.request("GET", "/")
                response = conn.getresponse()
                ports.append(response.read().decode())
                assert not response.will_close
                sockets.append(conn.sock)
        finally:
            conn.close()
    assert all(s is sockets[0] for s in sockets) and sockets[0] is not None
    assert len(set(ports)) == 1  # the server saw one client port: one connection


def test_keep_alive_with_h11_across_kinds_of_answers() -> None:
    """Every kind of answer on one connection, each validated by h11: the framing holds."""

    def many(request: Request, response: Response) -> Any:
        kind = request.path.strip("/")
        if kind == "str":
            return "text \u00e9"
        if kind == "bytes":
            return b"\x00\x01"
        if kind == "dict":
            return {"a": 1}
        if kind == "stream":
            response.body = iter([b"one ", b"two"])
            return response
        if kind == "empty":
            return Response(b"", 200)
        if kind == "nocontent":
            response.status = 204
            return "dropped"
        if kind == "notmodified":
            response.status = 304
            return "dropped"
        if kind == "missing":
            raise NotFound()
        return echo(request, response)

    expected = [
        ("GET", "/str", 200, "text \u00e9".encode()),
        ("GET", "/bytes", 200, b"\x00\x01"),
        ("GET", "/dict", 200, b'{"a":1}'),
        ("GET", "/stream", 200, b"one two"),
        ("HEAD", "/stream", 200, b""),
        ("GET", "/empty", 200, b""),
        ("GET", "/nocontent", 204, b""),
        ("GET", "/notmodified", 304, b""),
        ("GET", "/missing", 404, None),
        ("HEAD", "/str", 200, b""),
        ("POST", "/echo", 200, b"posted"),
    ]
    with serve(many) as site, site.client() as client:
        for method, target, status, body in expected:
            reply = client.request(method, target, body=b"posted" if method == "POST" else b"")
            assert reply.status == status, target
            if body is not None:
                assert reply.body == body, target
            assert not reply.closes


# ----------------------------------------------------------- pipelining
def test_pipelined_responses_come_in_request_order() -> None:
    finished: list[int] = []

    async def slow(request: Request, response: Response) -> str:
        n = int(request.path.strip("/"))
        await sleep(0.02 * (10 - n))  # the first request finishes last
        finished.append(n)
        return f"response {n}"

    with serve(slow, virtual=True) as site, site.client() as client:
        client.send(b"".join(raw_request(f"/{n}") for n in range(10)))
        site.vt.wait_timer(0.2)  # all ten asleep
        assert client.quiet()
        site.vt.advance(0.25)
        bodies = [client.reply().text for _ in range(10)]
    assert bodies == [f"response {n}" for n in range(10)]
    assert finished == list(range(9, -1, -1))  # they ran at once, in reverse


def test_pipelined_requests_with_bodies_and_head() -> None:
    with serve(echo) as site, site.client() as client:
        client.send(
            raw_request("/", "Content-Length: 3", method="POST")
            + b"abc"
            + raw_request("/", method="HEAD")
            + raw_request("/", "Transfer-Encoding: chunked", method="PUT")
            + b"2\r\nde\r\n0\r\n\r\n"
            + raw_request("/", method="GET")
        )
        replies = [client.reply(m) for m in ("POST", "HEAD", "PUT", "GET")]
    assert [(r.header("x-method"), r.body) for r in replies] == [
        ("POST", b"abc"),
        ("HEAD", b""),
        ("PUT", b"de"),
        ("GET", b""),
    ]


# ------------------------------------------------------- 100-continue
def test_expect_100_continue_over_a_raw_socket() -> None:
    with serve(echo) as site, site.client() as client:
        client.send(raw_request("/", "Content-Length: 5", "Expect: 100-continue", method="POST"))
        assert client.read_raw() == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.send(b"hello")
        reply = client.reply("POST")
        assert (reply.status, reply.body) == (200, b"hello")
        # Without Expect, no 100 is sent (h11 would list it as informational).
        reply = client.request("POST", "/", body=b"again")
        assert (reply.informational, reply.body) == ([], b"again")


def test_expect_100_continue_waits_for_its_turn_when_pipelined() -> None:
    """The 100 of a pipelined request goes out after the responses before it."""

    async def slow_first(request: Request, response: Response) -> bytes:
        if request.path == "/slow":
            await sleep(0.05)
        return request.body or b"slow"

    with serve(slow_first, virtual=True) as site, site.client() as client:
        client.send(
            raw_request("/slow")
            + raw_request("/", "Content-Length: 3", "Expect: 100-continue", method="POST")
        )
        site.vt.wait_timer(0.05)
        assert client.quiet()  # no 100 before the response due ahead of it
        site.vt.advance(0.05)
        data = client.read_raw(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert data.endswith(b"\r\n\r\nslowHTTP/1.1 100 Continue\r\n\r\n")
        client.send(b"xyz")
        assert client.reply("POST").body == b"xyz"


def test_curl_large_upload_uses_expect(tmp_path: Path) -> None:
    data = payload(2 * MiB)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(data)

    def digest(request: Request, response: Response) -> str:
        return f"{len(request.body)} {hashlib.sha256(request.body).hexdigest()}"

    with serve(digest, limits=HTTPLimits(max_buffered_body=4 * MiB)) as site:
        result = curl(
            "--verbose",
            "--data-binary",
            f"@{upload}",
            "-H",
            "Content-Type: application/octet-stream",
            site.url + "/up",
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == f"{len(data)} {hashlib.sha256(data).hexdigest()}"
    assert b"Expect: 100-continue" in result.stderr
    assert b"HTTP/1.1 100 Continue" in result.stderr


# ------------------------------------------------------------------ HEAD
@pytest.mark.parametrize("kind", ["str", "stream", "dict"])
def test_head_has_the_fields_of_get_and_no_body(kind: str) -> None:
    def answer(request: Request, response: Response) -> Any:
        response.headers["X-Kind"] = kind
        if kind == "stream":
            return Response(iter([b"a", b"b"]))
        return "some text" if kind == "str" else {"k": [1, 2]}

    with serve(answer) as site, site.client() as client:
        got = client.request("GET", "/")
        head = client.request("HEAD", "/")
        after = client.request("GET", "/")  # the HEAD answer left no stray bytes
    assert head.body == b"" and got.body and after.body == got.body
    drop = {"date"}
    assert [h for h in head.headers if h[0] not in drop] == [
        h for h in got.headers if h[0] not in drop
    ]
    if kind != "stream":
        assert head.header("content-length") == str(len(got.body))


def test_head_with_http_client() -> None:
    with serve(hello) as site:
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
        try:
            conn.request("HEAD", "/")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"")
            assert response.headers["Content-Length"] == "12"
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"hello, world"
        finally:
            conn.close()


# ---------------------------------------------------------- no-body status
@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    def answer(request: Request, response: Response) -> str:
        response.status = status
        response.headers["Content-Length"] = "22"  # a handler's mistake: not sent
        return "this must not be sent"

    with serve(answer) as site, site.client() as client:
        client.send(raw_request("/") + raw_request("/"))
        raw = client.read_raw()
        assert raw.startswith(f"HTTP/1.1 {status} ".encode())
        assert b"content-length" not in raw.lower() and b"transfer-encoding" not in raw.lower()
        assert b"must not" not in raw
    with serve(answer) as site, site.client() as client:
        replies = [client.request() for _ in range(2)]  # h11: the framing is right
    assert [(r.status, r.body) for r in replies] == [(status, b"")] * 2


# --------------------------------------------------------------- chunked
def test_chunked_request_body_with_extensions_and_trailers() -> None:
    with serve(echo) as site, site.client() as client:
        client.send(
            raw_request("/", "Transfer-Encoding: chunked", method="POST")
            + b"5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
        assert client.reply("POST").body == b"hello world"
        assert client.request("GET", "/").status == 200


def test_chunked_request_body_with_http_client() -> None:
    with serve(echo) as site:
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
        try:
            conn.request("POST", "/", body=iter([b"part one, ", b"part two"]))
            response = conn.getresponse()
            assert response.read() == b"part one, part two"
        finally:
            conn.close()


def test_chunked_response_from_an_iterator() -> None:
    parts = [b"alpha ", b"", "beta ", b"gamma"]

    def stream(request: Request, response: Response) -> Response:
        response.headers["Content-Type"] = "text/plain"
        response.body = iter(parts)
        return response

    with serve(stream) as site:
        with site.client() as client:
            reply = client.request()
        with urllib.request.urlopen(site.url + "/", timeout=5) as response:
            via_urllib = response.read()
            encoding = response.headers["Transfer-Encoding"]
    assert reply.chunked and reply.header("content-length") is None
    assert reply.body == via_urllib == b"alpha beta gamma"
    assert encoding == "chunked"


def test_http_1_0_gets_a_close_delimited_stream() -> None:
    def stream(request: Request, response: Response) -> Response:
        return Response(iter([b"one ", b"two"]))

    with serve(stream) as site, site.client() as client:
        client.send(raw_request("/", "Connection: keep-alive", version="1.0"))
        reply = client.reply(version="1.0")
        assert reply.body == b"one two" and not reply.chunked
        assert reply.closes
        assert client.closed()


# ------------------------------------------------------------ Connection
def test_client_connection_close_is_honoured() -> None:
    with serve(hello) as site, site.client() as client:
        # Anything after a request marked close is ignored.
        client.send(raw_request("/", "Connection: close") + raw_request("/ignored"))
        reply = client.reply()
        assert reply.closes and reply.body == b"hello, world"
        assert client.closed()
        seen = site.recorder.count("request")
    assert seen == 1


@pytest.mark.parametrize("how", ["attribute", "header"])
def test_handler_closes_the_connection(how: str) -> None:
    def closing(request: Request, response: Response) -> str:
        if how == "attribute":
            response.close = True
        else:
            response.headers["Connection"] = "close"
        return "bye"

    with serve(closing) as site, site.client() as client:
        reply = client.request()
        assert reply.body == b"bye" and reply.all("connection") == ["close"]
        assert client.closed()
    with serve(closing) as site:
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.read() == b"bye" and response.will_close
        finally:
            conn.close()


def test_http_1_0_closes_by_default_and_keeps_alive_when_asked() -> None:
    with serve(hello) as site:
        with site.client() as client:
            client.send(raw_request("/", version="1.0"))
            reply = client.reply(version="1.0")
            assert (reply.status, reply.body) == (200, b"hello, world")
            assert reply.closes and client.closed()
        with site.client() as client:
            for _ in range(3):
                client.send(raw_request("/", "Connection: keep-alive", version="1.0"))
                reply = client.reply()  # framed by Content-Length, as 1.1 would be
                assert reply.header("connection") == "keep-alive"
                assert reply.body == b"hello, world"


# ------------------------------------------------------------ Request API
def describe(request: Request, response: Response) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query_string": request.query_string,
        "query": request.query,
        "multi": request.headers.get_all("x-multi"),
        "first": request.headers.get("X-MULTI"),
        "has": "x-multi" in request.headers,
        "cookies": request.cookies,
        "remote": list(request.remote),
        "scheme": request.scheme,
        "version": request.version,
        "keep_alive": request.keep_alive,
        "target": request.target,
    }


def test_query_path_and_headers() -> None:
    with serve(describe) as site, site.client() as client:
        reply = client.request(
            target="/a%20b/c?x=1&y=two&x=3&empty=&sp=a+b%26",
            headers=[("X-Multi", "one"), ("x-multi", "two")],
        )
        data = json.loads(reply.body)
        port = client.sock.getsockname()[1]
    assert data["path"] == "/a b/c"
    assert data["raw_path"] == "/a%20b/c"
    assert data["query_string"] == "x=1&y=two&x=3&empty=&sp=a+b%26"
    assert data["query"] == {"x": ["1", "3"], "y": "two", "empty": "", "sp": "a b&"}
    assert data["multi"] == ["one", "two"] and data["first"] == "one" and data["has"]
    assert data["remote"] == ["127.0.0.1", port]
    assert (data["scheme"], data["version"], data["keep_alive"]) == ("http", "1.1", True)
    assert reply.header("content-type") == "application/json"


def test_version_and_keep_alive_of_http_1_0() -> None:
    with serve(describe) as site, site.client() as client:
        client.send(raw_request("/v", version="1.0"))
        data = json.loads(client.reply(version="1.0").body)
    assert (data["version"], data["keep_alive"]) == ("1.0", False)


def test_https_scheme(tmp_path_factory: pytest.TempPathFactory) -> None:
    cert, key = cert_files(tmp_path_factory)
    with serve(describe, certfile=cert, keyfile=key) as site:
        assert site.url.startswith("https://")
        conn = http.client.HTTPSConnection(
            "127.0.0.1", site.port, timeout=5, context=client_ssl_context(cert)
        )
        try:
            conn.request("GET", "/tls?x=1")
            data = json.loads(conn.getresponse().read())
        finally:
            conn.close()
    assert (data["scheme"], data["query"]) == ("https", {"x": "1"})


def test_plain_http_on_a_tls_port_gets_a_400_saying_so(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """As nginx does: a plain request to an HTTPS port is answered (in clear) rather than
    reset without a word; the port goes on serving TLS."""
    cert, key = cert_files(tmp_path_factory)
    with serve(describe, certfile=cert, keyfile=key) as site:
        with site.client() as client:  # h11 parses the answer: a valid HTTP response
            client.send(raw_request("/page?x=1", "User-Agent: test"))
            reply = client.reply()
            assert (reply.status, reply.closes) == (400, True)
            assert reply.header("content-type") == "text/plain; charset=utf-8"
            assert "expects TLS" in reply.text and "https://" in reply.text
            assert client.closed()
        result = curl(
            "--output",
            "-",
            "--write-out",
            "\n%{http_code}",
            site.url.replace("https:", "http:") + "/",
        )
        assert result.stdout.endswith(b"\n400"), result
        assert b"This port expects TLS" in result.stdout
        conn = http.client.HTTPSConnection(
            "127.0.0.1", site.port, timeout=5, context=client_ssl_context(cert)
        )
        try:
            conn.request("GET", "/after")
            assert conn.getresponse().status == 200
        finally:
            conn.close()


def test_bytes_that_are_neither_tls_nor_http_on_a_tls_port_are_not_answered(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    cert, key = cert_files(tmp_path_factory)
    with serve(describe, certfile=cert, keyfile=key, check_errors=False) as site:
        for garbage in (b"\x00\x01\x02 not a request\r\n\r\n", b"get / http/1.1\r\n\r\n"):
            with site.client() as client:
                client.send(garbage)
                assert client.read_all() == b""  # closed (or reset) without an answer


def test_json_body() -> None:
    def parse(request: Request, response: Response) -> Any:
        return {"got": request.json()}

    with serve(parse) as site, site.client() as client:
        ok = client.request(
            "POST", "/", [("Content-Type", "application/json")], json.dumps([1, "\u00e9"]).encode()
        )
        bad = client.request("POST", "/", [("Content-Type", "application/json")], b"{nope")
        again = client.request("POST", "/", body=b"null")  # a 400 keeps the connection
    assert json.loads(ok.body) == {"got": [1, "\u00e9"]}
    assert bad.status == 400 and b"not valid JSON" in bad.body
    assert json.loads(again.body) == {"got": None}


def test_urlencoded_form_with_urllib() -> None:
    def form(request: Request, response: Response) -> Any:
        return request.form

    with serve(form) as site:
        data = urllib.parse.urlencode([("name", "Zo\u00e9 & co"), ("tag", "a"), ("tag", "b")])
        with urllib.request.urlopen(site.url + "/", data=data.encode(), timeout=5) as response:
            assert json.loads(response.read()) == {"name": "Zo\u00e9 & co", "tag": ["a", "b"]}


def multipart(boundary: str, parts: list[tuple[str, str | None, str | None, bytes]]) -> bytes:
    """A multipart/form-data body: (name, filename, content type, data) per part."""
    out = b""
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if content_type is not None:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def upload_summary(request: Request, response: Response) -> Any:
    summary: dict[str, Any] = {}
    for name, value in request.form.items():
        if isinstance(value, str):
            summary[name] = value
        else:
            summary[name] = [
                value.filename,
                value.content_type,
                hashlib.sha256(value.data).hexdigest(),
            ]
    return summary


def test_multipart_form_built_by_hand() -> None:
    data = payload(3000) + b"\r\n--not-the-boundary\r\n"
    boundary = "b0undary42"
    body = multipart(
        boundary,
        [
            ("title", None, None, "caf\u00e9".encode()),
            ("file", "data.bin", "application/octet-stream", data),
        ],
    )
    with serve(upload_summary) as site, site.client() as client:
        reply = client.request(
            "POST", "/", [("Content-Type", f"multipart/form-data; boundary={boundary}")], body
        )
    assert json.loads(reply.body) == {
        "title": "caf\u00e9",
        "file": ["data.bin", "application/octet-stream", hashlib.sha256(data).hexdigest()],
    }


def test_multipart_form_from_curl(tmp_path: Path) -> None:
    data = payload(5000, seed=3)
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    with serve(upload_summary) as site:
        result = curl("-F", "who=curl", "-F", f"doc=@{path};type=text/plain", site.url + "/")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "who": "curl",
        "doc": ["notes.txt", "text/plain", hashlib.sha256(data).hexdigest()],
    }


def test_cookies_in_and_out() -> None:
    def cookies(request: Request, response: Response) -> Any:
        response.set_cookie("session", "abc123", path="/", httponly=True, max_age=60)
        response.set_cookie("theme", "dark")
        return request.cookies

    with serve(cookies) as site, site.client() as client:
        reply = client.request(headers=[("Cookie", "a=1; b=two"), ("Cookie", "c=3")])
    assert json.loads(reply.body) == {"a": "1", "b": "two", "c": "3"}
    set_cookies = reply.all("set-cookie")
    assert len(set_cookies) == 2
    jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    for text in set_cookies:
        jar.load(text)
    assert jar["session"].value == "abc123" and jar["theme"].value == "dark"
    assert jar["session"]["path"] == "/" and jar["session"]["httponly"]
    assert jar["session"]["max-age"] == "60"


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_large_body_is_streamed_to_an_async_handler(framing: str) -> None:
    data = payload(600 * KiB)
    seen: dict[str, Any] = {}

    async def digest(request: Request, response: Response) -> str:
        seen[request.method] = (request.body, request.stream is not None)
        if request.stream is None:
            return "not streamed"
        sha = hashlib.sha256()
        size = 0
        async for chunk in request.stream:
            sha.update(chunk)
            size += len(chunk)
        return f"{size} {sha.hexdigest()}"

    limits = HTTPLimits(max_buffered_body=16 * KiB)
    with serve(digest, limits=limits) as site:
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
        try:
            if framing == "length":
                conn.request("POST", "/", body=data)
            else:
                pieces = (data[i : i + 8 * KiB] for i in range(0, len(data), 8 * KiB))
                conn.request("POST", "/", body=pieces, encode_chunked=True)
            response = conn.getresponse()
            assert response.read().decode() == f"{len(data)} {hashlib.sha256(data).hexdigest()}"
            conn.request("GET", "/")  # the connection is still in sync
            assert conn.getresponse().read() == b"not streamed"
        finally:
            conn.close()
    assert seen == {"POST": (b"", True), "GET": (b"", False)}


def test_answer_before_reading_a_streamed_body_says_connection_close() -> None:
    """The rest of the body will not be read, so the connection cannot be reused: the
    response says so in its head, then the server closes."""

    def refuse(request: Request, response: Response) -> Response:
        return Response("no thanks", 403)

    with serve(refuse, limits=HTTPLimits(max_buffered_body=16 * KiB)) as site, site.client() as c:
        c.send(raw_request("/", "Content-Length: 1000000", method="POST") + b"x" * 32 * KiB)
        reply = c.reply()
        assert (reply.status, reply.text) == (403, "no thanks")
        assert reply.header("connection") == "close"
        assert c.closed()


def test_small_body_is_buffered() -> None:
    seen: list[Any] = []

    def check(request: Request, response: Response) -> bytes:
        seen.append(request.stream)
        return request.body

    with serve(check, limits=HTTPLimits(max_buffered_body=16 * KiB)) as site, site.client() as c:
        assert c.request("POST", "/", body=b"x" * (16 * KiB)).body == b"x" * (16 * KiB)
    assert seen == [None]


# ----------------------------------------------------------- Response API
def test_body_types() -> None:
    def body(request: Request, response: Response) -> Any:
        kind = request.path.strip("/")
        return {
            "str": "caf\u00e9",
            "bytes": b"\xff\x00",
            "dict": {"k": "v", "n": [1, 2]},
            "list": [{"a": 1}, 2],
            "response": Response("made", 201, {"X-A": "1"}, content_type="text/plain"),
            "typed": Response(b"{}", content_type="application/problem+json"),
        }[kind]

    with serve(body) as site, site.client() as client:
        replies = {
            k: client.request(target=f"/{k}")
            for k in ("str", "bytes", "dict", "list", "response", "typed")
        }
    assert replies["str"].body == "caf\u00e9".encode()
    assert replies["str"].header("content-type") == "text/html; charset=utf-8"
    assert replies["bytes"].body == b"\xff\x00"
    assert json.loads(replies["dict"].body) == {"k": "v", "n": [1, 2]}
    assert replies["dict"].header("content-type") == "application/json"
    assert json.loads(replies["list"].body) == [{"a": 1}, 2]
    made = replies["response"]
    assert (made.status, made.body, made.header("x-a")) == (201, b"made", "1")
    assert made.header("content-type") == "text/plain"
    assert replies["typed"].header("content-type") == "application/problem+json"
    for reply in replies.values():
        assert reply.header("content-length") == str(len(reply.body))


def test_response_json_helper_and_status() -> None:
    def created(request: Request, response: Response) -> Response:
        return response.json({"id": 7}, status=201)

    with serve(created) as site:
        reply = get(site.port)
    assert (reply.status, json.loads(reply.body)) == (201, {"id": 7})
    assert reply.header("content-type") == "application/json"


def test_handler_returning_nothing_is_404() -> None:
    with serve(lambda request, response: None) as site:
        assert get(site.port).status == 404


def stall_probe(site: Site, pulled: Gauge, total: int, bound: int) -> tuple[int, bytes]:
    """Let the server fill what it may while we do not read, then read everything.

    Returns how many chunks had been produced at the stall, and the whole body.
    """
    with Client(site.port, rcvbuf=32 * KiB) as client:
        client.send(raw_request("/"))
        pulled.wait(lambda g: g.total >= 4)  # it started
        # The client reads nothing: the server must stop producing well before the end,
        # and wait (idle: nothing to do until the socket drains) instead of going on.
        site.vt.settle()
        stalled = pulled.total
        reply = client.reply()
    assert pulled.total == total  # and it resumed once we read
    return stalled, reply.body


CHUNK = 16 * KiB
CHUNKS = 1024  # 16 MiB in all
BOUND = 48  # 768 KiB: kernel buffers (~256 KiB) + high water mark (64 KiB) + slack


def chunk(n: int) -> bytes:
    return n.to_bytes(4, "big") * (CHUNK // 4)


EXPECTED = hashlib.sha256(b"".join(chunk(n) for n in range(CHUNKS))).hexdigest()


def test_iterator_body_obeys_backpressure() -> None:
    pulled = Gauge()

    def chunks() -> Iterator[bytes]:
        for n in range(CHUNKS):
            pulled.enter()
            yield chunk(n)

    def stream(request: Request, response: Response) -> Response:
        response.body = chunks()
        return response

    listener = small_buffer_listener()
    with serve(
        stream, sock=listener, high_water=64 * KiB, low_water=16 * KiB, virtual=True
    ) as site:
        stalled, body = stall_probe(site, pulled, CHUNKS, BOUND)
    assert 4 <= stalled <= BOUND
    assert hashlib.sha256(body).hexdigest() == EXPECTED


def test_write_and_flush_obey_backpressure() -> None:
    written = Gauge()

    async def stream(request: Request, response: Response) -> None:
        response.headers["Content-Type"] = "application/octet-stream"
        for n in range(CHUNKS):
            written.enter()
            response.write(chunk(n))
            await response.flush()

    listener = small_buffer_listener()
    with serve(
        stream, sock=listener, high_water=64 * KiB, low_water=16 * KiB, virtual=True
    ) as site:
        stalled, body = stall_probe(site, written, CHUNKS, BOUND)
    assert 4 <= stalled <= BOUND
    assert hashlib.sha256(body).hexdigest() == EXPECTED


def test_write_flush_finish_from_an_async_handler() -> None:
    async def stream(request: Request, response: Response) -> None:
        if request.path == "/sized":
            response.headers["Content-Length"] = "10"
        response.write("hello")
        await response.flush()
        await sleep(0.01)
        response.write(b" you")
        await response.flush()
        response.write("!")
        response.finish()
        response.finish()  # idempotent

    with serve(stream, virtual=True) as site, site.client() as client:
        replies = []
        for target in ("/chunked", "/sized", "/again"):
            client.send(raw_request(target))
            asleep_until = site.vt.now + 0.01
            site.vt.wait_timer(asleep_until)
            assert client.sock.recv(1, socket.MSG_PEEK)  # "hello" was flushed before the sleep
            site.vt.advance(0.01)
            replies.append(client.reply())
        chunked, sized, again = replies
        assert again.body == b"hello you!"
    assert chunked.chunked and chunked.body == b"hello you!"
    assert not sized.chunked and sized.header("content-length") == "10"
    assert sized.body == b"hello you!"


def test_streaming_response_finished_later_by_another_event() -> None:
    """``streaming = True``: the handler returns and the response stays open."""
    held: list[Response] = []

    def start(request: Request, response: Response) -> None:
        response.streaming = True
        response.write("started; ")
        held.append(response)

    class Finisher(Component):
        channel = "web"

        @handler("finish_it")
        def _finish(self) -> None:
            held[0].write("finished")
            held[0].finish()

    with serve(start, Finisher()) as site, site.client() as client:
        client.send(raw_request("/"))
        assert b"started; " in client.read_raw(b"started; ")
        site.manager.fire(Event.create("finish_it"), "web")
        rest = client.read_raw(b"0\r\n\r\n")
        assert b"finished" in rest


def test_file_body_is_sent_whole(tmp_path: Path) -> None:
    data = payload(300 * KiB, seed=11)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)

    def send_file(request: Request, response: Response) -> Response:
        response.headers["Content-Type"] = "application/octet-stream"
        response.body = path.open("rb")
        return response

    with serve(send_file) as site:
        with urllib.request.urlopen(site.url + "/", timeout=5) as response:
            assert response.headers["Content-Length"] == str(len(data))
            assert response.read() == data
        with site.client() as client:
            head = client.request("HEAD", "/")
            assert (head.body, head.header("content-length")) == (b"", str(len(data)))
            assert client.request().body == data


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("error", "status", "field"),
    [
        (NotFound(), 404, None),
        (Forbidden(description="go away"), 403, None),
        (MethodNotAllowed(["POST", "GET"]), 405, ("allow", "GET, POST")),
        (Redirect("/elsewhere"), 303, ("location", "/elsewhere")),
        (Redirect("https://example.test/", 301), 301, ("location", "https://example.test/")),
        (HTTPError(418), 418, None),
        (HTTPError(503, headers=[("Retry-After", "5")]), 503, ("retry-after", "5")),
    ],
)
def test_http_errors(error: HTTPError, status: int, field: tuple[str, str] | None) -> None:
    def fail(request: Request, response: Response) -> None:
        if request.path == "/fail":
            raise error

    with serve(fail) as site, site.client() as client:
        reply = client.request(target="/fail")
        assert reply.status == status
        assert reply.reason == error.reason
        if field is not None:
            assert reply.header(field[0]) == field[1]
        assert error.description.encode() in reply.body
        assert client.request(target="/fine").status == 404  # the connection goes on
        assert site.recorder.errors == []  # an HTTPError is an answer, not a failure


def test_raising_handler_gives_500_without_traceback() -> None:
    def broken(request: Request, response: Response) -> str:
        return str(1 // 0)

    with serve(broken, check_errors=False) as site, site.client() as client:
        reply = client.request()
        site.recorder.wait_for("exception")
        errors = site.recorder.errors
    assert reply.status == 500
    assert b"Traceback" not in reply.body and b"ZeroDivisionError" not in reply.body
    assert len(errors) == 1 and errors[0].args[0] is ZeroDivisionError


def test_expose_tracebacks() -> None:
    def broken(request: Request, response: Response) -> str:
        raise KeyError("secret-detail")

    with serve(broken, expose_tracebacks=True, check_errors=False) as site:
        reply = get(site.port)
        site.recorder.wait_for("exception")
    assert reply.status == 500
    assert b"Traceback" in reply.body and b"secret-detail" in reply.body


def test_raising_async_handler_after_await() -> None:
    async def broken(request: Request, response: Response) -> str:
        await sleep(0)
        raise RuntimeError("late failure")

    with serve(broken, check_errors=False) as site:
        reply = get(site.port)
        site.recorder.wait_for("exception")
    assert reply.status == 500 and b"late failure" not in reply.body


INJECT = "ok\r\nInjected: yes"


def set_header(response: Response) -> Any:
    response.headers["X-Evil"] = INJECT
    return "x"


def add_header(response: Response) -> Any:
    response.headers.add("X-Evil", "ok\nInjected: yes")
    return "x"


def build_response(response: Response) -> Any:
    return Response("x", headers=[("X-Evil", INJECT)])


def cookie_attribute(response: Response) -> Any:
    response.set_cookie("c", "v", path="/\r\nInjected: yes")
    return "x"


def bad_name(response: Response) -> Any:
    response.headers["Injected: yes\r\nX"] = "1"
    return "x"


def reason_phrase(response: Response) -> Any:
    response.reason = INJECT
    return "x"


@pytest.mark.parametrize(
    "inject",
    [set_header, add_header, build_response, cookie_attribute, bad_name, reason_phrase],
)
def test_response_fields_with_cr_or_lf_are_refused(inject: Any) -> None:
    with serve(lambda request, response: inject(response), check_errors=False) as site:
        with site.client() as client:
            client.send(raw_request("/", "Connection: close"))
            raw = client.read_all()
        site.recorder.wait_for("exception")
        errors = site.recorder.errors
    assert raw.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"Injected" not in raw
    assert len(errors) == 1 and errors[0].args[0] is ValueError


def test_cookie_value_with_crlf_is_quoted_not_injected() -> None:
    def cookie(request: Request, response: Response) -> str:
        response.set_cookie("c", INJECT)
        return "x"

    with serve(cookie, check_errors=False) as site, site.client() as client:
        client.send(raw_request("/", "Connection: close"))
        raw = client.read_all()
    assert b"\r\nInjected" not in raw and b"\nInjected" not in raw


# ------------------------------------------------------------- access log
def test_access_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="netcomp.web.access")
    with serve(hello) as site, site.client() as client:
        client.request(
            target="/log?q=1",
            headers=[
                ("Referer", "http://ref.test/"),
                ("User-Agent", 'ua\t"quoted"\\ \xe9'.encode("latin-1")),
            ],
        )
        client.request("HEAD", "/head")
        client.send(b"GET /bad\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.reply().status == 400
    lines = [r.getMessage() for r in caplog.records if r.name == "netcomp.web.access"]
    assert len(lines) == 3
    stamp = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"
    assert re.fullmatch(
        rf'127\.0\.0\.1 - - {stamp} "GET /log\?q=1 HTTP/1\.1" 200 12 '
        r'"http://ref\.test/" "ua\\x09\\"quoted\\"\\\\ \xe9"',
        lines[0],
    ), lines[0]
    assert re.fullmatch(
        rf'127\.0\.0\.1 - - {stamp} "HEAD /head HTTP/1\.1" 200 - "-" "-"', lines[1]
    )
    assert re.fullmatch(rf'127\.0\.0\.1 - - {stamp} "-" 400 \d+ "-" "-"', lines[2]), lines[2]
    assert all(not any(ord(c) < 32 for c in line) for line in lines)


# ------------------------------------------------------- broken streams
def test_handler_failing_after_the_head_cuts_the_connection() -> None:
    """Too late for a 500: the body is cut short so the client cannot take it as whole."""

    async def half(request: Request, response: Response) -> None:
        response.write("partial")
        await response.flush()
        raise RuntimeError("half way")

    with serve(half, check_errors=False) as site, site.client() as client:
        client.send(raw_request("/"))
        with pytest.raises(h11.RemoteProtocolError):
            client.reply()
        site.recorder.wait_for("exception")
        assert [e.args[0] for e in site.recorder.errors] == [RuntimeError]


def test_iterator_failing_mid_body_cuts_the_connection() -> None:
    def parts() -> Iterator[bytes]:
        yield b"first "
        raise ValueError("broken source")

    def answer(request: Request, response: Response) -> Any:
        return Response(parts()) if request.path == "/broken" else "fine"

    with serve(answer, check_errors=False) as site:
        with site.client() as client:
            client.send(raw_request("/broken"))
            with pytest.raises(h11.RemoteProtocolError):
                client.reply()
        site.recorder.wait_for("exception")
        assert [e.args[0] for e in site.recorder.errors] == [ValueError]
        assert get(site.port).text == "fine"  # the server goes on


def test_client_leaving_mid_stream_is_not_a_handler_failure() -> None:
    outcome: list[str] = []

    async def forever(request: Request, response: Response) -> None:
        try:
            for _ in range(100_000):
                response.write(b"x" * 65536)
                await response.flush()
        except ConnectionError:
            outcome.append("gone")

    with serve(forever, check_errors=False) as site:
        with site.client() as client:
            client.send(raw_request("/"))
            client.read_raw(b"xxxx")
        # The handler ends one way or the other: its request event completes.
        site.recorder.wait_for("request")
        errors = site.recorder.errors
    assert errors == [] and outcome == ["gone"]


def test_response_close_on_a_pipelined_request_drops_the_rest() -> None:
    def first_closes(request: Request, response: Response) -> str:
        response.close = request.path == "/1"
        return request.path

    with serve(first_closes) as site, site.client() as client:
        client.send(raw_request("/1") + raw_request("/2") + raw_request("/3"))
        reply = client.reply()
        assert (reply.text, reply.closes) == ("/1", True)
        assert client.closed()


def test_absolute_form_target() -> None:
    def where(request: Request, response: Response) -> Any:
        return {"path": request.path, "query": request.query}

    with serve(where) as site, site.client() as client:
        client.send(b"GET http://example.test/p/q?x=1 HTTP/1.1\r\nHost: example.test\r\n\r\n")
        data = json.loads(client.reply().body)
    assert data == {"path": "/p/q", "query": {"x": "1"}}


def test_date_field_is_the_current_imf_fixdate_line() -> None:
    from netcomp.web._headers import date_field, http_date

    before = time.time()
    line = date_field()
    after = time.time()
    assert line == f"Date: {http_date()}\r\n" or int(after) != int(before)
    assert line.startswith("Date: ") and line.endswith(" GMT\r\n")
    when = parsedate_to_datetime(line[6:-2]).timestamp()
    assert int(before) <= when <= after


def test_a_checked_field_value_is_remembered_only_when_valid() -> None:
    first, second = Response(), Response()
    first.headers["X-Same"] = "fine"
    second.headers["X-Same"] = "fine"  # (from the cache of checked fields)
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        second.headers["X-Same"] = "fine\r\nInjected: yes"
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        Response().headers.add("X-Same", "fine\r\nInjected: yes")
    assert second.headers.get_all("x-same") == []  # replaced: removed, then refused


# ------------------------------------------- heads remembered by their fields
def test_a_remembered_head_says_what_its_fields_say_every_time() -> None:
    # Heads with a known length are put together from parts made once per combination of
    # status, fields and framing: each answer must still be what its fields say.
    def answer(request: Any, response: Any) -> str:
        response.headers["X-Kind"] = "same"
        if request.path == "/close":
            response.headers["Connection"] = "close"
        if request.path == "/dated":
            response.headers["Date"] = "Sat, 01 Jan 2000 00:00:00 GMT"
        return "ok" if request.path != "/longer" else "a longer body"

    with serve(answer) as site:
        for _ in range(3):  # the first makes the parts, the others use them
            with site.client() as client:
                client.send(b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n")
                data = client.read_all()  # and the connection closes every time
            head, _, body = data.partition(b"\r\n\r\n")
            assert body == b"ok"
            lines = head.split(b"\r\n")
            assert lines[:3] == [
                b"HTTP/1.1 200 OK",
                b"X-Kind: same",
                b"Content-Type: text/html; charset=utf-8",
            ]  # (the Connection field is the server's to write: once, below)
            assert re.fullmatch(rb"Date: \w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT", lines[3])
            assert lines[4:] == [b"Server: netcomp", b"Content-Length: 2", b"Connection: close"]
        with site.client() as client:
            replies = [client.request(target=t) for t in ("/", "/", "/longer", "/", "/dated")]
        for reply in replies:
            assert reply.status == 200 and reply.header("x-kind") == "same"
            assert reply.header("content-length") == str(len(reply.body))
            assert reply.header("server") == "netcomp"
            assert reply.header("connection") is None
        assert [r.text for r in replies] == ["ok", "ok", "a longer body", "ok", "ok"]
        assert replies[-1].header("date") == "Sat, 01 Jan 2000 00:00:00 GMT"
        assert all(parsedate_to_datetime(r.header("date")) for r in replies[:-1])
        with site.client() as client:  # HTTP/1.0 keep-alive: parts of its own
            client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2)
            data = client.read_raw(b"Connection: keep-alive\r\n\r\nok")
            if data.count(b"Connection: keep-alive") < 2:
                data += client.read_raw(b"Connection: keep-alive\r\n\r\nok")
        assert data.count(b"Content-Length: 2\r\nConnection: keep-alive\r\n\r\nok") == 2


@pytest.mark.parametrize("tls", [False, True])
def test_pipelined_requests_past_max_pipelined_are_all_answered(
    tls: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The link stops reading while max_pipelined requests wait, and reads on once they
    # are answered: over TLS, resuming hands over decrypted bytes read ahead at once.
    options: dict[str, Any] = {}
    if tls:
        cert, key = cert_files(tmp_path_factory)
        options = {"certfile": cert, "keyfile": key}
    count = 200
    with serve(
        lambda request, response: f"n{request.path[1:]}.",
        limits=HTTPLimits(max_pipelined=1),
        **options,
    ) as site:
        sock = socket.create_connection(("127.0.0.1", site.port), timeout=10)
        if tls:
            sock = client_ssl_context(cert).wrap_socket(sock, server_hostname="127.0.0.1")
        with sock:
            sock.sendall(
                b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(count))
            )
            data = b""
            deadline = time.monotonic() + 10
            while b"n%d." % (count - 1) not in data and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    assert [int(n) for n in re.findall(rb"\bn(\d+)\.", data)] == list(range(count))
