"""circuits.web's tools and utils written for netcomp, the request/response attributes
circuits.web code reads, virtual hosts, byte ranges and dot segments, over real sockets
(http.client, curl, h11)."""

from __future__ import annotations

import email.parser
import email.policy
import http.client
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from _web_support import curl, get, serve
from netcomp.web import Controller, Static, VirtualHosts
from netcomp.web.exceptions import RangeUnsatisfiable
from netcomp.web.tools import expires, serve_file, validate_etags, validate_since
from netcomp.web.utils import get_ranges, is_unix_socket, parse_qs

BODY = bytes(range(256)) * 8  # 2 KiB


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "data.bin").write_bytes(BODY)
    (tmp_path / "page.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    return tmp_path


def make_root(files: Path) -> Controller:
    class Root(Controller):
        def index(self) -> str:
            self.expires(60)
            return "cached"

        def never(self) -> str:
            self.expires(0)
            return "fresh"

        def file(self) -> Any:
            self.response.headers["X-Kept"] = "yes"
            return self.serve_file(files / "data.bin")

        def download(self) -> Any:
            return self.serve_download(str(files / "page.txt"), name='rép"ort.txt')

        def missing(self) -> Any:
            return self.serve_file(files / "nope")

        def folder(self) -> Any:
            return self.serve_file(files / "sub")

        def relative(self) -> Any:
            return self.serve_file("data.bin")

        def body(self) -> bytes:
            first = self.request.body.read(3)
            rest = self.request.body.read()
            self.request.body.seek(0)
            return first + b"|" + rest + b"|" + self.request.body.readline()

        def cookies(self) -> str:
            seen = self.cookie.get("seen")
            self.cookie["seen"] = "yes"
            return seen.value if seen is not None else "first"

        def about(self, **query: str) -> str:
            request = self.request
            return f"{request.protocol} {request.qs} {self.uri}"

    return Root()


def test_expires() -> None:
    with serve(make_root(Path("/")), dispatcher=True) as site:
        cached = get(site.port, "/")
        when = parsedate_to_datetime(cached.header("expires") or "").timestamp()
        assert 50 < when - time.time() < 70
        assert cached.header("cache-control") == "max-age=60"
        fresh = get(site.port, "/never")
        assert fresh.header("pragma") == "no-cache"
        assert fresh.header("cache-control") == "no-cache, must-revalidate"
        past = parsedate_to_datetime(fresh.header("expires") or "").timestamp()
        assert past < time.time() - 300 * 86400


def test_serve_file_and_download(files: Path) -> None:
    with serve(make_root(files), dispatcher=True, check_errors=False) as site:
        whole = get(site.port, "/file")
        assert whole.body == BODY and whole.header("x-kept") == "yes"
        assert whole.header("etag") and whole.header("accept-ranges") == "bytes"
        ranged = get(site.port, "/file", headers=[("Range", "bytes=10-19")])
        assert ranged.status == 206 and ranged.body == BODY[10:20]
        again = get(site.port, "/file", headers=[("If-None-Match", whole.header("etag") or "")])
        assert again.status == 304 and again.body == b""
        download = get(site.port, "/download")
        assert download.header("content-type") == "application/x-download"
        disposition = download.header("content-disposition") or ""
        assert disposition.startswith('attachment; filename="r_p\\"ort.txt"')
        assert "filename*=UTF-8''r%C3%A9p%22ort.txt" in disposition
        assert get(site.port, "/missing").status == 404
        assert get(site.port, "/folder").status == 404
        assert get(site.port, "/relative").status == 500  # a programming error: said so


def test_multipart_byteranges(files: Path) -> None:
    with serve(Static(files)) as site:
        connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
        connection.request("GET", "/data.bin", headers={"Range": "bytes=0-9,100-109,-5"})
        reply = connection.getresponse()
        data = reply.read()
        assert reply.status == 206
        kind = reply.getheader("Content-Type") or ""
        assert kind.startswith("multipart/byteranges; boundary=")
        assert int(reply.getheader("Content-Length") or 0) == len(data)
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {kind}\r\n\r\n".encode() + data
        )
        parts = list(message.iter_parts())
        assert [p.get_payload(decode=True) for p in parts] == [
            BODY[0:10],
            BODY[100:110],
            BODY[-5:],
        ]
        assert parts[2]["Content-Range"] == f"bytes {len(BODY) - 5}-{len(BODY) - 1}/{len(BODY)}"
        connection.close()
        overlapping = get(site.port, "/data.bin", headers=[("Range", "bytes=0-100,50-60")])
        assert overlapping.status == 416
        many = ",".join(f"{n * 10}-{n * 10 + 1}" for n in range(20))
        assert get(site.port, "/data.bin", headers=[("Range", f"bytes={many}")]).status == 200
        head = get(site.port, "/data.bin", headers=[("Range", "bytes=0-1,5-6")], method="HEAD")
        assert head.status == 200 and head.body == b""  # ranges apply to GET only


def test_circuits_utils(tmp_path: Path) -> None:
    assert get_ranges("bytes=3-6", 8) == [(3, 7)]
    assert get_ranges("bytes=2-4,-1", 8) == [(2, 5), (7, 8)]
    assert get_ranges("bytes=20-", 8) == []
    assert get_ranges(None, 8) is None and get_ranges("items=1-2", 8) is None
    with pytest.raises(RangeUnsatisfiable):
        get_ranges("bytes=0-5,3-7", 8)
    assert parse_qs("a=1&a=2&b=") == {"a": "1", "b": ""}
    assert parse_qs("10,20") == {"x": 10, "y": 20}
    assert not is_unix_socket(str(tmp_path))


def test_validators_tools() -> None:
    from netcomp.web import Request, Response

    request = Request("GET", "/", "1.1", [("If-None-Match", '"a"'), ("If-Modified-Since",
                      "Sun, 06 Nov 1994 08:49:37 GMT")])  # fmt: skip
    response = Response("x", headers=[("ETag", '"a"')])
    answer = validate_etags(request, response)
    assert answer is not None and answer.status == 304  # type: ignore[union-attr]
    stamped = Response("x", headers=[("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")])
    assert validate_since(request, stamped).status == 304  # type: ignore[union-attr]
    newer = Response("x", headers=[("Last-Modified", "Mon, 07 Nov 1994 08:49:37 GMT")])
    assert validate_since(request, newer) is None
    expires(request, newer, 10)
    assert "expires" not in newer.headers  # a validator is there: cacheable as it is
    with pytest.raises(ValueError):
        serve_file(request, Response(), "relative/path")


def test_request_attributes_circuits_reads(files: Path) -> None:
    with serve(make_root(files), dispatcher=True) as site:
        raw = ("-H", "Content-Type: application/octet-stream", "--data-binary", "abcdef\nxyz")
        echoed = curl(*raw, site.url + "/body").stdout
        assert echoed == b"abc|def\nxyz|abcdef\n"
        assert get(site.port, "/cookies").text == "first"
        reply = get(site.port, "/cookies", headers=[("Cookie", "seen=before")])
        assert reply.text == "before" and reply.all("set-cookie") == ["seen=yes"]
        about = get(site.port, "/about?x=1", headers=[("Host", "example.org")]).text
        assert about == "(1, 1) x=1 http://example.org/about?x=1"
        assert site.server.http.base == site.url and site.server.http.uri == site.url + "/"
        assert site.server.http.scheme == "http" and site.server.http.protocol == (1, 1)


def test_dot_segments_are_redirected_to_the_normal_path() -> None:
    with serve(make_root(Path("/")), dispatcher=True) as site:
        with site.client() as client:
            client.send(b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = client.reply()
            assert (reply.status, reply.header("location")) == (301, "/etc/passwd")
        with site.client() as client:
            client.send(b"GET /a/..//evil.example/?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.reply().header("location") == "/evil.example/?q=1"


def test_static_takes_circuits_arguments(files: Path) -> None:
    circuits_order = Static("/files", str(files), dirlisting=True)
    assert (circuits_order.prefix, circuits_order.docroot, circuits_order.listing) == (
        "/files",
        str(files),
        True,
    )
    keywords = Static(path="/x", docroot=files, defaults=["page.txt"])
    assert (keywords.prefix, keywords.index) == ("/x", ("page.txt",))
    assert Static(files, "/y").prefix == "/y"  # netcomp's order stays netcomp's
    with pytest.raises(ValueError):
        Static("/")  # the whole file system: refused
    with pytest.raises(ValueError):
        Static("/", "/")
    with pytest.raises(NotADirectoryError):
        Static(files / "missing")
    with serve(circuits_order) as site:
        assert b"data.bin" in get(site.port, "/files/").body


def test_virtual_hosts() -> None:
    class WWW(Controller):
        channel = "/www"

        def index(self) -> str:
            return "www"

    class Blog(Controller):
        channel = "/blog"

        def index(self, *args: str) -> str:
            return "blog " + "/".join(args)

    class Root(Controller):
        def index(self) -> str:
            return "default"

    hosts = VirtualHosts({"www.example.org": "/www", "*.blog.example.org": "/blog"})
    with serve(WWW(), Blog(), Root(), hosts, dispatcher=True) as site:

        def at(host: str, path: str = "/") -> str:
            return get(site.port, path, headers=[("Host", host)]).text

        assert at("www.example.org") == "www"
        assert at("WWW.Example.ORG:8080") == "www"
        assert at("ada.blog.example.org", "/2024/hello") == "blog 2024/hello"
        assert at("blog.example.org") == "default"  # the wildcard needs a subdomain
        assert at("other.example") == "default"
    assert VirtualHosts({}, default="/www").prefix("anything") == "/www"
