"""Hello-world on aiohttp: a ``web.Application`` with one GET ``/`` handler, no access log.

``python aiohttp_app.py [PORT]`` (0 or nothing: any free port); prints ``listening PORT``
once the site is started. Default asyncio loop (what ``web.run_app`` uses).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, World!")


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"listening {bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
