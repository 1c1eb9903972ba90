"""HTTP authentication tools: Basic (RFC 7617) and Digest (RFC 7616), circuits.web's
``check_auth``, ``basic_auth`` and ``digest_auth``.

Rules:
* ``users`` is a mapping of user name to password, or a callable: ``users(name)`` gives
  the password (None: no such user), or ``users()`` gives the mapping. Passwords are
  compared as given (Basic with ``encrypt``: ``encrypt(given)`` is compared to the stored
  value); every comparison is constant-time (:func:`hmac.compare_digest`), and an unknown
  user costs the same work as a known one.
* A malformed ``Authorization`` field (bad base64, no colon, a Digest field that does
  not parse or lacks a parameter) is 400; another scheme is "not authenticated".
* Digest: ``qop=auth`` only (``auth-int`` and the RFC 2069 form are refused), algorithms
  ``SHA-256`` and ``MD5`` (and their ``-sess`` forms), offered in the order given
  (SHA-256 first by default). A nonce is the server's time, random bytes and an HMAC
  over them and the realm with a per-process key (``secret=`` to share it between
  processes): nothing is stored, and it expires after ``nonce_timeout`` seconds on the
  loop's clock; a response to an expired nonce is answered with a new challenge saying
  ``stale=true``, so clients retry without asking the user again.
* ``check_auth`` sets ``request.login`` to the user name (None when it fails).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import inspect
import re
import secrets
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union
from urllib.parse import unquote, urlsplit

from ..core import current_loop
from ._compat_errors import unauthorized
from ._errors import BadRequest
from ._request import Request
from ._response import Response

__all__ = ["DIGEST_ALGORITHMS", "basic_auth", "check_auth", "digest_auth"]

Users = Union[Mapping[str, str], Callable[..., Any]]  # noqa: UP007 (a runtime alias on 3.10)

_HASHES: dict[str, Callable[[bytes], Any]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
#: Digest algorithms netcomp verifies (with their ``-sess`` forms).
DIGEST_ALGORITHMS = ("SHA-256", "MD5")
_KEY = secrets.token_bytes(32)
_OPAQUE = secrets.token_hex(16)
_PARAM = re.compile(
    r'\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(,|$)'
)
_NEEDED = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
_NONCE = struct.Struct(">d8s")


def _now() -> float:
    loop = current_loop()
    return loop.time() if loop is not None else time.monotonic()


def _password(users: Users, name: str) -> str | None:
    if isinstance(users, Mapping):
        return users.get(name)
    try:
        takes_name = bool(inspect.signature(users).parameters)
    except (TypeError, ValueError):
        takes_name = True
    if takes_name:
        found = users(name)
        return found if isinstance(found, str) or found is None else str(found)
    mapping = users()
    if not isinstance(mapping, Mapping):
        raise TypeError(f"users() must give a mapping of names to passwords, not {mapping!r}")
    return mapping.get(name)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------ parsing
def _basic_credentials(data: str) -> tuple[str, str]:
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(description="malformed Basic credentials") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    name, colon, password = text.partition(":")
    if not colon:
        raise BadRequest(description="malformed Basic credentials")
    return name, password


def _utf8(value: str) -> str:
    """A field value (read as latin-1) as the UTF-8 text the client meant (RFC 7616
    ``charset=UTF-8``), when its bytes are UTF-8."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _digest_params(data: str) -> dict[str, str]:
    params: dict[str, str] = {}
    position = 0
    while position < len(data):
        match = _PARAM.match(data, position)
        if match is None or match.end() == position:
            raise BadRequest(description="malformed Digest credentials")
        name, value, _ = match.groups()
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[name.lower()] = _utf8(value)
        position = match.end()
    extended = params.pop("username*", None)  # RFC 7616 section 3.4.4: UTF-8''percent-encoded
    if extended is not None and extended.lower().startswith("utf-8''"):
        params["username"] = unquote(extended[7:], errors="strict")
    missing = [name for name in _NEEDED if name not in params]
    if missing:
        raise BadRequest(description=f"Digest credentials lack {', '.join(missing)}")
    return params


# -------------------------------------------------------------------- nonces
def _nonce(realm: str, secret: bytes) -> str:
    body = _NONCE.pack(_now(), secrets.token_bytes(8))
    tag = hmac.new(secret, body + realm.encode("utf-8"), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body + tag).decode("ascii")


def _nonce_state(nonce: str, realm: str, secret: bytes, timeout: float) -> str:
    """``"good"``, ``"stale"`` (ours, expired) or ``"bad"`` (not ours)."""
    try:
        raw = base64.urlsafe_b64decode(nonce.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return "bad"
    if len(raw) != _NONCE.size + 16:
        return "bad"
    body, tag = raw[: _NONCE.size], raw[_NONCE.size :]
    expected = hmac.new(secret, body + realm.encode("utf-8"), hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(tag, expected):
        return "bad"
    issued = _NONCE.unpack(body)[0]
    now = _now()
    return "good" if issued <= now + 1.0 and now - issued <= timeout else "stale"


# ------------------------------------------------------------------ checking
def _same_target(uri: str, target: str) -> bool:
    """Whether a Digest ``uri`` names the request's target (RFC 7616 section 3.4.6): the
    same text; ``""`` for ``/`` (what ``urllib`` sends for a URL without a path); or the
    absolute form of the same path and query."""
    if uri == target or (uri == "" and target == "/"):
        return True
    if "://" in uri:
        parts = urlsplit(uri)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "") == target
    return False


def _check_digest(
    request: Request, params: dict[str, str], realm: str, users: Users, options: dict[str, Any]
) -> bool:
    algorithm = params.get("algorithm", "MD5")
    base, sess = algorithm.upper().removesuffix("-SESS"), algorithm.upper().endswith("-SESS")
    allowed = {a.upper() for a in options["algorithms"]}
    if base not in allowed or params["qop"] != "auth" or not _same(params["realm"], realm):
        return False
    if "opaque" in params and not _same(params["opaque"], _OPAQUE):
        return False
    if not _same_target(params["uri"], request.target):
        return False
    state = _nonce_state(params["nonce"], realm, options["secret"], options["nonce_timeout"])
    if state != "good":
        if state == "stale":
            request.state["digest_stale"] = True
        return False
    name = params["username"]
    password = _password(users, name)
    known = password is not None
    digest = _HASHES[base]

    def h(text: str) -> str:
        return str(digest(text.encode("utf-8")).hexdigest())

    ha1 = h(f"{name}:{realm}:{password if known else secrets.token_hex(16)}")
    if sess:
        ha1 = h(f"{ha1}:{params['nonce']}:{params['cnonce']}")
    ha2 = h(f"{request.method}:{params['uri']}")
    expected = h(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
    return _same(expected, params["response"].lower()) and known


def check_auth(
    request: Request,
    response: Response,
    realm: str,
    users: Users,
    encrypt: Callable[[str], str] | None = None,
    *,
    algorithms: Iterable[str] = DIGEST_ALGORITHMS,
    nonce_timeout: float = 300.0,
    secret: bytes | None = None,
) -> bool:
    """Whether ``request`` carries valid Basic or Digest credentials for ``realm``
    (``algorithms``, ``nonce_timeout`` and ``secret`` as given to :func:`digest_auth`)."""
    request.login = None
    field = request.headers.get("authorization")
    if field is None:
        return False
    scheme, _, data = field.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        name, given = _basic_credentials(data)
        stored = _password(users, name)
        offered = encrypt(given) if encrypt is not None else given
        good = _same(str(offered), stored if stored is not None else secrets.token_hex(16))
        ok = good and stored is not None
    elif scheme == "digest":
        options = {
            "algorithms": tuple(algorithms),
            "nonce_timeout": nonce_timeout,
            "secret": secret if secret is not None else _KEY,
        }
        params = _digest_params(data)
        name = params["username"]
        ok = _check_digest(request, params, realm, users, options)
    else:
        return False
    if ok:
        request.login = name
    return ok


def basic_auth(
    request: Request,
    response: Response,
    realm: str,
    users: Users,
    encrypt: Callable[[str], str] | None = None,
) -> unauthorized | None:
    """None when the request has valid Basic credentials, else a 401 error to return
    (or raise) that asks for them."""
    if check_auth(request, response, realm, users, encrypt):
        return None
    error = unauthorized(request, response)
    error.headers.append(("WWW-Authenticate", f'Basic realm={_quoted(realm)}, charset="UTF-8"'))
    return error


def digest_auth(
    request: Request,
    response: Response,
    realm: str,
    users: Users,
    *,
    algorithms: Iterable[str] = DIGEST_ALGORITHMS,
    nonce_timeout: float = 300.0,
    secret: bytes | None = None,
) -> unauthorized | None:
    """None when the request has valid Digest credentials, else a 401 error to return
    (or raise) with one challenge per algorithm, in order (see the module rules)."""
    algorithms = tuple(algorithms)
    unknown = [a for a in algorithms if a.upper() not in _HASHES]
    if unknown or not algorithms:
        raise ValueError(f"Digest algorithms are among {DIGEST_ALGORITHMS}, not {unknown}")
    key = secret if secret is not None else _KEY
    options: dict[str, Any] = {"algorithms": algorithms, "nonce_timeout": nonce_timeout}
    if check_auth(request, response, realm, users, secret=key, **options):
        return None
    error = unauthorized(request, response)
    stale = ", stale=true" if request.state.get("digest_stale") else ""
    for algorithm in algorithms:
        challenge = (
            f'Digest realm={_quoted(realm)}, qop="auth", algorithm={algorithm}, '
            f'nonce="{_nonce(realm, key)}", opaque="{_OPAQUE}", charset=UTF-8{stale}'
        )
        error.headers.append(("WWW-Authenticate", challenge))
    return error
