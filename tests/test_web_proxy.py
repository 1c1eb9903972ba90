"""The web server behind a proxy: ``url_scheme=``, and ``proxy_headers=True`` trusting
``Forwarded`` / ``X-Forwarded-*`` only from ``forwarded_allow``. Headers are forged from an
untrusted peer (bound to 127.0.0.2; the whole 127/8 is loopback) and sent from a trusted
one (127.0.0.1), with the stdlib's http.client as the client."""

from __future__ import annotations

import http.client
import json
import logging
from typing import Any

import pytest

from _web_support import serve
from netcomp.web import BaseServer, Request, Response

TRUSTED, STRANGER = "127.0.0.1", "127.0.0.2"


def show(request: Request, response: Response) -> str:
    response.headers["Content-Type"] = "application/json"
    return json.dumps(
        {
            "remote": list(request.remote),
            "scheme": request.scheme,
            "host": request.host,
            "by": request.forwarded_by and list(request.forwarded_by)[:1],
        }
    )


def ask(port: int, source: str, headers: dict[str, str], host: str = "app.test") -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", "/", headers={"Host": host, **headers})
        answer = conn.getresponse()
        assert answer.status == 200
        return json.loads(answer.read())
    finally:
        conn.close()


FORGED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "www.example.com",
}


def test_untrusted_peer_cannot_forge_its_address() -> None:
    with serve(show, proxy_headers=True, forwarded_allow=[TRUSTED]) as site:
        seen = ask(site.port, STRANGER, FORGED)
    assert seen["remote"][0] == STRANGER
    assert (seen["scheme"], seen["host"], seen["by"]) == ("http", "app.test", None)


def test_trusted_proxy_names_the_client(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.INFO, logger="netcomp.web.access"),
        serve(show, proxy_headers=True, forwarded_allow=[TRUSTED]) as site,
    ):
        seen = ask(site.port, TRUSTED, FORGED)
    assert seen == {
        "remote": ["203.0.113.7", 0],
        "scheme": "https",
        "host": "www.example.com",
        "by": [TRUSTED],
    }
    lines = [r.getMessage() for r in caplog.records if r.name == "netcomp.web.access"]
    assert lines and lines[-1].startswith("203.0.113.7 - - [")


def test_headers_are_ignored_unless_proxy_headers_is_on() -> None:
    with serve(show) as site:
        seen = ask(site.port, TRUSTED, FORGED)
    assert seen["remote"][0] == TRUSTED and seen["scheme"] == "http"


def test_default_trusts_loopback_only() -> None:
    with serve(show, proxy_headers=True) as site:
        assert ask(site.port, STRANGER, FORGED)["remote"][0] == "203.0.113.7"
    with serve(show, proxy_headers=True, forwarded_allow="10.0.0.0/8") as site:
        assert ask(site.port, TRUSTED, FORGED)["remote"][0] == TRUSTED


def test_forwarded_header_wins_and_chains_skip_trusted_hops() -> None:
    headers = {
        "Forwarded": 'for=198.51.100.9;proto=https;host=shop.test, for="[::1]:8080"',
        "X-Forwarded-For": "203.0.113.7",
    }
    with serve(show, proxy_headers=True, forwarded_allow=[TRUSTED, "::1"]) as site:
        seen = ask(site.port, TRUSTED, headers)
    # ::1 is a trusted proxy in the chain: the client is the hop before it
    assert seen["remote"] == ["198.51.100.9", 0]
    assert (seen["scheme"], seen["host"]) == ("https", "shop.test")


def test_x_forwarded_for_chain_from_the_right() -> None:
    headers = {"X-Forwarded-For": "192.0.2.1, 198.51.100.2, 127.0.0.1"}
    with serve(show, proxy_headers=True, forwarded_allow=[TRUSTED]) as site:
        seen = ask(site.port, TRUSTED, headers)
    # 198.51.100.2 is not trusted: it could have written the entries to its left
    assert seen["remote"] == ["198.51.100.2", 0]


def test_malformed_values_are_ignored_field_by_field() -> None:
    headers = {
        "X-Forwarded-For": "not-an-ip",
        "X-Forwarded-Proto": "gopher",
        "X-Forwarded-Host": "evil.test/path",
    }
    with serve(show, proxy_headers=True, forwarded_allow=[TRUSTED]) as site:
        seen = ask(site.port, TRUSTED, headers)
    assert seen["remote"][0] == TRUSTED
    assert (seen["scheme"], seen["host"]) == ("http", "app.test")
    with serve(show, proxy_headers=True, forwarded_allow=[TRUSTED]) as site:
        seen = ask(site.port, TRUSTED, {"Forwarded": 'for="[2001:db8::5]:4711";proto=HTTPS'})
    assert (seen["remote"], seen["scheme"]) == (["2001:db8::5", 4711], "https")


def test_url_scheme_is_what_requests_report() -> None:
    with serve(show, url_scheme="https") as site:
        assert site.server.url.startswith("https://127.0.0.1:")
        assert ask(site.port, TRUSTED, {})["scheme"] == "https"
    with pytest.raises(ValueError, match="url_scheme must be 'http' or 'https', got 'ftp'"):
        BaseServer(0, url_scheme="ftp")
