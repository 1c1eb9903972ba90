"""Helpers shared by the tests of ``netcomp.net`` (the ``test_net_*`` files).

* Certificates are made with the ``openssl`` CLI once per session (skip without it).
* :func:`pump` drives a stdlib peer (plain or ``ssl``) from one thread with a selector:
  send a payload while reading the echo, optionally half-close, with a hard deadline.
* :class:`BioTLS` is a stdlib ``ssl`` (memory-BIO) client that can half-close a TLS link.
* :class:`StdServer` is a tiny threaded stdlib server (echo by default) for netcomp clients.
* :class:`Inbox` collects the ``read`` data of one channel and waits for an amount of it.
Nothing here sleeps to synchronise: every wait is on a condition or a selector with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import random
import selectors
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netcomp import BaseComponent, Event, handler

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
_CERTS: dict[str, tuple[str, str]] = {}
_CERT_LOCK = threading.Lock()
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def cert_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed cert for localhost/127.0.0.1/::1 and its key, made once per session."""
    with _CERT_LOCK:
        if "pair" in _CERTS:
            return _CERTS["pair"]
        if not os.path.exists(OPENSSL):
            pytest.skip("the openssl CLI is not installed: cannot make a test certificate")
        folder = tmp_path_factory.mktemp("certs")
        cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
        subprocess.run(
            [
                OPENSSL,
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                key,
                "-out",
                cert,
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        _CERTS["pair"] = (cert, key)
        return cert, key


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def client_ssl_context(cert: str) -> ssl.SSLContext:
    """A verifying client context that trusts the test certificate."""
    return ssl.create_default_context(cafile=cert)


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextlib.contextmanager
def short_dir() -> Iterator[Path]:
    """A short temporary directory (UNIX socket paths must stay under ~100 bytes)."""
    path = tempfile.mkdtemp(prefix="nc", dir="/tmp")
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def payload(size: int, seed: int = 1) -> bytes:
    """Random bytes: any loss, duplication or reordering changes them."""
    return random.Random(seed).randbytes(size)


def on(channel: Any) -> Callable[[Event], bool]:
    """A ``wait_for`` predicate: the event was fired on exactly ``channel``."""
    return lambda event: event.channels == (channel,)


def shut_write(sock: Any) -> None:
    """Half-close: no more data from us (TLS: close_notify, then FIN; reading goes on)."""
    if isinstance(sock, BioTLS):
        sock.shut_write()
    elif isinstance(sock, ssl.SSLSocket):
        # A blocking ssl socket: only for a peer that expects nothing more to read.
        with contextlib.suppress(OSError, ValueError):
            sock.unwrap()
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_WR)
    else:
        sock.shutdown(socket.SHUT_WR)


class BioTLS:
    """A non-blocking TLS client over ``ssl.MemoryBIO``: it can half-close.

    ``SSLSocket.unwrap()`` reads (and loses) the records that follow the peer's data, so a
    TLS half-close that keeps receiving needs the memory-BIO API: close_notify is sent when
    no record is waiting, and reading goes on after it.
    """

    def __init__(
        self,
        raw: socket.socket,
        context: ssl.SSLContext,
        server_hostname: str | None,
        timeout: float = 10.0,
    ) -> None:
        self.raw = raw
        raw.setblocking(False)
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname)
        self.pending = bytearray()
        self.stash = bytearray()
        self.fin_wanted = False
        self.fin_sent = False
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(raw, selectors.EVENT_READ)
            while True:
                try:
                    self.tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._flush()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("TLS handshake timed out") from None
                    selector.select(remaining)
                    self._fill()
        self._flush()

    def fileno(self) -> int:
        return self.raw.fileno()

    def setblocking(self, flag: bool) -> None:
        """Always non-blocking."""

    @property
    def wants_write(self) -> bool:
        return bool(self.pending) or (self.fin_wanted and not self.fin_sent)

    def _flush(self) -> None:
        self.pending += self.outgoing.read()
        while self.pending:
            try:
                sent = self.raw.send(self.pending)
            except (BlockingIOError, InterruptedError):
                return
            del self.pending[:sent]
        if self.fin_wanted and not self.fin_sent:
            self.raw.shutdown(socket.SHUT_WR)
            self.fin_sent = True

    def _fill(self) -> None:
        while True:
            try:
                data = self.raw.recv(256 * 1024)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                self.incoming.write_eof()
                return
            self.incoming.write(data)

    def send(self, data: bytes | memoryview) -> int:
        self._flush()
        if len(self.pending) > 1024 * 1024:
            raise BlockingIOError("the kernel is not taking our output")
        written = self.tls.write(data)
        self._flush()
        return written

    def _read_all(self) -> bool:
        """Decrypt what arrived into ``stash``; True at the peer's close (or cut)."""
        self._fill()
        while True:
            try:
                data = self.tls.read(256 * 1024)
            except ssl.SSLWantReadError:
                return False
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                return True
            if not data:
                return True
            self.stash += data

    def recv(self, size: int) -> bytes:
        self._flush()
        closed = self._read_all()
        if self.stash:
            data = bytes(self.stash[:size])
            del self.stash[:size]
            return data
        if closed:
            return b""
        raise BlockingIOError("nothing to read yet")

    def shut_write(self) -> None:
        self._read_all()  # no whole record may wait: the shutdown would swallow it
        with contextlib.suppress(ssl.SSLWantReadError):
            self.tls.unwrap()
        self.fin_wanted = True
        self._flush()

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> BioTLS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pump(
    sock: Any,
    data: bytes,
    expect: int | None = None,
    half_close: bool = False,
    until_eof: bool = False,
    timeout: float = 20.0,
    chunk: int = 256 * 1024,
) -> tuple[bytes, bool]:
    """Send ``data`` while receiving; returns (received, saw_eof).

    Stops once ``expect`` bytes (default ``len(data)``) arrived, or at EOF with
    ``until_eof``. ``half_close`` shuts our write side once everything was sent.
    One thread, non-blocking, so it works for ``ssl`` sockets too.
    """
    expect = len(data) if expect is None else expect
    sock.setblocking(False)
    view = memoryview(data)
    sent = 0
    got = bytearray()
    eof = False
    shut = False
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while True:
            if sent >= len(data) and half_close and not shut:
                shut_write(sock)
                shut = True
            if eof or (not until_eof and len(got) >= expect):
                break
            mask = selectors.EVENT_READ
            if sent < len(data) or getattr(sock, "wants_write", False):
                mask |= selectors.EVENT_WRITE
            selector.modify(sock, mask)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"pump: sent {sent}/{len(data)}, received {len(got)}/{expect}, eof={eof}"
                )
            selector.select(remaining)
            if sent < len(data):
                with contextlib.suppress(*_WOULD_BLOCK):
                    sent += sock.send(view[sent : sent + chunk])
            while True:
                try:
                    more = sock.recv(chunk)
                except _WOULD_BLOCK:
                    break
                except ConnectionResetError:
                    eof = True
                    break
                if not more:
                    eof = True
                    break
                got += more
    return bytes(got), eof


def std_connect(
    family: socket.AddressFamily,
    address: Any,
    context: ssl.SSLContext | None = None,
    server_hostname: str | None = "localhost",
    bio: bool = False,
) -> Any:
    """A stdlib client socket: blocking (TLS-wrapped and handshaken with ``context``), or
    with ``bio`` and a context, a :class:`BioTLS` (which can half-close)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(address)
        if context is not None:
            if bio:
                return BioTLS(sock, context, server_hostname)
            return context.wrap_socket(sock, server_hostname=server_hostname)
    except BaseException:
        sock.close()
        raise
    return sock


def echo_handler(conn: socket.socket) -> None:
    """Echo until EOF (then the server side closes)."""
    while True:
        data = conn.recv(256 * 1024)
        if not data:
            return
        conn.sendall(data)


class StdServer:
    """A threaded blocking stdlib server: ``handler(conn)`` runs per connection.

    ``close()`` stops accepting and joins every thread (bounded).
    """

    def __init__(
        self,
        family: socket.AddressFamily,
        address: Any,
        handler: Callable[[socket.socket], None] = echo_handler,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        if family != socket.AF_UNIX:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(address)
        self.listener.listen(64)
        self.address = self.listener.getsockname()
        self.handler = handler
        self.context = context
        self.errors: list[BaseException] = []
        self.served = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(15)
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            self.handler(conn)
        except OSError as err:
            with self._lock:
                self.errors.append(err)
        finally:
            conn.close()
            with self._lock:
                self.served += 1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        self._acceptor.join(5)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(15)
        assert not self._acceptor.is_alive(), "the stdlib server's acceptor did not end"
        assert not any(t.is_alive() for t in threads), "a stdlib server thread did not end"

    def __enter__(self) -> StdServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Inbox(BaseComponent):
    """Collects the data of ``read`` events on one channel (client or server shape)."""

    def init(self, channel: Any) -> None:
        self.channel = channel
        self.data = bytearray()
        self.reads = 0
        self._cond = threading.Condition()

    @handler("read")
    def _on_read(self, *args: Any) -> None:
        with self._cond:
            self.data += args[-1]
            self.reads += 1
            self._cond.notify_all()

    def wait_size(self, size: int, timeout: float = 20.0) -> bytes:
        """Block until at least ``size`` bytes arrived; returns what arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.data) < size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"received {len(self.data)} of {size} bytes")
                self._cond.wait(remaining)
            return bytes(self.data)

    def size(self) -> int:
        with self._cond:
            return len(self.data)
