"""The access-log ``Logger`` component: to a file, a path, a ``logging.Logger``; lines in
the Combined Log Format, escaped, with the size as sent (after gzip too)."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from _web_support import curl, get, serve
from netcomp.web import Controller, Gzip, Logger, NotFound

QUOTED = r'(?:[^"\\]|\\.)*'
LINE = re.compile(
    rf'(?P<h>\S+) - (?P<u>\S+) \[(?P<t>[^]]+)\] "(?P<r>{QUOTED})" (?P<s>\d+) (?P<b>\S+) '
    rf'"(?P<f>{QUOTED})" "(?P<a>{QUOTED})"'
)


class Root(Controller):
    def index(self) -> str:
        return "Hello World!"

    def big(self) -> bytes:
        self.response.headers["Content-Type"] = "text/plain"
        return b"x" * 5000

    def stream(self) -> Any:
        return iter([b"a" * 10, b"b" * 5])

    def missing(self) -> str:
        raise NotFound()

    def who(self) -> str:
        self.request.login = "ada"
        return "you"


def lines(text: str) -> list[dict[str, str]]:
    found = [LINE.fullmatch(line) for line in text.splitlines() if line]
    assert all(found), text
    return [m.groupdict() for m in found if m]


def test_to_a_file_object() -> None:
    out = io.StringIO()
    with serve(Root(), Logger(file=out), dispatcher=True) as site:
        assert get(site.port, "/", headers=[("User-Agent", "tester"), ("Referer", "/x")]).body
        logged = lines(out.getvalue())  # written before the response went out
        assert logged == [
            {
                "h": "127.0.0.1",
                "u": "-",
                "t": logged[0]["t"],
                "r": "GET / HTTP/1.1",
                "s": "200",
                "b": "12",
                "f": "/x",
                "a": "tester",
            }
        ]
        get(site.port, "/missing")
        get(site.port, "/stream")
        get(site.port, "/who")
        site.recorder.wait_for("request", count=4)
    entries = lines(out.getvalue())
    assert [(e["s"], e["b"]) for e in entries] == [("200", "12"), ("404", "25"),
                                                   ("200", "15"), ("200", "3")]  # fmt: skip
    assert entries[3]["u"] == "ada"


def test_to_a_path_and_a_logger(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "access.log"
    target = logging.getLogger("test.access")
    with serve(Root(), Logger(file=str(path)), Logger(logger=target, channel="web"),
               dispatcher=True) as site, caplog.at_level(logging.INFO, "test.access"):  # fmt: skip
        curl(site.url + "/")
        assert lines(path.read_text())[0]["r"] == "GET / HTTP/1.1"
        assert next(r.getMessage() for r in caplog.records).endswith('"curl/' + _curl_version())


def _curl_version() -> str:
    return curl("--version").stdout.split()[1].decode() + '"'


def test_escaping_and_gzip_sizes() -> None:
    out = io.StringIO()
    with serve(Root(), Gzip(), Logger(file=out), dispatcher=True) as site:
        get(site.port, "/big", headers=[("Accept-Encoding", "gzip"), ("User-Agent", 'a"b\\c')])
        entry = lines(out.getvalue())[0]
        assert entry["a"] == 'a\\"b\\\\c'
        assert int(entry["b"]) < 5000  # the compressed size, as sent


def test_options_are_checked() -> None:
    with pytest.raises(TypeError):
        Logger(file=io.StringIO(), logger=logging.getLogger("x"))
    with pytest.raises(TypeError):
        Logger(logger=object())
    with pytest.raises(TypeError):
        Logger(file=42)
