"""Hello-world on uvicorn (httptools + uvloop): a raw ASGI app, no framework.

``python uvicorn_app.py [PORT]`` (0 or nothing: any free port); prints ``listening PORT``
once uvicorn's listening socket is up. Equivalent to ``uvicorn.run(app, loop="uvloop",
http="httptools", access_log=False, log_level="warning")``, spelled as ``Config`` +
``Server`` only so the port chosen by the kernel can be printed.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import uvicorn

BODY = b"Hello, World!"
HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(BODY)).encode()),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


class AnnouncingServer(uvicorn.Server):
    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        port = self.servers[0].sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        backlog=1024,
    )
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run does
        AnnouncingServer(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
