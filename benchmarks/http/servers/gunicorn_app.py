"""Hello-world on gunicorn with aiohttp workers (``aiohttp.GunicornWebWorker``).

``python gunicorn_app.py PORT WORKERS`` (a real port); prints ``listening PORT`` and
execs ``gunicorn gunicorn_app:app -k aiohttp.GunicornWebWorker -w WORKERS`` (no access
log, backlog 1024). ``app`` is the same application as ``aiohttp_app.py``'s.
"""

from __future__ import annotations

import os
import sys

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, World!")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    return app


app = make_app()


def main() -> int:
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    print(f"listening {port}", flush=True)
    argv = [sys.executable, "-m", "gunicorn", "gunicorn_app:app"]
    argv += ["-k", "aiohttp.GunicornWebWorker", "-w", str(workers)]
    argv += ["-b", f"127.0.0.1:{port}", "--backlog", "1024", "--log-level", "warning"]
    argv += ["--chdir", os.path.dirname(os.path.abspath(__file__))]
    os.execv(sys.executable, argv)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
