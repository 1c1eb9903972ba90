"""Sessions over real connections: curl's cookie jar, http.client, TLS; forged and
expired cookies; rotation; the stores."""

from __future__ import annotations

import http.client
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from _net_support import cert_files, client_ssl_context, server_ssl_context
from _web_support import curl, get, serve
from netcomp.web import Controller, FileStore, MemoryStore, Sessions, Store


class Root(Controller):
    def index(self, name: str | None = None) -> str:
        if name:
            with self.session as data:  # circuits' idiom: saved when the block ends
                data["name"] = name
        return "Hello " + self.session.get("name", "World!")

    def count(self) -> str:
        self.session["count"] = self.session.get("count", 0) + 1  # saved by the filter
        return str(self.session["count"])

    def login(self) -> str:
        self.session.rotate()
        return "rotated"

    def logout(self) -> str:
        self.session.expire()
        return "OK"

    def peek(self) -> str:
        return str(self.session.sid)


def cookie_of(reply: Any) -> str | None:
    fields = reply.all("set-cookie")
    return fields[0] if fields else None


def sid_of(field: str) -> str:
    found = re.match(r"session=([^;]*)", field)
    assert found is not None, field
    return found.group(1)


def test_curl_cookie_jar(tmp_path: Path) -> None:
    jar = str(tmp_path / "jar")
    with serve(Root(), Sessions(), dispatcher=True) as site:
        first = curl("-c", jar, "-b", jar, site.url + "/")
        assert first.stdout == b"Hello World!"
        assert not os.path.exists(jar) or "session" not in Path(jar).read_text()  # unused
        assert curl("-c", jar, "-b", jar, site.url + "/index?name=ada").stdout == b"Hello ada"
        assert curl("-c", jar, "-b", jar, site.url + "/").stdout == b"Hello ada"
        assert [curl("-c", jar, "-b", jar, site.url + "/count").stdout for _ in range(3)] == [
            b"1",
            b"2",
            b"3",
        ]
        assert curl("-c", jar, "-b", jar, site.url + "/logout").stdout == b"OK"
        assert curl("-c", jar, "-b", jar, site.url + "/").stdout == b"Hello World!"


def test_cookie_flags_and_no_cookie_until_saved() -> None:
    with serve(Root(), Sessions(), dispatcher=True) as site:
        assert cookie_of(get(site.port, "/")) is None
        field = cookie_of(get(site.port, "/?name=x"))
        assert field is not None
        assert "HttpOnly" in field and "SameSite=Lax" in field and "Path=/" in field
        assert "Secure" not in field  # not over TLS
        assert len(sid_of(field)) == 43  # secrets.token_urlsafe(32)


def test_secure_over_tls(tmp_path_factory: pytest.TempPathFactory) -> None:
    cert, key = cert_files(tmp_path_factory)
    context = server_ssl_context(cert, key)
    with serve(Root(), Sessions(), dispatcher=True, ssl_context=context) as site:
        connection = http.client.HTTPSConnection(
            "localhost", site.port, context=client_ssl_context(cert), timeout=5
        )
        connection.request("GET", "/?name=tls")
        reply = connection.getresponse()
        assert reply.read() == b"Hello tls"
        assert "Secure" in reply.getheader("Set-Cookie", "")
        connection.close()


@pytest.mark.parametrize("forged", ["A" * 43, "not-a-session-id", "x" * 5000])
def test_a_forged_cookie_is_never_adopted(forged: str) -> None:
    with serve(Root(), Sessions(), dispatcher=True) as site:
        headers = [("Cookie", f"session={forged}")]
        assert get(site.port, "/", headers=headers).text == "Hello World!"
        field = cookie_of(get(site.port, "/?name=eve", headers=headers))
        assert field is not None and sid_of(field) != forged


def test_rotation_and_expiry_on_virtual_time() -> None:
    sessions = Sessions(timeout=600)
    with serve(Root(), sessions, dispatcher=True, virtual=True) as site:
        old = sid_of(cookie_of(get(site.port, "/?name=ada")) or "")
        cookie = [("Cookie", f"session={old}")]
        rotated = cookie_of(get(site.port, "/login", headers=cookie))
        assert rotated is not None
        new = sid_of(rotated)
        assert new != old
        assert get(site.port, "/", headers=cookie).text == "Hello World!"  # the old id is dead
        fresh = [("Cookie", f"session={new}")]
        assert get(site.port, "/", headers=fresh).text == "Hello ada"
        site.vt.advance(200)
        assert get(site.port, "/", headers=fresh).text == "Hello ada"  # not stale: not saved
        site.vt.advance(250)  # 450 s since the last save: less than half left, saved again
        assert get(site.port, "/", headers=fresh).text == "Hello ada"
        site.vt.advance(599)
        assert get(site.port, "/", headers=fresh).text == "Hello ada"
        site.vt.advance(601)
        assert get(site.port, "/", headers=fresh).text == "Hello World!"  # expired


def test_logout_deletes_the_cookie() -> None:
    with serve(Root(), Sessions(), dispatcher=True) as site:
        sid = sid_of(cookie_of(get(site.port, "/?name=ada")) or "")
        field = cookie_of(get(site.port, "/logout", headers=[("Cookie", f"session={sid}")]))
        assert field is not None and "Max-Age=0" in field and sid_of(field) in ("", '""')


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        Sessions(name="bad name")
    with pytest.raises(ValueError):
        Sessions(samesite="Sometimes")
    with pytest.raises(ValueError):
        Sessions(samesite="None", secure=False)
    with pytest.raises(TypeError):
        Sessions(store=object())  # type: ignore[arg-type]
    assert isinstance(Sessions(store=MemoryStore).store, MemoryStore)  # circuits gives a class


def test_memory_store_is_bounded() -> None:
    store = MemoryStore(max_sessions=3)
    for n in range(5):
        store.save(f"s{n}", {"n": n}, expires=100.0)
    assert len(store) == 3
    assert store.load("s0", 0.0) is None and store.load("s4", 0.0) == ({"n": 4}, 100.0)
    assert store.load("s4", 100.0) is None  # expired: forgotten
    assert isinstance(store, Store)


def test_file_store(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "sessions", max_size=200)
    assert stat.S_IMODE(os.stat(tmp_path / "sessions").st_mode) == 0o700
    store.save("../../etc/passwd", {"a": [1, "b"]}, expires=4e9)
    files = os.listdir(tmp_path / "sessions")
    assert len(files) == 1 and files[0].endswith(".json") and ".." not in files[0]
    record = json.loads((tmp_path / "sessions" / files[0]).read_text())
    assert record["data"] == {"a": [1, "b"]}
    assert store.load("../../etc/passwd", 0.0) == ({"a": [1, "b"]}, 4e9)
    with pytest.raises(TypeError):
        store.save("x", {"a": object()}, expires=4e9)  # JSON only: nothing is pickled
    with pytest.raises(ValueError):
        store.save("x", {"a": "y" * 500}, expires=4e9)
    store.delete("../../etc/passwd")
    assert store.load("../../etc/passwd", 0.0) is None
    store.delete("never there")


def test_sessions_on_a_file_store(tmp_path: Path) -> None:
    with serve(Root(), Sessions(store=FileStore(tmp_path)), dispatcher=True) as site:
        sid = sid_of(cookie_of(get(site.port, "/?name=file")) or "")
        assert get(site.port, "/", headers=[("Cookie", f"session={sid}")]).text == "Hello file"


def test_a_controller_without_sessions_says_so() -> None:
    with serve(Root(), dispatcher=True, check_errors=False) as site:
        assert get(site.port, "/").status == 500


def test_unused_sessions_cost_no_store_access() -> None:
    class Counting(MemoryStore):
        loads = 0

        def load(self, sid: str, now: float) -> Any:
            Counting.loads += 1
            return super().load(sid, now)

    class Plain(Controller):
        channel = "/plain"

        def index(self) -> str:
            return "no session here"

    with serve(Root(), Plain(), Sessions(store=Counting()), dispatcher=True) as site:
        headers = [("Cookie", "session=" + "A" * 43)]
        assert get(site.port, "/plain", headers=headers).text == "no session here"
        assert Counting.loads == 0


def test_nested_values_are_copied_in_and_out() -> None:
    store = MemoryStore()
    cart = {"items": ["a"]}
    store.save("s", cart, expires=10.0)
    cart["items"].append("not saved")
    loaded, _ = store.load("s", 0.0) or ({}, 0.0)
    loaded["items"].append("nor this")
    assert store.load("s", 0.0) == ({"items": ["a"]}, 10.0)
