"""Where a Redis server is and how to log in: ``redis://`` and ``rediss://`` URLs.

``redis://[[username]:password@]host[:port][/db]``; ``rediss://`` is the same over TLS.
The password and username are percent-decoded; the port defaults to 6379, the database to 0.
``?db=N`` is accepted too. Anything else in the URL is refused, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["RedisAddress", "parse_url"]


@dataclass(frozen=True)
class RedisAddress:
    """A parsed Redis URL: ``host``, ``port``, ``tls``, ``username``, ``password``, ``db``."""

    host: str
    port: int = 6379
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0

    def __str__(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{host}:{self.port}/{self.db}"


def parse_url(url: str) -> RedisAddress:
    """Parse a ``redis://`` or ``rediss://`` URL; ``ValueError`` says what is wrong."""
    if not isinstance(url, str):
        raise TypeError(f"a Redis URL is a str such as 'redis://127.0.0.1:6379/0', got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"a Redis URL starts with redis:// or rediss://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in the Redis URL {url!r}")
    try:
        port = parts.port or 6379
    except ValueError as err:
        raise ValueError(f"bad port in the Redis URL {url!r}: {err}") from None
    db_text = parts.path.strip("/")
    query = dict(parse_qsl(parts.query))
    extra = set(query) - {"db"}
    if extra:
        raise ValueError(f"unknown options {sorted(extra)} in the Redis URL {url!r}")
    if "db" in query:
        if db_text:
            raise ValueError(f"the Redis URL {url!r} gives the database twice")
        db_text = query["db"]
    if db_text and not db_text.isdigit():
        raise ValueError(f"the database in a Redis URL is a number, got {db_text!r} in {url!r}")
    return RedisAddress(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "rediss",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        db=int(db_text) if db_text else 0,
    )
