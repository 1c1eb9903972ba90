"""What a connection keeps between reads: nothing of the last read once it is done.

The server used to hold each connection's last ``read`` Value (and so its data) for the
life of the connection: on 10,000 idle connections that was a page of memory each.
"""

from __future__ import annotations

import socket

from netcomp import Component, Manager
from netcomp.net import TCPServer
from netcomp.testing import running


class Echo(Component):
    channel = "srv"

    def read(self, sock: socket.socket, data: bytes) -> bytes:
        return data


def test_a_done_read_is_not_kept_by_its_connection() -> None:
    manager = Manager()
    server = TCPServer(0, channel="srv")
    manager += server
    manager += Echo()
    with running(manager) as recorder:
        recorder.wait_for("ready")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as peer:
            peer.sendall(b"x" * 64)
            received = b""
            while len(received) < 64:
                chunk = peer.recv(64)
                assert chunk, "server closed early"
                received += chunk
            assert received == b"x" * 64
            # The echo was written back, so the read is done: nothing may hold it now.
            recorder.wait_for("read")
            connections = list(server._connections.values())
            assert len(connections) == 1
            assert connections[0].last_read is None
