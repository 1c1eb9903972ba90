"""Static files over real sockets: headers, validators, ranges, traversal, listing, mounting.

Each test talks to a real Server on 127.0.0.1 with http.client (urllib for the large
download); the docroot and the secret outside it are made in tmp_path.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import random
import socket
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from _net_support import cert_files, client_ssl_context
from netcomp import Manager
from netcomp.testing import Recorder, running
from netcomp.web import Controller, Server, Static
from netcomp.web._bodies import FileSlice
from netcomp.web._ranges import parse_range

SECRET = b"TOP-SECRET-DO-NOT-SERVE"
HELLO = b"hello, static world\n"
BIG_SIZE = 5 * 1024 * 1024


@dataclass
class Site:
    port: int
    docroot: Path
    big_sha256: str
    recorder: Recorder


class Api(Controller):
    """A controller next to the static files."""

    channel = "/api"

    def index(self) -> str:
        return "api index"

    def echo(self, word: str) -> str:
        return f"echo {word}"


def make_docroot(tmp_path: Path) -> tuple[Path, str]:
    docroot = tmp_path / "www"
    docroot.mkdir()
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (docroot / "hello.txt").write_bytes(HELLO)
    (docroot / "page.html").write_text("<p>page</p>\n")
    (docroot / "style.css").write_text("p { color: red }\n")
    (docroot / "data.json").write_text('{"a": 1}\n')
    (docroot / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (docroot / "archive.tar.gz").write_bytes(b"\x1f\x8b" + b"\0" * 30)
    (docroot / "blob.zzqx").write_bytes(b"\0\1\2")
    (docroot / "empty.txt").write_bytes(b"")
    (docroot / "\u00e9t\u00e9.txt").write_bytes(b"summer\n")
    (docroot / "sub").mkdir()
    (docroot / "sub" / "index.html").write_text("<h1>sub index</h1>\n")
    (docroot / "sub" / "inner.txt").write_text("inner\n")
    listed = docroot / "listed"
    listed.mkdir()
    (listed / "<script>.txt").write_bytes(b"not a script\n")
    (listed / "a&b.txt").write_bytes(b"ampersand\n")
    (listed / "folder").mkdir()
    (listed / "out.txt").symlink_to(tmp_path / "secret.txt")
    # Symlinks: one staying inside the docroot, two pointing out of it.
    (docroot / "alias.txt").symlink_to(docroot / "hello.txt")
    (docroot / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (docroot / "escdir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(docroot / "pipe")
    data = random.Random(5).randbytes(BIG_SIZE)
    (docroot / "big.bin").write_bytes(data)
    return docroot, hashlib.sha256(data).hexdigest()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    docroot, digest = make_docroot(tmp_path)
    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    Static(docroot, prefix="/static").register(server)
    Static(docroot, prefix="/files", listing=True).register(server)
    Api().register(server)
    with running(manager) as recorder:
        yield Site(server.port, docroot, digest, recorder)


def fetch(
    port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


# ------------------------------------------------------------------ files
def test_file_with_validators_and_type(site: Site) -> None:
    status, headers, body = fetch(site.port, "/static/hello.txt")
    assert status == 200
    assert body == HELLO
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Length"] == str(len(HELLO))
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"].startswith('"') and headers["ETag"].endswith('"')
    mtime = int((site.docroot / "hello.txt").stat().st_mtime)
    assert headers["Last-Modified"] == formatdate(mtime, usegmt=True)
    assert "Transfer-Encoding" not in headers


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("page.html", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("data.json", "application/json; charset=utf-8"),
        ("image.png", "image/png"),
        ("archive.tar.gz", "application/gzip"),
        ("blob.zzqx", "application/octet-stream"),
    ],
)
def test_content_types(site: Site, name: str, content_type: str) -> None:
    status, headers, body = fetch(site.port, f"/static/{name}")
    assert status == 200
    assert headers["Content-Type"] == content_type
    assert "Content-Encoding" not in headers
    assert body == (site.docroot / name).read_bytes()


def test_head_has_the_fields_and_no_body(site: Site) -> None:
    status, headers, body = fetch(site.port, "/static/hello.txt", "HEAD")
    assert status == 200
    assert body == b""
    assert headers["Content-Length"] == str(len(HELLO))
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "ETag" in headers


def test_empty_file_and_utf8_name(site: Site) -> None:
    status, headers, body = fetch(site.port, "/static/empty.txt")
    assert (status, headers["Content-Length"], body) == (200, "0", b"")
    status, _, body = fetch(site.port, "/static/%C3%A9t%C3%A9.txt")
    assert (status, body) == (200, b"summer\n")


def test_five_mib_file_arrives_intact(site: Site) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{site.port}/static/big.bin", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Length"] == str(BIG_SIZE)
        digest = hashlib.sha256()
        for _ in range(BIG_SIZE // 65536 + 2):
            chunk = r.read(65536)
            if not chunk:
                break
            digest.update(chunk)
    assert digest.hexdigest() == site.big_sha256


def test_plain_tcp_sends_files_with_sendfile(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel copies file bodies (whole and ranged); the bytes are still right."""
    sent: list[int] = []
    counted = threading.Condition()
    real_sendfile = os.sendfile

    def counting_sendfile(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        done = real_sendfile(out_fd, in_fd, offset, count)
        with counted:
            sent.append(done)
            counted.notify_all()
        return done

    def sent_by_sendfile(total: int) -> bool:
        # The client may read the last bytes before the server thread records the call.
        with counted:
            return counted.wait_for(lambda: sum(sent) >= total, timeout=5) and sum(sent) == total

    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    status, _, body = fetch(site.port, "/static/big.bin")
    assert status == 200 and hashlib.sha256(body).hexdigest() == site.big_sha256
    assert sent_by_sendfile(BIG_SIZE)
    with counted:
        sent.clear()
    start = 1_000_003
    field = f"bytes={start}-{start + 99_999}"
    status, _, body = fetch(site.port, "/static/big.bin", headers={"Range": field})
    assert status == 206 and sent_by_sendfile(100_000)
    assert body == (site.docroot / "big.bin").read_bytes()[start : start + 100_000]


def test_tls_sends_file_ranges_without_sendfile(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cert, key = cert_files(tmp_path_factory)
    docroot, digest = make_docroot(tmp_path)
    manager = Manager()
    server = Server(("127.0.0.1", 0), certfile=cert, keyfile=key).register(manager)
    Static(docroot, prefix="/static").register(server)
    with running(manager):
        conn = http.client.HTTPSConnection(
            "127.0.0.1", server.port, timeout=10, context=client_ssl_context(cert)
        )
        try:
            conn.request("GET", "/static/big.bin")
            whole = conn.getresponse().read()
            conn.request("GET", "/static/big.bin", headers={"Range": "bytes=10-19"})
            response = conn.getresponse()
            part = response.read()
        finally:
            conn.close()
    assert hashlib.sha256(whole).hexdigest() == digest
    assert (response.status, part) == (206, whole[10:20])


def test_keep_alive_across_file_answers(site: Site) -> None:
    """Full, conditional and partial answers on one connection: the framing holds."""
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
    try:
        conn.request("GET", "/static/hello.txt")
        first = conn.getresponse()
        assert first.read() == HELLO
        etag = first.headers["ETag"]
        conn.request("GET", "/static/hello.txt", headers={"If-None-Match": etag})
        second = conn.getresponse()
        assert (second.status, second.read()) == (304, b"")
        conn.request("GET", "/static/big.bin", headers={"Range": "bytes=100-199"})
        third = conn.getresponse()
        expected = (site.docroot / "big.bin").read_bytes()[100:200]
        assert (third.status, third.read()) == (206, expected)
        conn.request("HEAD", "/static/big.bin")
        fourth = conn.getresponse()
        assert (fourth.status, fourth.read()) == (200, b"")
        conn.request("GET", "/static/page.html")
        fifth = conn.getresponse()
        assert fifth.read() == b"<p>page</p>\n"
        assert not fifth.will_close
    finally:
        conn.close()


# ----------------------------------------------------------- validators
def test_if_none_match(site: Site) -> None:
    _, headers, _ = fetch(site.port, "/static/hello.txt")
    etag = headers["ETag"]
    for field in (etag, f'"nope", {etag}', f"W/{etag}", "*"):
        status, h304, body = fetch(
            site.port, "/static/hello.txt", headers={"If-None-Match": field}
        )
        assert (status, body) == (304, b""), field
        assert h304["ETag"] == etag
        assert "Content-Length" not in h304
    status, _, body = fetch(site.port, "/static/hello.txt", headers={"If-None-Match": '"other"'})
    assert (status, body) == (200, HELLO)


def test_if_modified_since(site: Site) -> None:
    _, headers, _ = fetch(site.port, "/static/hello.txt")
    last_modified = headers["Last-Modified"]
    mtime = int((site.docroot / "hello.txt").stat().st_mtime)
    status, _, body = fetch(
        site.port, "/static/hello.txt", headers={"If-Modified-Since": last_modified}
    )
    assert (status, body) == (304, b"")
    later = formatdate(mtime + 3600, usegmt=True)
    assert fetch(site.port, "/static/hello.txt", headers={"If-Modified-Since": later})[0] == 304
    earlier = formatdate(mtime - 3600, usegmt=True)
    status, _, body = fetch(site.port, "/static/hello.txt", headers={"If-Modified-Since": earlier})
    assert (status, body) == (200, HELLO)
    status, _, _ = fetch(site.port, "/static/hello.txt", headers={"If-Modified-Since": "garbage"})
    assert status == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 section 13.2.2).
    both = {"If-None-Match": '"other"', "If-Modified-Since": last_modified}
    assert fetch(site.port, "/static/hello.txt", headers=both)[0] == 200


# ---------------------------------------------------------------- ranges
@pytest.mark.parametrize(
    ("field", "status", "start", "end"),
    [
        ("bytes=0-4", 206, 0, 4),
        ("bytes=5-", 206, 5, len(HELLO) - 1),
        ("bytes=-3", 206, len(HELLO) - 3, len(HELLO) - 1),
        ("bytes=-1000", 206, 0, len(HELLO) - 1),
        ("bytes=3-1000", 206, 3, len(HELLO) - 1),
        ("BYTES = 1 - 2", 206, 1, 2),
        ("items=0-1", 200, 0, len(HELLO) - 1),
        ("bytes=5-2", 200, 0, len(HELLO) - 1),
        ("bytes=x-2", 200, 0, len(HELLO) - 1),
    ],
)
def test_ranges(site: Site, field: str, status: int, start: int, end: int) -> None:
    got, headers, body = fetch(site.port, "/static/hello.txt", headers={"Range": field})
    assert got == status
    assert body == HELLO[start : end + 1]
    assert headers["Content-Length"] == str(end - start + 1)
    if status == 206:
        assert headers["Content-Range"] == f"bytes {start}-{end}/{len(HELLO)}"
    else:
        assert "Content-Range" not in headers


@pytest.mark.parametrize("field", [f"bytes={len(HELLO)}-", "bytes=1000-2000", "bytes=-0"])
def test_unsatisfiable_range(site: Site, field: str) -> None:
    status, headers, body = fetch(site.port, "/static/hello.txt", headers={"Range": field})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{len(HELLO)}"
    assert body == b""


def test_if_range(site: Site) -> None:
    _, headers, _ = fetch(site.port, "/static/hello.txt")
    fresh = {"Range": "bytes=0-1", "If-Range": headers["ETag"]}
    assert fetch(site.port, "/static/hello.txt", headers=fresh)[:3:2] == (206, HELLO[:2])
    stale = {"Range": "bytes=0-1", "If-Range": '"stale"'}
    assert fetch(site.port, "/static/hello.txt", headers=stale)[:3:2] == (200, HELLO)
    dated = {"Range": "bytes=0-1", "If-Range": headers["Last-Modified"]}
    assert fetch(site.port, "/static/hello.txt", headers=dated)[:3:2] == (206, HELLO[:2])


def test_range_in_the_big_file(site: Site) -> None:
    start = BIG_SIZE // 2 + 7
    field = f"bytes={start}-{start + 200_000}"
    status, headers, body = fetch(site.port, "/static/big.bin", headers={"Range": field})
    assert status == 206
    assert body == (site.docroot / "big.bin").read_bytes()[start : start + 200_001]
    assert headers["Content-Range"] == f"bytes {start}-{start + 200_000}/{BIG_SIZE}"


@pytest.mark.parametrize(
    ("field", "size", "expected"),
    [
        ("bytes=0-0", 1, (0, 0)),
        ("bytes=0-", 0, "unsatisfiable"),
        ("bytes=-5", 0, "unsatisfiable"),
        ("bytes=-", 10, None),
        ("bytes=", 10, None),
        ("bytes=1", 10, None),
        ("bytes=\u0661-2", 10, None),  # an Arabic-Indic digit is no ASCII digit
        ("bytes=9-9", 10, (9, 9)),
        ("bytes=10-", 10, "unsatisfiable"),
        ("bytes=2-5", 10, (2, 5)),
    ],
)
def test_parse_range(field: str, size: int, expected: Any) -> None:
    assert parse_range(field, size) == expected


# ------------------------------------------------------------- traversal
@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/.%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/sub/..%2f..%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/hello.txt%00.png",
        "/static/%00",
        "/static/./hello.txt",
        "/static/sub/%0a",
    ],
)
def test_traversal_is_refused(site: Site, path: str) -> None:
    status, _, body = fetch(site.port, path)
    assert status == 400
    assert SECRET not in body


@pytest.mark.parametrize(
    "path", ["/static/escape.txt", "/static/escdir/secret.txt", "/files/escdir/"]
)
def test_symlinks_out_of_the_docroot_are_not_found(site: Site, path: str) -> None:
    status, _, body = fetch(site.port, path)
    assert status == 404
    assert SECRET not in body


def test_symlink_inside_the_docroot_is_served(site: Site) -> None:
    assert fetch(site.port, "/static/alias.txt")[::2] == (200, HELLO)


def test_fifo_is_not_opened(site: Site) -> None:
    """Opening a fifo would block the loop: it is simply not there."""
    assert fetch(site.port, "/static/pipe")[0] == 404


def test_file_with_trailing_slash_is_not_found(site: Site) -> None:
    assert fetch(site.port, "/static/hello.txt/")[0] == 404


# ---------------------------------------------------- directories, listing
def test_directory_index(site: Site) -> None:
    status, headers, body = fetch(site.port, "/static/sub/")
    assert (status, body) == (200, b"<h1>sub index</h1>\n")
    assert headers["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/static/sub", "/static/sub/"),
        ("/static/sub?x=1", "/static/sub/?x=1"),
        ("/static//sub", "/static/sub/"),
        ("/static", "/static/"),
    ],
)
def test_directory_without_slash_redirects(site: Site, path: str, location: str) -> None:
    status, headers, _ = fetch(site.port, path)
    assert status == 301
    assert headers["Location"] == location


def test_directory_without_index_is_forbidden_without_listing(site: Site) -> None:
    status, _, body = fetch(site.port, "/static/listed/")
    assert status == 403
    assert b"script" not in body


def test_listing_escapes_names(site: Site) -> None:
    status, headers, body = fetch(site.port, "/files/listed/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert "<script>" not in page
    assert "&lt;script&gt;.txt" in page
    assert 'href="./%3Cscript%3E.txt"' in page
    assert "a&amp;b.txt" in page and 'href="./a%26b.txt"' in page
    assert 'href="./folder/"' in page
    assert 'href="../"' in page
    assert "out.txt" not in page  # a symlink out of the docroot is not listed
    # The links work.
    assert fetch(site.port, "/files/listed/%3Cscript%3E.txt")[::2] == (200, b"not a script\n")
    assert fetch(site.port, "/files/listed/a%26b.txt")[::2] == (200, b"ampersand\n")


def test_listing_of_the_root_has_no_parent_link(site: Site) -> None:
    status, headers, body = fetch(site.port, "/files/")
    assert status == 200
    status, head_headers, head_body = fetch(site.port, "/files/", "HEAD")
    assert (status, head_body) == (200, b"")
    assert head_headers["Content-Length"] == headers["Content-Length"] == str(len(body))
    assert b'href="../"' not in body
    assert b'href="./sub/"' in body and b'href="./hello.txt"' in body


# ------------------------------------------------------ methods, mounting
def test_other_methods_on_files_are_405(site: Site) -> None:
    for path in ("/static/hello.txt", "/static/sub/"):
        status, headers, _ = fetch(site.port, path, "POST")
        assert status == 405
        assert headers["Allow"] == "GET, HEAD"


def test_missing_files_fall_through_to_the_dispatcher(site: Site) -> None:
    assert fetch(site.port, "/static/nope.txt")[0] == 404
    assert fetch(site.port, "/static/nope.txt", "POST")[0] == 404
    assert fetch(site.port, "/staticky/hello.txt")[0] == 404  # not under the prefix


def test_mounted_next_to_a_controller(site: Site) -> None:
    assert fetch(site.port, "/api")[::2] == (200, b"api index")
    assert fetch(site.port, "/api/echo/hi")[::2] == (200, b"echo hi")
    assert fetch(site.port, "/static/hello.txt")[::2] == (200, HELLO)


def test_root_prefix_shares_the_server_with_a_controller(tmp_path: Path) -> None:
    """Static at "/" serves what exists; everything else reaches the controllers."""
    docroot, _ = make_docroot(tmp_path)
    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    Static(docroot).register(server)
    Api().register(server)
    with running(manager):
        assert fetch(server.port, "/hello.txt")[::2] == (200, HELLO)
        assert fetch(server.port, "/api/echo/x")[::2] == (200, b"echo x")
        assert fetch(server.port, "/sub/")[::2] == (200, b"<h1>sub index</h1>\n")
        assert fetch(server.port, "/missing")[0] == 404
        assert fetch(server.port, "/../secret.txt")[0] == 400
        # Never a scheme-relative "//host/" Location (an open redirect).
        status, headers, _ = fetch(server.port, "//sub")
        assert (status, headers["Location"]) == (301, "/sub/")


def test_docroot_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        Static(tmp_path / "missing")
    with pytest.raises(ValueError):
        Static(tmp_path, prefix="static")


def test_client_gone_mid_download_closes_the_file(site: Site) -> None:
    """A client that leaves during a large download: no error, the server goes on."""
    sock = socket.create_connection(("127.0.0.1", site.port), timeout=5)
    try:
        sock.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        sock.close()
    assert fetch(site.port, "/static/hello.txt")[::2] == (200, HELLO)
    # Teardown (running) fails on any handler error; ResourceWarnings are errors too.


# ------------------------------------------------------------- FileSlice
def test_file_slice_reads_exactly_its_length(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 1024)  # 256 KiB
    with open(path, "rb") as file:
        body = FileSlice(file, 1000, 150_000)
        body.advance(10)  # as a zero-copy sender would after sending 10 bytes itself
        assert (body.position, body.remaining) == (1010, 149_990)
        data = path.read_bytes()[1000:1010] + b"".join(body)
        assert data == path.read_bytes()[1000:151_000]
        assert file.closed
        assert body.remaining == 0


def test_file_slice_of_a_shrunk_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    file = open(path, "rb")  # noqa: SIM115 - FileSlice closes it
    body = FileSlice(file, 0, 200)
    assert next(body) == b"x" * 100
    with pytest.raises(OSError, match="100 bytes early"):
        next(body)
    assert file.closed
    with pytest.raises(ValueError):
        FileSlice(file, -1, 3)


# --------------------------------------------------- the exchange's file bodies
class TrackedFile(io.BytesIO):
    """A file body whose closing the test can see."""


def test_head_closes_a_file_body_returned_by_a_controller() -> None:
    files: list[TrackedFile] = []

    class Files(Controller):
        channel = "/"

        def index(self) -> TrackedFile:
            files.append(TrackedFile(b"file body"))
            return files[-1]

    manager = Manager()
    server = Server(("127.0.0.1", 0)).register(manager)
    Files().register(server)
    with running(manager):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            for method in ("HEAD", "GET"):  # the GET's answer: the HEAD is fully handled
                conn.request(method, "/")
                conn.getresponse().read()
        finally:
            conn.close()
    assert [f.closed for f in files] == [True, True]
