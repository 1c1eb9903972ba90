"""TLS specifics: STARTTLS on both sides, certificate verification by default, and a
handshake timeout that never holds up other connections."""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from _net_support import (
    Inbox,
    StdServer,
    cert_files,
    client_ssl_context,
    on,
    pump,
    server_ssl_context,
    std_connect,
)
from netcomp import Component, Manager
from netcomp.net import (
    ConnectionState,
    HandshakeTimeout,
    TCPClient,
    TCPServer,
    connect,
    starttls,
    write,
)
from netcomp.net._tls import TLSLayer, client_context
from netcomp.testing import Recorder, VirtualTime, running

STEP = 2.0**-10  # "just before a deadline"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return cert_files(tmp_path_factory)


class Relay:
    """A one-connection TCP relay that records every byte the client sends."""

    def __init__(self, target: Any) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.target = target
        self.upstream = bytearray()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.listener.settimeout(10)
            client, _ = self.listener.accept()
            server = socket.create_connection(self.target, timeout=10)
            with client, server, selectors.DefaultSelector() as selector:
                selector.register(client, selectors.EVENT_READ, server)
                selector.register(server, selectors.EVENT_READ, client)
                deadline = time.monotonic() + 20
                open_ends = 2
                while open_ends and not self._stop.is_set() and time.monotonic() < deadline:
                    for key, _mask in selector.select(0.05):
                        source: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = source.recv(65536)
                        if source is client:
                            self.upstream += data
                        if data:
                            key.data.sendall(data)
                        else:
                            selector.unregister(source)
                            with contextlib.suppress(OSError):
                                key.data.shutdown(socket.SHUT_WR)
                            open_ends -= 1
        except OSError as err:
            self.error = err

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.listener.close()
        assert not self._thread.is_alive()


class StartTLSServer(Component):
    """Plaintext until ``STARTTLS``, then answers ``OK`` and upgrades; echoes after that."""

    def init(self, channel: str) -> None:
        self.channel = channel
        self.upgraded: set[Any] = set()

    def read(self, sock: socket.socket, data: bytes) -> bytes | None:
        if sock in self.upgraded:
            return data
        if data == b"STARTTLS\r\n":
            self.upgraded.add(sock)
            self.fire(write(sock, b"OK\r\n"))
            self.fire(starttls(sock))
            return None
        return b"plain:" + data


class StartTLSClient(Component):
    """Asks for STARTTLS once connected; upgrades on ``OK``; records what it reads after."""

    def init(self, channel: str) -> None:
        self.channel = channel
        self.secure_data = bytearray()
        self.upgraded = False

    def read(self, data: bytes) -> None:
        if self.upgraded:
            self.secure_data += data
        elif data == b"OK\r\n":
            self.upgraded = True
            self.fire(starttls())


def plain_server_with_tls(manager: Manager, certs: tuple[str, str], **options: Any) -> TCPServer:
    server = TCPServer(
        ("127.0.0.1", 0),
        secure=False,
        ssl_context=server_ssl_context(*certs),
        channel="srv",
        **options,
    )
    server.register(manager)
    return server


def test_starttls_between_netcomp_client_and_server(certs: tuple[str, str]) -> None:
    manager = Manager()
    server = plain_server_with_tls(manager, certs)
    StartTLSServer(channel="srv").register(manager)
    client = TCPClient(channel="cli", ssl_context=client_ssl_context(certs[0]))
    client.register(manager)
    inbox = Inbox("cli")
    inbox.register(manager)
    relay = Relay(server.bind)
    try:
        with running(manager) as recorder:
            manager.fire(connect(*relay.address), "cli")
            recorder.wait_for("connected", predicate=on("cli"))
            manager.fire(write(b"hello"), "cli")
            assert inbox.wait_size(len(b"plain:hello")) == b"plain:hello"
            manager.fire(write(b"STARTTLS\r\n"), "cli")
            inbox.wait_size(len(b"plain:helloOK\r\n"))
            manager.fire(starttls(), "cli")
            # Both ends did their handshake: connected / connect fire again.
            recorder.wait_for("connected", predicate=on("cli"), count=2)
            recorder.wait_for("connect", predicate=on("srv"), count=2)
            sock = recorder.wait_for("connect", predicate=on("srv")).args[0]
            assert server.connections == [sock]  # the handle survives the upgrade
            upgraded = server._connections[sock]
            assert upgraded.tls and upgraded.state is ConnectionState.OPEN
            assert upgraded.sock is sock  # TLS runs over the plain socket (memory BIOs)
            manager.fire(write(b"top secret"), "cli")
            assert inbox.wait_size(len(b"plain:helloOK\r\ntop secret")).endswith(b"top secret")
    finally:
        relay.close()
    assert relay.error is None
    assert b"STARTTLS" in relay.upstream  # plaintext before the upgrade...
    assert b"top secret" not in relay.upstream  # ...and encrypted after it


def test_starttls_on_the_server_with_a_stdlib_peer(certs: tuple[str, str]) -> None:
    manager = Manager()
    server = plain_server_with_tls(manager, certs)
    StartTLSServer(channel="srv").register(manager)
    with running(manager) as recorder:
        with std_connect(socket.AF_INET, server.bind) as raw:
            assert pump(raw, b"hi", timeout=5)[0] == b"plain:hi"
            assert pump(raw, b"STARTTLS\r\n", expect=4, timeout=5)[0] == b"OK\r\n"
            raw.setblocking(True)
            raw.settimeout(10)
            context = client_ssl_context(certs[0])
            with context.wrap_socket(raw, server_hostname="localhost") as secure:
                assert pump(secure, b"over tls", timeout=5)[0] == b"over tls"
                assert secure.version() is not None
        recorder.wait_for("disconnect", predicate=on("srv"))
        assert recorder.count("connect") == 2


def test_starttls_on_the_client_with_a_stdlib_server(certs: tuple[str, str]) -> None:
    context = server_ssl_context(*certs)

    def upgrade_then_echo(conn: socket.socket) -> None:
        assert conn.recv(100) == b"STARTTLS\r\n"
        conn.sendall(b"OK\r\n")
        with context.wrap_socket(conn, server_side=True) as secure:
            while data := secure.recv(65536):
                secure.sendall(b"tls:" + data)

    manager = Manager()
    TCPClient(channel="cli", ssl_context=client_ssl_context(certs[0])).register(manager)
    app = StartTLSClient(channel="cli")
    app.register(manager)
    with (
        StdServer(socket.AF_INET, ("127.0.0.1", 0), upgrade_then_echo) as peer,
        running(manager) as recorder,
    ):
        manager.fire(connect("127.0.0.1", peer.address[1]), "cli")
        recorder.wait_for("connected", predicate=on("cli"))
        manager.fire(write(b"STARTTLS\r\n"), "cli")
        recorder.wait_for("connected", predicate=on("cli"), count=2)
        manager.fire(write(b"ping"), "cli")
        recorder.wait_for("read", predicate=lambda e: e.args == (b"tls:ping",))
    assert bytes(app.secure_data) == b"tls:ping"
    assert peer.errors == []


# ------------------------------------------------------------- verification


def unreachable_reason(manager: Manager, recorder: Recorder, port: int) -> BaseException:
    manager.fire(connect("127.0.0.1", port), "cli")
    event = recorder.wait_for("unreachable", predicate=on("cli"))
    assert "connected" not in recorder.names_seen()
    reason: BaseException = event.args[2]
    return reason


def test_client_verifies_the_server_certificate_by_default(certs: tuple[str, str]) -> None:
    manager = Manager()
    server = TCPServer(("127.0.0.1", 0), ssl_context=server_ssl_context(*certs), channel="srv")
    server.register(manager)
    TCPClient(channel="cli", secure=True).register(manager)  # no cafile: system CAs only
    with running(manager) as recorder:
        reason = unreachable_reason(manager, recorder, server.port)  # type: ignore[arg-type]
    assert isinstance(reason, ssl.SSLCertVerificationError)
    assert "self-signed" in str(reason) or "self signed" in str(reason)


def test_client_checks_the_server_name(certs: tuple[str, str]) -> None:
    manager = Manager()
    server = TCPServer(("127.0.0.1", 0), ssl_context=server_ssl_context(*certs), channel="srv")
    server.register(manager)
    TCPClient(
        channel="cli",
        secure=True,
        ssl_context=client_ssl_context(certs[0]),
        server_hostname="not-the-server.example",
    ).register(manager)
    with running(manager) as recorder:
        reason = unreachable_reason(manager, recorder, server.port)  # type: ignore[arg-type]
    assert isinstance(reason, ssl.SSLCertVerificationError)


def test_client_trusting_the_certificate_connects(certs: tuple[str, str]) -> None:
    manager = Manager()
    server = TCPServer(("127.0.0.1", 0), certfile=certs[0], keyfile=certs[1], channel="srv")
    server.register(manager)
    TCPClient(channel="cli", secure=True, ssl_context=client_ssl_context(certs[0])).register(
        manager
    )
    with running(manager) as recorder:
        manager.fire(connect("localhost", server.port), "cli")
        event = recorder.wait_for("connected", predicate=on("cli"))
    assert event.args == ("localhost", server.port)
    assert server.secure


# --------------------------------------------------------- handshake timeout


@pytest.fixture
def stalled_server(certs: tuple[str, str]) -> Iterator[tuple[Manager, TCPServer, VirtualTime]]:
    """A TLS echo server with a 0.5 s handshake timeout, on virtual time."""
    manager = Manager()
    vt = VirtualTime(manager.loop)
    server = TCPServer(
        ("127.0.0.1", 0),
        ssl_context=server_ssl_context(*certs),
        handshake_timeout=0.5,
        channel="srv",
    )
    server.register(manager)

    class Echo(Component):
        def read(self, sock: socket.socket, data: bytes) -> bytes:
            return data

    Echo(channel="srv").register(manager)
    yield manager, server, vt


def _open_and_quiet(sock: socket.socket) -> bool:
    """Nothing to read and no EOF on ``sock`` (a peek that does not wait)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(timeout)
    return False


@pytest.mark.parametrize("stall", ["silent", "partial hello"])
def test_stalled_handshake_times_out_without_delaying_others(
    stalled_server: tuple[Manager, TCPServer, VirtualTime], certs: tuple[str, str], stall: str
) -> None:
    manager, server, vt = stalled_server
    context = client_ssl_context(certs[0])
    with running(manager) as recorder:
        with std_connect(socket.AF_INET, server.bind) as stalled:
            if stall == "partial hello":
                stalled.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello that stops
            vt.wait_timer(0.5)  # accepted: its handshake must end by then
            # Meanwhile other clients are served at once: no time passes for them.
            for _ in range(3):
                with std_connect(socket.AF_INET, server.bind, context) as good:
                    assert pump(good, b"not delayed", timeout=5)[0] == b"not delayed"
            assert vt.now == 0.0
            assert "error" not in recorder.names_seen()
            vt.advance_to(0.5 - STEP)
            assert _open_and_quiet(stalled)
            # The stalled one is closed once the handshake timeout expires.
            vt.advance_to(0.5)
            leftover, eof = pump(stalled, b"", until_eof=True, timeout=5)
        assert eof and leftover == b""
        failure = recorder.wait_for("error", predicate=on("srv"))
        assert isinstance(failure.args[1], HandshakeTimeout)
        recorder.wait_for("disconnect", predicate=on("srv"), count=3)
        assert recorder.count("connect") == 3  # the stalled socket was never "connected"
        assert server.connections == []


def test_failed_starttls_on_the_server_is_error_then_disconnect(certs: tuple[str, str]) -> None:
    manager = Manager()
    server = plain_server_with_tls(manager, certs)
    StartTLSServer(channel="srv").register(manager)
    with running(manager) as recorder:
        with std_connect(socket.AF_INET, server.bind) as raw:
            assert pump(raw, b"STARTTLS\r\n", expect=4, timeout=5)[0] == b"OK\r\n"
            sock = recorder.wait_for("connect", predicate=on("srv")).args[0]
            raw.sendall(b"this is no ClientHello\r\n\r\n")
            failed = recorder.wait_for("error", predicate=on("srv"))
            gone = recorder.wait_for("disconnect", predicate=on("srv"))
        assert failed.args[0] is sock and isinstance(failed.args[1], ssl.SSLError)
        assert gone.args == (sock,)
        assert recorder.events.index(failed) < recorder.events.index(gone)
        assert server.connections == []


def test_failed_starttls_on_the_client_is_error_then_disconnected(
    certs: tuple[str, str],
) -> None:
    def answer_garbage(conn: socket.socket) -> None:
        assert conn.recv(100) == b"STARTTLS\r\n"
        conn.sendall(b"OK\r\n")
        conn.recv(4096)  # the ClientHello
        conn.sendall(b"HTTP/1.0 400 no TLS here\r\n\r\n")

    manager = Manager()
    TCPClient(channel="cli", ssl_context=client_ssl_context(certs[0])).register(manager)
    StartTLSClient(channel="cli").register(manager)
    with (
        StdServer(socket.AF_INET, ("127.0.0.1", 0), answer_garbage) as peer,
        running(manager) as recorder,
    ):
        manager.fire(connect("127.0.0.1", peer.address[1]), "cli")
        recorder.wait_for("connected", predicate=on("cli"))
        manager.fire(write(b"STARTTLS\r\n"), "cli")
        failed = recorder.wait_for("error", predicate=on("cli"))
        gone = recorder.wait_for("disconnected", predicate=on("cli"))
    assert isinstance(failed.args[0], ssl.SSLError)
    assert recorder.events.index(failed) < recorder.events.index(gone)
    assert "unreachable" not in recorder.names_seen()


# ------------------------------------------------- connect options are never ignored


def test_connect_with_circuits_ssl_spelling_connects_over_tls(certs: tuple[str, str]) -> None:
    """``connect(host, port, ssl=True)`` (circuits' spelling) must not connect in plaintext."""
    manager = Manager()
    server = TCPServer(("127.0.0.1", 0), ssl_context=server_ssl_context(*certs), channel="srv")
    server.register(manager)
    client = TCPClient(channel="cli", ssl_context=client_ssl_context(certs[0]))
    client.register(manager)
    with running(manager) as recorder:
        manager.fire(connect("127.0.0.1", server.port, ssl=True), "cli")
        recorder.wait_for("connected", predicate=on("cli"))
        # The server announces a connection only once its TLS handshake is done.
        recorder.wait_for("connect", predicate=on("srv"))
        assert "error" not in recorder.names_seen()
    assert client.secure


def test_connect_with_circuits_ca_certs_trusts_that_ca(certs: tuple[str, str]) -> None:
    """``connect(host, port, secure=True, ca_certs=...)``: verified against that CA file."""
    manager = Manager()
    server = TCPServer(("127.0.0.1", 0), ssl_context=server_ssl_context(*certs), channel="srv")
    server.register(manager)
    TCPClient(channel="cli").register(manager)
    with running(manager) as recorder:
        manager.fire(connect("127.0.0.1", server.port, secure=True, ca_certs=certs[0]), "cli")
        recorder.wait_for("connected", predicate=on("cli"))
        recorder.wait_for("connect", predicate=on("srv"))
        assert "error" not in recorder.names_seen()


def test_connect_with_circuits_certfile_presents_a_client_certificate(
    certs: tuple[str, str],
) -> None:
    context = server_ssl_context(*certs)
    context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
    context.load_verify_locations(certs[0])
    manager = Manager()
    server = TCPServer(("127.0.0.1", 0), ssl_context=context, channel="srv")
    server.register(manager)
    TCPClient(channel="cli").register(manager)
    files = {"ca_certs": certs[0], "certfile": certs[0], "keyfile": certs[1]}
    with running(manager) as recorder:
        manager.fire(connect("127.0.0.1", server.port, secure=True, **files), "cli")
        recorder.wait_for("connected", predicate=on("cli"))
        sock = recorder.wait_for("connect", predicate=on("srv")).args[0]
        assert sock in server.connections


def test_circuits_tls_files_do_not_go_with_a_context_of_ones_own(
    certs: tuple[str, str],
) -> None:
    with pytest.raises(TypeError, match="not both"):
        client_context(client_ssl_context(certs[0]), ca_certs=certs[0])
    assert client_context(None).verify_mode is ssl.CERT_REQUIRED  # the default verifies


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"timeout": 3}, ["timeout"]),
        ({"certfile": "x.pem"}, ["certfile", "without secure=True"]),
        ({"ssl": False, "ca_certs": "ca.pem"}, ["ca_certs", "without secure=True"]),
        ({"secure": True, "ssl": False}, ["secure", "ssl"]),
        ({"secure": True, "keyfile": "k.pem"}, ["keyfile= needs certfile="]),
    ],
    ids=["unknown", "files-without-tls", "files-with-ssl-false", "conflicting", "key-alone"],
)
def test_connect_refuses_ignored_options(options: dict[str, Any], words: list[str]) -> None:
    manager = Manager()
    TCPClient(channel="cli").register(manager)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with running(manager, check_errors=False) as recorder:
            value = manager.fire(connect("127.0.0.1", port, **options), "cli")
            recorder.wait_for("exception")
            recorder.wait_for("connect", predicate=lambda e: e.value is value and value.done)
            assert isinstance(value.exception, TypeError)
            for word in words:
                assert word in str(value.exception)
            assert "connected" not in recorder.names_seen()


# ---------------------------------------- resets and truncation: no leak, EOF not error

_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


def open_fds() -> int:
    gc.collect()  # a socket that an earlier test dropped may close now: not later, mid-count
    return len(os.listdir("/proc/self/fd"))


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc")


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    sock.close()


def client_hello(context: ssl.SSLContext) -> tuple[bytes, Any, Any]:
    """The first flight of a TLS client (and its memory-BIO state)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read(), incoming, tls


@needs_proc
def test_peers_resetting_during_the_server_handshake_leak_no_descriptor(
    certs: tuple[str, str],
) -> None:
    manager = Manager()
    server = TCPServer(("127.0.0.1", 0), ssl_context=server_ssl_context(*certs), channel="srv")
    server.register(manager)
    context = client_ssl_context(certs[0])
    rounds = 8
    with running(manager) as recorder:
        before = open_fds()
        for _ in range(rounds):
            # At once (often before the server accepts), mid ClientHello, and after the
            # ServerHello (the server waits for our Finished).
            reset(socket.create_connection(server.bind, timeout=5))
            hello, _incoming, _tls = client_hello(context)
            with socket.create_connection(server.bind, timeout=5) as peer:
                peer.sendall(hello[: len(hello) // 2])
                reset(peer)
            with socket.create_connection(server.bind, timeout=5) as peer:
                peer.sendall(hello)
                assert peer.recv(65536), "no ServerHello"
                reset(peer)
        recorder.wait_for("error", predicate=on("srv"), count=3 * rounds, timeout=10)
        assert server.connections == []
        assert open_fds() == before
    assert recorder.count("connect") == 0


class Refusing(TCPServer):
    """A TLS server that tells plaintext peers what it speaks."""

    class Echo(Component):
        def read(self, sock: socket.socket, data: bytes) -> bytes:
            return data

    def plaintext_answer(self, conn: Any, greeting: bytes) -> bytes | None:
        return b"speak TLS, not " + greeting[:5] + b"\n" if greeting.startswith(b"HELO") else None


def test_a_tls_servers_answer_to_a_plaintext_peer_goes_out_in_clear(
    certs: tuple[str, str],
) -> None:
    """The hook's bytes reach the peer before the close; a peer it has no answer for is
    a failed handshake, as before; TLS peers are served as usual."""
    manager = Manager()
    server = Refusing(("127.0.0.1", 0), ssl_context=server_ssl_context(*certs), channel="srv")
    server.register(manager)
    Refusing.Echo(channel="srv").register(manager)
    with running(manager) as recorder:
        with socket.create_connection(server.bind, timeout=5) as peer:
            peer.sendall(b"HELO there\r\n")
            assert peer.recv(100) == b"speak TLS, not HELO \n"
            assert peer.recv(100) == b""  # then a clean close (FIN)
        with socket.create_connection(server.bind, timeout=5) as peer:
            peer.sendall(b"EHLO there\r\n")
            assert peer.recv(100) == b""
        recorder.wait_for("error", predicate=on("srv"))  # the second one only
        context = client_ssl_context(certs[0])
        with context.wrap_socket(
            socket.create_connection(server.bind, timeout=5), server_hostname="localhost"
        ) as tls:
            tls.sendall(b"ping")
            assert tls.recv(100) == b"ping"
    assert recorder.count("error") == 1
    assert server.connections == []


@needs_proc
def test_servers_resetting_during_the_client_handshake_leak_no_descriptor(
    certs: tuple[str, str],
) -> None:
    rounds = 12
    served = threading.Semaphore(0)

    def reset_all(listener: socket.socket) -> None:
        for number in range(rounds):
            peer, _ = listener.accept()
            if number % 2:
                peer.recv(65536)  # the ClientHello
            reset(peer)
            served.release()

    manager = Manager()
    TCPClient(channel="cli", secure=True, ssl_context=client_ssl_context(certs[0])).register(
        manager
    )
    with socket.create_server(("127.0.0.1", 0)) as listener, running(manager) as recorder:
        listener.settimeout(10)
        before = open_fds()
        thread = threading.Thread(target=reset_all, args=(listener,), daemon=True)
        thread.start()
        for number in range(1, rounds + 1):
            manager.fire(connect(*listener.getsockname()), "cli")
            event = recorder.wait_for("unreachable", predicate=on("cli"), count=number)
            assert isinstance(event.args[2], OSError)
            assert served.acquire(timeout=10)
        thread.join(10)
        assert not thread.is_alive()
        assert open_fds() == before
    assert "connected" not in recorder.names_seen()


def test_a_tls_client_that_closes_without_close_notify_is_an_eof(
    certs: tuple[str, str],
) -> None:
    manager = Manager()
    server = TCPServer(("127.0.0.1", 0), ssl_context=server_ssl_context(*certs), channel="srv")
    server.register(manager)
    inbox = Inbox("srv")
    inbox.register(manager)
    with running(manager) as recorder:
        secure = std_connect(socket.AF_INET, server.bind, client_ssl_context(certs[0]))
        secure.sendall(b"last words")
        inbox.wait_size(len(b"last words"))
        secure.close()  # SSLSocket.close() sends no close_notify: a truncated stream
        recorder.wait_for("disconnect", predicate=on("srv"))
    assert bytes(inbox.data) == b"last words"
    assert "error" not in recorder.names_seen()


def test_a_tls_server_that_closes_without_close_notify_is_an_eof(
    certs: tuple[str, str],
) -> None:
    def say_and_cut(conn: socket.socket) -> None:
        conn.sendall(b"bye")  # then StdServer closes it: no close_notify

    manager = Manager()
    TCPClient(channel="cli", secure=True, ssl_context=client_ssl_context(certs[0])).register(
        manager
    )
    inbox = Inbox("cli")
    inbox.register(manager)
    context = server_ssl_context(*certs)
    with (
        StdServer(socket.AF_INET, ("127.0.0.1", 0), say_and_cut, context) as peer,
        running(manager) as recorder,
    ):
        manager.fire(connect("localhost", peer.address[1]), "cli")
        recorder.wait_for("disconnected", predicate=on("cli"))
    assert bytes(inbox.data) == b"bye"
    assert "error" not in recorder.names_seen()
    assert peer.errors == []


class BulkThenStartTLS(Component):
    """On ``STARTTLS``: writes a large plaintext answer, then upgrades at once; echoes after."""

    def init(self, channel: str, bulk: bytes) -> None:
        self.channel = channel
        self.bulk = bulk
        self.upgraded: set[Any] = set()

    def read(self, sock: socket.socket, data: bytes) -> bytes | None:
        if sock in self.upgraded:
            return data
        if data == b"STARTTLS\r\n":
            self.upgraded.add(sock)
            self.fire(write(sock, self.bulk + b"OK\r\n"))
            self.fire(starttls(sock))
        return None


def test_plaintext_still_buffered_when_starttls_begins_goes_out_first_in_plaintext(
    certs: tuple[str, str],
) -> None:
    bulk = b"p" * (8 * 1024 * 1024)  # more than the kernel takes at once: it is buffered
    manager = Manager()
    server = plain_server_with_tls(manager, certs)
    BulkThenStartTLS(channel="srv", bulk=bulk).register(manager)
    with running(manager), std_connect(socket.AF_INET, server.bind) as raw:
        got, _eof = pump(raw, b"STARTTLS\r\n", expect=len(bulk) + 4, timeout=20)
        assert got == bulk + b"OK\r\n"  # in plaintext, in order, before any TLS record
        raw.setblocking(True)
        raw.settimeout(10)
        context = client_ssl_context(certs[0])
        with context.wrap_socket(raw, server_hostname="localhost") as secure:
            assert pump(secure, b"now secret", timeout=5)[0] == b"now secret"


# ------------------------------------------------------- the sans-I/O TLS layer


def tls_pair(certs: tuple[str, str]) -> tuple[TLSLayer, TLSLayer]:
    """A client and a server TLSLayer, handshaken by passing bytes in memory."""
    client = TLSLayer(client_ssl_context(certs[0]), False, "localhost")
    server = TLSLayer(server_ssl_context(*certs), True, None)
    for _ in range(10):  # a handshake takes a few flights, never ten
        client_done = client.handshake()
        server.feed(client.output())
        server_done = server.handshake()
        client.feed(server.output())
        if client_done and server_done:
            return client, server
    raise AssertionError("the in-memory handshake did not finish")


def test_tls_layer_delivers_data_before_the_end_or_an_error(certs: tuple[str, str]) -> None:
    view = memoryview(bytearray(64 * 1024))
    client, server = tls_pair(certs)
    server.feed(client.encrypt(b"first") + client.close_notify())
    assert server.read_into(view) == 5 and bytes(view[:5]) == b"first"
    assert server.read_into(view) == 0 and server.peer_closed  # then the clean end

    client, server = tls_pair(certs)
    server.feed(client.encrypt(b"cut"))
    server.feed_eof()  # no close_notify: a truncated stream is an end, not an error
    assert server.read_into(view) == 3
    assert server.read_into(view) == 0 and server.peer_closed

    client, server = tls_pair(certs)
    server.feed(client.encrypt(b"good") + b"\x17\x03\x03\x00\x05junk!")  # a forged record
    assert server.read_into(view) == 4  # what came before the bad record is delivered...
    assert server.pending
    with pytest.raises(ssl.SSLError):
        server.read_into(view)  # ...and the error is raised by the next read
