"""gzip with real clients (curl ``--compressed``, http.client) and the response-filter
extension point it stands on, circuits.web's ``response`` event included."""

from __future__ import annotations

import gzip as stdlib_gzip
import io
import zlib
from pathlib import Path
from typing import Any

import pytest

from _web_support import curl, get, serve
from netcomp import Component, Future, handler
from netcomp.web import Controller, Gzip, Response, Static
from netcomp.web.tools import gzip
from netcomp.web.utils import compress

TEXT = ("netcomp " * 1000).encode()
ACCEPT = [("Accept-Encoding", "gzip")]


class Root(Controller):
    def index(self) -> bytes:
        self.response.headers["Content-Type"] = "text/plain"
        return TEXT

    def small(self) -> str:
        return "tiny"

    def data(self) -> Any:
        return {"words": ["netcomp"] * 500}

    def image(self) -> Response:
        return Response(TEXT, content_type="image/png")

    def stream(self) -> Any:
        self.response.headers["Content-Type"] = "text/plain"
        return iter([TEXT[:3000], TEXT[3000:]])

    def by_hand(self) -> Any:
        self.response.headers["Content-Type"] = "text/plain"
        yield TEXT[:4000]
        yield TEXT[4000:]

    def tagged(self) -> Response:
        return Response(TEXT, headers=[("ETag", '"v1"'), ("Content-Type", "text/plain")])

    def transform(self) -> Response:
        return Response(
            TEXT, headers=[("Cache-Control", "no-transform")], content_type="text/plain"
        )


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    (tmp_path / "big.txt").write_bytes(TEXT * 20)
    (tmp_path / "archive.gz").write_bytes(stdlib_gzip.compress(TEXT))
    return tmp_path


def gunzip(data: bytes) -> bytes:
    return stdlib_gzip.decompress(data)


def test_curl_compressed(docroot: Path) -> None:
    with serve(Root(), Gzip(), Static(docroot, "/static"), dispatcher=True) as site:
        for path, expected in (("/", TEXT), ("/static/big.txt", TEXT * 20), ("/stream", TEXT)):
            done = curl("--compressed", "-D", "-", site.url + path)
            head, _, body = done.stdout.partition(b"\r\n\r\n")
            assert b"content-encoding: gzip" in head.lower()
            assert body == expected
        by_hand = curl("--compressed", site.url + "/by_hand")
        assert by_hand.stdout == TEXT


def test_negotiation_and_what_is_not_compressed() -> None:
    with serve(Root(), Gzip(), dispatcher=True) as site:
        plain = get(site.port, "/")
        assert plain.header("content-encoding") is None and plain.body == TEXT
        assert plain.header("vary") == "Accept-Encoding"  # compressible: caches keep apart
        packed = get(site.port, "/", headers=ACCEPT)
        assert packed.header("content-encoding") == "gzip"
        assert int(packed.header("content-length") or 0) == len(packed.body) < len(TEXT)
        assert gunzip(packed.body) == TEXT
        for refused in ("gzip;q=0", "identity", "br", "*;q=0"):
            reply = get(site.port, "/", headers=[("Accept-Encoding", refused)])
            assert reply.header("content-encoding") is None
        assert (
            get(site.port, "/", headers=[("Accept-Encoding", "*")]).header("content-encoding")
            == "gzip"
        )
        small = get(site.port, "/small", headers=ACCEPT)
        assert small.header("content-encoding") is None and small.body == b"tiny"
        image = get(site.port, "/image", headers=ACCEPT)
        assert image.header("content-encoding") is None and image.header("vary") is None
        assert get(site.port, "/transform", headers=ACCEPT).header("content-encoding") is None
        head = get(site.port, "/", headers=ACCEPT, method="HEAD")
        assert head.header("content-encoding") is None


def test_json_streams_and_etags() -> None:
    with serve(Root(), Gzip(), dispatcher=True) as site:
        data = get(site.port, "/data", headers=ACCEPT)
        assert data.header("content-encoding") == "gzip"
        assert b'"words"' in gunzip(data.body)
        streamed = get(site.port, "/stream", headers=ACCEPT)
        assert streamed.chunked and gunzip(streamed.body) == TEXT
        hand = get(site.port, "/by_hand", headers=ACCEPT)
        assert hand.chunked and gunzip(hand.body) == TEXT
        tagged = get(site.port, "/tagged", headers=ACCEPT)
        assert tagged.header("etag") == 'W/"v1"'
        assert get(site.port, "/tagged").header("etag") == '"v1"'


def test_static_files_compress_streamed_and_archives_do_not(docroot: Path) -> None:
    with serve(Static(docroot), Gzip(min_size=0)) as site:
        big = get(site.port, "/big.txt", headers=ACCEPT)
        assert big.chunked and big.header("content-length") is None
        assert gunzip(big.body) == TEXT * 20
        assert big.header(
            "etag",
        ).startswith('W/"')  # type: ignore[union-attr]
        ranged = get(site.port, "/big.txt", headers=[*ACCEPT, ("Range", "bytes=0-9")])
        assert ranged.status == 206 and ranged.header("content-encoding") is None
        archive = get(site.port, "/archive.gz", headers=ACCEPT)
        assert archive.header("content-encoding") is None
        assert archive.body == (docroot / "archive.gz").read_bytes()


def test_gzip_options_are_checked() -> None:
    with pytest.raises(ValueError):
        Gzip(level=0)
    with pytest.raises(ValueError):
        Gzip(min_size=-1)


def test_unregistered_gzip_stops_filtering() -> None:
    squeeze = Gzip()
    with serve(Root(), squeeze, dispatcher=True) as site:
        assert get(site.port, "/", headers=ACCEPT).header("content-encoding") == "gzip"
        squeeze.unregister()
        site.recorder.wait_for("unregistered")
        assert site.server.response_filters == []
        assert get(site.port, "/", headers=ACCEPT).header("content-encoding") is None


# -------------------------------------------------------- circuits' tools
def test_compress_util_and_tool() -> None:
    assert zlib.decompress(b"".join(compress(io.BytesIO(TEXT), 1)), 47) == TEXT
    assert stdlib_gzip.decompress(b"".join(compress(["a", b"b"], 9))) == b"ab"

    class Tool(Component):
        channel = "web"

        @handler("response", priority=1.0)
        def _on_response(self, event: Any, *args: Any) -> None:
            event[0] = gzip(event[0])

    with serve(Root(), Tool(), dispatcher=True) as site:
        reply = get(site.port, "/small", headers=ACCEPT)  # the tool has no min_size
        assert reply.header("content-encoding") == "gzip" and gunzip(reply.body) == b"tiny"


# --------------------------------------------------------- response filters
def test_filters_run_in_order_may_replace_and_wait() -> None:
    seen: list[str] = []
    later = Future()

    def first(response: Response, by_hand: bool) -> None:
        seen.append(f"first {by_hand}")
        response.headers["X-First"] = "1"

    def replace(response: Response, by_hand: bool) -> Any:
        seen.append("replace")
        if response.request.path == "/small":
            return Response("replaced", headers=[("X-First", response.headers["X-First"])])
        return None

    def wait(response: Response, by_hand: bool) -> Any:
        seen.append("wait")
        if response.request.path == "/data":
            site.manager.loop.call_soon_threadsafe(lambda: later.set_result(Response("waited")))
            return later
        return None

    with serve(Root(), dispatcher=True) as site:
        site.server.response_filters.extend([first, replace, wait])
        reply = get(site.port, "/small")
        assert (reply.body, reply.header("x-first")) == (b"replaced", "1")
        assert get(site.port, "/data").body == b"waited"
        assert get(site.port, "/by_hand").body == TEXT
        assert "first True" in seen  # by hand: the filters ran at the first write
        assert seen[:3] == ["first False", "replace", "wait"]


def test_a_failing_filter_is_a_500_and_is_reported() -> None:
    def broken(response: Response, by_hand: bool) -> None:
        raise RuntimeError("filter bug")

    with serve(Root(), dispatcher=True, check_errors=False) as site:
        site.server.response_filters.append(broken)
        assert get(site.port, "/small").status == 500
        site.recorder.wait_for("exception")


def test_circuits_response_event_only_while_someone_listens() -> None:
    class Stamp(Component):
        channel = "web"

        def response(self, response: Response) -> None:
            response.headers["X-Stamped"] = "yes"

    stamp = Stamp()
    with serve(Root(), stamp, dispatcher=True) as site:
        assert get(site.port, "/small").header("x-stamped") == "yes"
        stamp.unregister()
        site.recorder.wait_for("unregistered")
        assert site.server.response_filters == []  # nobody listens: nothing per request
        assert get(site.port, "/small").header("x-stamped") is None
