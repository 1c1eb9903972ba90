"""Sessions: data kept across a client's requests, found again through a cookie.

Rules:
* :class:`Sessions` gives every request on its channel a :class:`Session` as
  ``request.session`` (a controller's ``self.session``). Nothing is read from the store
  until the session is used, and nothing is stored, and no cookie set, until it is
  saved with data in it: clients that never log in cost no memory.
* Session ids are ``secrets.token_urlsafe(32)`` (256 bits). An id the store does not
  know (forged, expired, from another server) is never adopted: the client gets a new
  id when its session is first saved (no session fixation). A malformed id is ignored.
* The cookie is ``HttpOnly`` and ``SameSite=Lax`` by default, ``Secure`` when the request
  came over TLS (``secure=None``), ``Path=/``; without ``max_age`` it is a browser
  session cookie. On the server a session expires ``timeout`` seconds after it was last
  saved; one that is used with less than half of that left is saved again.
* A changed session is saved when the response starts (a response filter), or when
  a ``with session:`` block ends (circuits' idiom); ``rotate()`` gives it a new id (do it
  at login), ``expire()`` deletes it and its cookie.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

from ..core import Event, handler
from ._attach import FilterComponent
from ._request import Request
from ._response import Response
from ._sessionstores import MemoryStore, Store

__all__ = ["Session", "Sessions"]

_SID = re.compile(r"[A-Za-z0-9_-]{43}\Z")
_SAMESITE = ("Strict", "Lax", "None")


class Session(MutableMapping[str, Any]):
    """One client's session: a mutable mapping, saved by its :class:`Sessions`."""

    def __init__(self, sessions: Sessions, request: Request) -> None:
        self.sessions = sessions
        self.request = request
        self._sid: str | None = None
        self._data: dict[str, Any] | None = None  # loaded on first use
        self._expires = 0.0
        self.modified = False
        self.cookie_due: str | None = None  # "set" or "delete"

    def _loaded(self) -> dict[str, Any]:
        if self._data is None:
            self._data = {}
            sid = self.request.cookies.get(self.sessions.name)
            if sid is not None and _SID.match(sid):
                found = self.sessions.store.load(sid, self.sessions.now())
                if found is not None:
                    self._data, self._expires = found
                    self._sid = sid
        return self._data

    @property
    def sid(self) -> str | None:
        """The session id (None until the session is stored)."""
        self._loaded()
        return self._sid

    def __getitem__(self, key: str) -> Any:
        return self._loaded()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._loaded()[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        del self._loaded()[key]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def save(self) -> None:
        """Store the session now (a new id and its cookie when it had none)."""
        data = self._loaded()
        if self._sid is None:
            if not data:
                return
            self._sid = secrets.token_urlsafe(32)
            self.cookie_due = "set"
        self._expires = self.sessions.now() + self.sessions.timeout
        self.sessions.store.save(self._sid, data, self._expires)
        self.modified = False

    def rotate(self) -> None:
        """Move the data to a new id (and cookie); the old id stops working."""
        data = self._loaded()
        if self._sid is not None:
            self.sessions.store.delete(self._sid)
            self._sid = None
        self.modified = bool(data)
        self.save()

    def expire(self) -> None:
        """Delete the session and its data; the client's cookie is removed."""
        self._loaded()
        if self._sid is not None:
            self.sessions.store.delete(self._sid)
            self._sid = None
            self.cookie_due = "delete"
        self._data = {}
        self.modified = False

    def stale(self) -> bool:
        """Whether it is stored and less than half of its time is left."""
        left = self._expires - self.sessions.now()
        return self._sid is not None and left < self.sessions.timeout / 2

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is None:
            self.save()

    def __repr__(self) -> str:
        return f"<Session {self._sid or 'new'} {self._data!r}>"


class Sessions(FilterComponent):
    """Gives the requests on its channel a ``request.session`` (see the module rules).

    ``name``: the cookie's name. ``store``: a :class:`Store` (or a class to make one);
    a :class:`MemoryStore` by default. ``timeout``: seconds a session lives after it was
    last saved. The cookie's ``path``, ``domain``, ``secure`` (None: when over TLS),
    ``httponly``, ``samesite`` and ``max_age`` (None: a browser session cookie).
    """

    def __init__(
        self,
        name: str = "session",
        store: Store | type[Any] | None = None,
        channel: Any = "web",
        *,
        timeout: float = 3600.0,
        path: str = "/",
        domain: str | None = None,
        secure: bool | None = None,
        httponly: bool = True,
        samesite: str | None = "Lax",
        max_age: int | None = None,
    ) -> None:
        """Check the options (``ValueError``/``TypeError`` saying what is wrong)."""
        super().__init__(channel=channel)
        if not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name):
            raise ValueError(f"invalid cookie name {name!r}")
        made = store() if isinstance(store, type) else store
        self.store: Store = made if made is not None else MemoryStore()
        if not isinstance(self.store, Store):
            raise TypeError(f"store must have load, save, delete and wall_clock: {made!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if samesite is not None and samesite not in _SAMESITE:
            raise ValueError(f"samesite is one of {_SAMESITE} or None, got {samesite!r}")
        if samesite == "None" and secure is False:
            raise ValueError("SameSite=None needs Secure cookies (secure=False given)")
        self.name = name
        self.timeout = timeout
        self.cookie = {"path": path, "domain": domain, "httponly": httponly}
        self.secure = secure
        self.samesite = samesite
        self.max_age = max_age

    def now(self) -> float:
        """The time on the store's clock."""
        return time.time() if self.store.wall_clock else self.loop.time()

    @handler("request", priority=10)
    def _on_request(self, event: Event, request: Request, response: Response) -> None:
        request.session = Session(self, request)

    def response_filter(self, response: Response, by_hand: bool) -> None:
        """Save a changed (or ageing) session, and set or delete its cookie."""
        request = response.request
        session = request.session if request is not None else None
        if not isinstance(session, Session) or session.sessions is not self:
            return
        if session.modified or (session._data is not None and session.stale()):
            session.save()
        due, session.cookie_due = session.cookie_due, None
        if due == "set" and session._sid is not None:
            self._set_cookie(response, request, session._sid, self.max_age)
        elif due == "delete":
            self._set_cookie(response, request, "", 0)

    def _set_cookie(
        self, response: Response, request: Request, value: str, max_age: int | None
    ) -> None:
        attributes: dict[str, Any] = {k: v for k, v in self.cookie.items() if v}
        secure = self.secure if self.secure is not None else request.scheme == "https"
        if secure or self.samesite == "None":
            attributes["secure"] = True
        if self.samesite is not None:
            attributes["samesite"] = self.samesite
        if max_age is not None:
            attributes["max_age"] = max_age
        response.set_cookie(self.name, value, **attributes)
