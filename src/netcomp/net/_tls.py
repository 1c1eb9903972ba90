"""TLS contexts from the options users pass (``ssl_context``, ``certfile``/``keyfile``)."""

from __future__ import annotations

import ssl

__all__ = ["client_context", "server_context"]


def server_context(
    ssl_context: ssl.SSLContext | None, certfile: str | None, keyfile: str | None
) -> ssl.SSLContext:
    """The context a TLS server uses: the one given, or one loaded from cert/key files."""
    if ssl_context is not None:
        return ssl_context
    if certfile is None:
        raise ValueError("a TLS server needs ssl_context= or certfile= (and keyfile=)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


def client_context(ssl_context: ssl.SSLContext | None) -> ssl.SSLContext:
    """The context a TLS client uses: the one given, or the verifying default."""
    if ssl_context is not None:
        return ssl_context
    return ssl.create_default_context()
