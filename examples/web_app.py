"""web_app.py: a small notes web app: controllers, forms, JSON, redirects and streaming.

What it shows: a `netcomp.web.Server` routing URLs to `Controller`s by prefix. `Notes` (at
"/") renders an HTML page and takes a form POST, then redirects (303) back; `Api` (a
`JSONController` at "/api") answers JSON, with per-method actions (`GET`, `POST`);
`/count?to=N` streams N lines, each pulled only when the client has room. Errors are HTTP
statuses (`NotFound`, 400 for bad JSON). It prints `listening on http://127.0.0.1:PORT` once
bound and stops gracefully on Ctrl-C or SIGTERM.

Poke it:   python examples/web_app.py 8000                       (port from argv[1]; 0 = any free)
           curl -i -d 'text=buy milk' http://127.0.0.1:8000/add     (303 back to /)
           curl http://127.0.0.1:8000/                              (the HTML list)
           curl -i --json '{"text": "call bob"}' http://127.0.0.1:8000/api   (201, the new note)
           curl http://127.0.0.1:8000/api                           (both notes, as JSON)
           curl -i http://127.0.0.1:8000/api/99                     (404: there is no note 99)
           curl -N 'http://127.0.0.1:8000/count?to=5'               (five lines, streamed)
"""

from __future__ import annotations

import html
import sys
from collections.abc import Iterator
from typing import Any

from netcomp import Component, Manager
from netcomp.web import BadRequest, Controller, JSONController, NotFound, Server

NOTES: list[str] = []


class Notes(Controller):
    """The HTML side: a list and a form."""

    channel = "/"

    def index(self) -> str:
        items = "".join(f"<li>{html.escape(note)}</li>" for note in NOTES)
        return (
            "<!doctype html><title>notes</title><h1>Notes</h1>"
            f"<ul>{items}</ul>"
            '<form method="post" action="/add"><input name="text"><button>add</button></form>'
        )

    def add(self, text: str = "") -> None:
        if self.request.method != "POST" or not text.strip():
            raise BadRequest(description="POST a non-empty 'text' field")
        NOTES.append(text.strip())
        self.redirect("/")

    def count(self, to: str = "10") -> Iterator[str]:
        total = min(int(to), 10_000) if to.isdigit() else 10
        self.response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return (f"{n}\n" for n in range(1, total + 1))


class Api(JSONController):
    """The JSON side: GET lists (or gets one note), POST adds one."""

    channel = "/api"

    def GET(self, number: str | None = None) -> Any:
        if number is None:
            return {"notes": NOTES}
        if not number.isdigit() or not 0 <= int(number) < len(NOTES):
            raise NotFound(description=f"no note {number}")
        return {"number": int(number), "text": NOTES[int(number)]}

    def POST(self) -> Any:
        data = self.request.json()
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise BadRequest(description='send {"text": "..."}')
        NOTES.append(data["text"])
        self.response.status = 201
        return {"number": len(NOTES) - 1, "text": data["text"]}


class Announce(Component):
    """Says where the server listens, once it does."""

    def init(self, server: Server) -> None:
        self.server = server

    def started(self, manager: Manager) -> None:
        print(f"listening on {self.server.url}", flush=True)


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 0
    server = Server(("127.0.0.1", port))
    Notes().register(server)
    Api().register(server)
    Announce(server).register(server)
    code = server.run()  # SIGINT / SIGTERM stop it gracefully
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
