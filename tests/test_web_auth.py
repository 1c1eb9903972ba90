"""Basic and Digest authentication with real clients: curl (``--user``, ``--digest``),
urllib's handlers, http.client with hand-made fields; nonce expiry on virtual time."""

from __future__ import annotations

import base64
import gc
import hashlib
import re
import urllib.error
import urllib.request
import warnings
from typing import Any

import pytest

from _web_support import curl, get, serve
from netcomp.web import Controller
from netcomp.web.tools import basic_auth, check_auth, digest_auth

USERS = {"admin": "s3cret", "émile": "pässword"}


class Basic(Controller):
    channel = "/basic"

    def index(self) -> str:
        if check_auth(self.request, self.response, "Test", USERS):
            return f"hello {self.request.login}"
        return basic_auth(self.request, self.response, "Test", USERS)  # type: ignore[return-value]


class Digest(Controller):
    channel = "/digest"

    def index(self) -> str:
        error = digest_auth(self.request, self.response, "Test", USERS)
        if error is not None:
            raise error
        return f"hello {self.request.login}"


class LegacyDigest(Controller):
    channel = "/md5first"

    def index(self) -> str:
        error = digest_auth(self.request, self.response, "Test", USERS, algorithms=("MD5",))
        return error if error is not None else "hello"  # type: ignore[return-value]


class Hashed(Controller):
    """Stored values are hashes: ``encrypt`` hashes what the client sends."""

    channel = "/hashed"

    def index(self) -> str:
        users = {"admin": hashlib.sha256(b"s3cret").hexdigest()}

        def encrypt(password: str) -> str:
            return hashlib.sha256(password.encode()).hexdigest()

        error = basic_auth(self.request, self.response, "Test", users, encrypt)
        return error if error is not None else "hello"  # type: ignore[return-value]


def site_of(**options: Any) -> Any:
    """A server with the four controllers (made afresh: a component has one tree)."""
    return serve(Basic(), Digest(), LegacyDigest(), Hashed(), dispatcher=True, **options)


def test_basic_with_curl_and_http_client() -> None:
    with site_of() as site:
        asked = get(site.port, "/basic")
        assert asked.status == 401
        assert asked.header("www-authenticate") == 'Basic realm="Test", charset="UTF-8"'
        good = curl("--user", "admin:s3cret", site.url + "/basic")
        assert good.stdout == b"hello admin"
        bad = curl(
            "--user", "admin:wrong", "-o", "/dev/null", "-w", "%{http_code}", site.url + "/basic"
        )
        assert bad.stdout == b"401"
        token = base64.b64encode("émile:pässword".encode()).decode()
        assert get(site.port, "/basic", headers=[("Authorization", f"Basic {token}")]).text == (
            "hello émile"
        )
        hashed = curl("--user", "admin:s3cret", site.url + "/hashed")
        assert hashed.stdout == b"hello"


@pytest.mark.parametrize(
    "field",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no colon").decode(),
        'Digest username="admin", realm="Test"',  # parameters missing
        'Digest username="admin" realm=',  # no commas: does not parse
    ],
)
def test_a_malformed_authorization_field_is_400(field: str) -> None:
    with site_of() as site:
        assert get(site.port, "/basic", headers=[("Authorization", field)]).status == 400


def test_another_scheme_is_not_authenticated() -> None:
    with site_of() as site:
        assert get(site.port, "/basic", headers=[("Authorization", "Bearer x")]).status == 401


def challenges(reply: Any) -> list[dict[str, str]]:
    found = []
    for field in reply.all("www-authenticate"):
        assert field.startswith("Digest ")
        found.append(dict(re.findall(r'(\w+)=("[^"]*"|[^,\s]*)', field[7:])))
    return [{k: v.strip('"') for k, v in c.items()} for c in found]


def test_digest_offers_sha256_then_md5() -> None:
    with site_of() as site:
        offered = challenges(get(site.port, "/digest"))
        assert [c["algorithm"] for c in offered] == ["SHA-256", "MD5"]
        assert all(c["qop"] == "auth" and c["realm"] == "Test" for c in offered)


@pytest.mark.parametrize("user", ["admin", "émile"])
def test_digest_with_curl(user: str) -> None:
    with site_of() as site:
        good = curl("--digest", "--user", f"{user}:{USERS[user]}", site.url + "/digest")
        assert good.stdout == f"hello {user}".encode()
        bad = curl("--digest", "--user", f"{user}:nope", "-w", "%{http_code}", "-o", "/dev/null",
                   site.url + "/digest")  # fmt: skip
        assert bad.stdout == b"401"


def test_digest_with_urllib_md5() -> None:
    """urllib (before Python 3.14) reads the first challenge only and knows MD5 only."""
    with site_of() as site, warnings.catch_warnings():
        # urllib drops the 401 it answers without closing its socket: not ours to fix.
        warnings.simplefilter("ignore", ResourceWarning)
        handler = urllib.request.HTTPDigestAuthHandler()
        handler.add_password("Test", site.url, "admin", "s3cret")
        opener = urllib.request.build_opener(handler)
        with opener.open(site.url + "/md5first", timeout=5) as reply:
            assert reply.read() == b"hello"
        wrong = urllib.request.HTTPDigestAuthHandler()
        wrong.add_password("Test", site.url, "admin", "bad")
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.build_opener(wrong).open(site.url + "/md5first", timeout=5)
        assert failed.value.code == 401
        failed.value.close()
        del failed, opener, handler, wrong
        gc.collect()


def answer(challenge: dict[str, str], method: str, target: str, secret: str, **over: str) -> str:
    algorithm = challenge["algorithm"]
    hash_ = hashlib.sha256 if algorithm.startswith("SHA-256") else hashlib.md5

    def h(text: str) -> str:
        return hash_(text.encode()).hexdigest()

    nonce, cnonce, nc = challenge["nonce"], "abcdef", "00000001"
    ha1 = h(f"admin:Test:{secret}")
    ha2 = h(f"{method}:{target}")
    response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    params = {
        "username": "admin", "realm": "Test", "nonce": nonce, "uri": target,
        "algorithm": algorithm, "qop": "auth", "nc": nc, "cnonce": cnonce,
        "response": response, "opaque": challenge["opaque"],
    }  # fmt: skip
    params.update(over)
    return "Digest " + ", ".join(f'{k}="{v}"' for k, v in params.items())


def test_digest_nonces_expire_and_are_reported_stale() -> None:
    with site_of(virtual=True) as site:
        challenge = challenges(get(site.port, "/digest"))[0]
        field = answer(challenge, "GET", "/digest", "s3cret")
        assert get(site.port, "/digest", headers=[("Authorization", field)]).text == "hello admin"
        site.vt.advance(301)  # nonce_timeout is 300 s on the loop's clock
        stale = get(site.port, "/digest", headers=[("Authorization", field)])
        assert stale.status == 401
        assert all(c.get("stale") == "true" for c in challenges(stale))


@pytest.mark.parametrize(
    "over",
    [
        {"uri": "/elsewhere"},  # not the request's target
        {"realm": "Other"},
        {"nonce": base64.urlsafe_b64encode(b"x" * 32).decode()},  # not our nonce
        {"qop": "auth-int"},
        {"algorithm": "SHA-512"},
        {"opaque": "forged"},
        {"username": "nobody"},
    ],
)
def test_digest_refuses_what_does_not_match(over: dict[str, str]) -> None:
    with site_of() as site:
        challenge = challenges(get(site.port, "/digest"))[0]
        field = answer(challenge, "GET", "/digest", "s3cret", **over)
        assert get(site.port, "/digest", headers=[("Authorization", field)]).status == 401


def test_users_may_be_a_function() -> None:
    class Looked(Controller):
        channel = "/looked"

        def index(self) -> str:
            error = basic_auth(self.request, self.response, "Test", USERS.get)
            return error if error is not None else "found"  # type: ignore[return-value]

    with serve(Looked(), dispatcher=True) as site:
        assert curl("--user", "admin:s3cret", site.url + "/looked").stdout == b"found"


@pytest.mark.parametrize(
    ("uri", "target", "same"),
    [
        ("/a?b=1", "/a?b=1", True),
        ("", "/", True),  # urllib's uri for http://host:port
        ("http://example.org/a?b=1", "/a?b=1", True),
        ("/a", "/b", False),
        ("", "/a", False),
        ("http://example.org/b", "/a", False),
    ],
)
def test_digest_uri_names_the_target(uri: str, target: str, same: bool) -> None:
    from netcomp.web._auth import _same_target

    assert _same_target(uri, target) is same
