"""Hello-world on tornado: one ``RequestHandler``.

``python tornado_app.py [PORT]`` (0 or nothing: any free port); prints ``listening PORT``
once the socket is bound and the server added to the loop. Default asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import tornado.httpserver
import tornado.netutil
import tornado.web


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write("Hello, World!")


async def serve(port: int) -> None:
    app = tornado.web.Application([(r"/", Hello)], log_function=lambda handler: None)
    sockets = tornado.netutil.bind_sockets(port, "127.0.0.1", backlog=1024)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    print(f"listening {sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
