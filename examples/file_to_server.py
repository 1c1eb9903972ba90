"""file_to_server.py: Kamaelia's "send a file to a server" pipeline, with backpressure.

What it shows: `netcomp.pipeline(FileReader(path, rate=...), ThreadedTCPClient(host, port))`,
Kamaelia's `Pipeline(ReadFileAdaptor(...), TCPClient(...))` in netcomp. The reader's chunks
become the client's writes; when the client has more than its high water buffered the
reader is paused, and it resumes on `drained`. The reader keeps to `--rate` bytes per
second on the loop's clock; at the end of the file the client is closed, and its final
`disconnected` ends the program. The `sink` side is a TCPServer on every address given
(`--also [::1]:PORT`) that accepts only loopback peers (`allow=`) and reports each upload.

`send` prints `connected to HOST:PORT from HOST:PORT` (the link's peername and sockname),
then `sent N bytes of FILE sha256=... (paused P times)`; `sink` prints `listening on
HOST:PORT` per address and `received N bytes from HOST:PORT sha256=...` per upload.

Poke it:   python examples/file_to_server.py sink 9000      (a sink server; Ctrl-C ends it)
           python examples/file_to_server.py send 9000 README.md --rate 50000   (about 0.2 s)
           the two sha256 lines match; or send to `nc -l 127.0.0.1 9000 > copy` instead
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import Any

from netcomp import Component, FileReader, Manager, handler, pipeline
from netcomp.net import TCPServer, ThreadedTCPClient


def shown(address: Any) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Report(Component):
    """The sender's side: says where it connected and what it sent, then stops."""

    channel = "upload"

    def init(self, reader: FileReader, path: str) -> None:
        self.reader = reader
        self.path = path
        self.digest = hashlib.sha256()

    @handler("read", channel="file")
    def _sent(self, data: bytes) -> None:
        self.digest.update(data)

    @handler("connected")
    def _connected(self, event: Any, host: str, port: int) -> None:
        print(f"connected to {shown(event.peername)} from {shown(event.sockname)}", flush=True)

    @handler("unreachable")
    def _unreachable(self, host: str, port: int, reason: Any) -> None:
        print(f"cannot connect to {host}:{port}: {reason}", flush=True)

    @handler("disconnected")
    def _done(self) -> None:  # the one final event, whatever happened
        done = self.reader.sent
        print(
            f"sent {done} bytes of {self.path} sha256={self.digest.hexdigest()} "
            f"(paused {self.reader.pauses} times)",
            flush=True,
        )
        self.stop(0)


class Sink(Component):
    """The server's side: hashes each upload and reports it when the sender closes."""

    channel = "sink"

    def init(self) -> None:
        self.uploads: dict[Any, tuple[Any, Any, int]] = {}

    def ready(self, server: TCPServer, bind: Any) -> None:
        print(f"listening on {shown(bind)}", flush=True)

    def connect(self, sock: Any, host: str, port: int) -> None:
        self.uploads[sock] = ((host, port), hashlib.sha256(), 0)

    def read(self, sock: Any, data: bytes) -> None:
        peer, digest, size = self.uploads[sock]
        digest.update(data)
        self.uploads[sock] = (peer, digest, size + len(data))

    def disconnect(self, sock: Any) -> None:
        peer, digest, size = self.uploads.pop(sock)
        print(f"received {size} bytes from {shown(peer)} sha256={digest.hexdigest()}", flush=True)


def main(argv: list[str]) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("mode", choices=["sink", "send"])
    args.add_argument("port", type=int)
    args.add_argument("file", nargs="?", help="the file to send (send)")
    args.add_argument("--rate", type=float, default=1_000_000, help="bytes per second")
    args.add_argument("--also", action="append", default=[], help="more sink addresses")
    options = args.parse_args(argv[1:])
    app = Manager()
    if options.mode == "sink":
        binds = [("127.0.0.1", options.port), *options.also]
        app += TCPServer(binds, channel="sink", allow=["127.0.0.0/8", "::1"])
        app += Sink()
    else:
        if options.file is None:
            args.error("send needs a file")
        reader = FileReader(options.file, chunk_size=16 * 1024, rate=options.rate, channel="file")
        client = ThreadedTCPClient("127.0.0.1", options.port, channel="upload")
        app += pipeline(reader, client)
        app += Report(reader, options.file)
    code = app.run()
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
