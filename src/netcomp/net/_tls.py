"""TLS for the net layer: contexts from the options users pass (``ssl_context``,
``certfile``/``keyfile``), and :class:`TLSLayer`, TLS without I/O.

Rules:
* The socket stays a plain non-blocking socket; TLS is an ``ssl.SSLObject`` between two
  ``ssl.MemoryBIO``: the connection feeds it the bytes it receives and sends the bytes it
  produces (handshake, records, alerts, close_notify). Nothing here touches a socket, so
  nothing here can block or leak a descriptor.
* A peer that closes without close_notify (a truncated stream: a FIN, or a reset) reads as
  an EOF, like a clean close_notify, as the ssl module's "ragged EOFs": many real peers do
  it (a client that closes with session tickets unread makes its kernel send a reset), and
  the application sees where its data ended.
"""

from __future__ import annotations

import ssl

__all__ = ["TLSLayer", "client_context", "server_context"]

_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


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


def client_context(
    ssl_context: ssl.SSLContext | None,
    ca_certs: str | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> ssl.SSLContext:
    """The context a TLS client uses: the one given, or the verifying default.

    ``ca_certs`` (CAs to trust instead of the system's), ``certfile`` and ``keyfile`` (the
    client's own certificate) make a verifying context with them (circuits' ``connect``
    keywords); they do not go with a context of the user's, which says all of that itself.
    """
    if ca_certs is None and certfile is None and keyfile is None:
        return ssl_context if ssl_context is not None else ssl.create_default_context()
    if ssl_context is not None:
        raise TypeError("give the client ssl_context= or connect(ca_certs=, certfile=), not both")
    if keyfile is not None and certfile is None:
        raise TypeError("keyfile= needs certfile= (the certificate it is the key of)")
    context = ssl.create_default_context(cafile=ca_certs)
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    return context


class TLSLayer:
    """One TLS session over memory buffers (sans I/O, as asyncio's sslproto).

    ``feed``/``feed_eof`` what the socket received; ``handshake()`` until it is True;
    ``read_into`` the plaintext; ``encrypt`` what to send; ``output()`` is what TLS itself
    has to send (handshake flights, tickets, alerts) and must be sent after each call.
    ``ssl.SSLError`` (and ``ValueError`` for a misused context) report a failed session.
    """

    __slots__ = ("_deferred", "_incoming", "_obj", "_outgoing", "peer_closed")

    def __init__(
        self, context: ssl.SSLContext, server_side: bool, server_hostname: str | None
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._obj = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
        )
        #: The peer ended its stream (close_notify, or a cut without it).
        self.peer_closed = False
        self._deferred: BaseException | None = None  # an error met after some plaintext

    def handshake(self) -> bool:
        """Advance the handshake with what was fed; True once it is done."""
        try:
            self._obj.do_handshake()
        except _WANT:
            return False
        return True

    def feed(self, data: bytes | memoryview) -> None:
        """Bytes received from the peer."""
        self._incoming.write(data)

    def feed_eof(self) -> None:
        """The peer closed its side of the socket."""
        self._incoming.write_eof()

    def read_into(self, view: memoryview) -> int:
        """Decrypt what was fed into ``view``; the count of bytes (0: none now).

        At the peer's end of stream it sets :attr:`peer_closed` and returns 0. An error met
        after some bytes were decrypted is raised by the next call, so that those bytes are
        delivered first.
        """
        deferred = self._deferred
        if deferred is not None:
            self._deferred = None
            raise deferred
        if self.peer_closed:
            return 0
        obj = self._obj
        size = len(view)
        count = 0
        try:
            while count < size:
                # With a buffer, read() returns a count (typeshed says bytes).
                got: int = obj.read(size - count, view[count:])  # type: ignore[assignment]
                if not got:  # close_notify: the clean end of the stream
                    self.peer_closed = True
                    break
                count += got
        except _WANT:
            pass
        except ssl.SSLEOFError:  # cut without close_notify: read as the end of the stream
            self.peer_closed = True
        except (ssl.SSLError, ValueError) as err:
            if not count:
                raise
            self._deferred = err
        return count

    @property
    def pending(self) -> bool:
        """Whether something received waits to be read: bytes, an error, or the end."""
        incoming = self._incoming
        return bool(
            incoming.pending
            or incoming.eof
            or self._obj.pending()
            or self._deferred
            or self.peer_closed
        )

    def encrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        """The records carrying ``data`` (and anything else TLS had to send first)."""
        view = memoryview(data)
        while view:
            written = self._obj.write(view)
            view = view[written:]
        return self._outgoing.read()

    def output(self) -> bytes:
        """What TLS has to send now (empty if nothing)."""
        outgoing = self._outgoing
        return outgoing.read() if outgoing.pending else b""

    def close_notify(self) -> bytes:
        """Our close_notify alert, to send after the last record (we do not wait for the
        peer's: the socket's FIN and linger do that)."""
        try:
            self._obj.unwrap()
        except _WANT:
            pass
        except (ssl.SSLError, ValueError):
            pass  # the session already failed or ended: nothing more to say
        return self.output()
