"""wsgi_app.py: a netcomp controller tree served as a WSGI application by wsgiref.

What it shows: `netcomp.web.wsgi.Application`, circuits.web's way of running a netcomp
tree under any WSGI server (here the standard library's `wsgiref`; gunicorn or uWSGI take
`wsgi_app:application` the same way). The request's path is the WSGI `PATH_INFO`, errors
are HTTP statuses, a generator action streams. It prints `listening on
http://127.0.0.1:PORT` once bound and serves until Ctrl-C.

Poke it:   python examples/wsgi_app.py 8000
           curl http://127.0.0.1:8000/                    (Hello from a WSGI server)
           curl http://127.0.0.1:8000/add/2/3             (5)
           curl http://127.0.0.1:8000/add/2/x             (a 400, saying why)
           curl http://127.0.0.1:8000/lines?count=3       (three lines)
"""

from __future__ import annotations

import sys
import wsgiref.simple_server
from collections.abc import Iterator

from netcomp.web import BadRequest, Controller
from netcomp.web.wsgi import Application


class Root(Controller):
    def index(self) -> str:
        return "Hello from a WSGI server\n"

    def add(self, a: str, b: str) -> str:
        if not (a.isdigit() and b.isdigit()):
            raise BadRequest(description="add/<number>/<number>")
        return f"{int(a) + int(b)}\n"

    def lines(self, count: str = "3") -> Iterator[str]:
        self.response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return (f"line {n}\n" for n in range(1, min(int(count), 100) + 1))


application = Application() + Root()


def main(port: int) -> None:
    server = wsgiref.simple_server.make_server("127.0.0.1", port, application)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8000)
