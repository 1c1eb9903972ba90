"""websocket_chat.py: a chat page and its WebSocket on one server: every open page talks to all.

What it shows: a `netcomp.web.Server` serving an HTML page (a `Controller` at "/") and, on
the same port, a `WebSocketsDispatcher` at "/chat" whose events go on the "chat" channel. The
`Chat` component greets each newcomer (`connect`), sends every message to all the others with
one `broadcast` (framed once for everyone), and says who left (`disconnect`). The page's
script is plain browser JavaScript (`new WebSocket(...)`). It prints
`listening on http://127.0.0.1:PORT` once bound and stops gracefully on Ctrl-C or SIGTERM.

Poke it:   python examples/websocket_chat.py 8002            (port from argv[1]; 0 = any free)
           curl http://127.0.0.1:8002/                       (the page's HTML)
           Then open http://127.0.0.1:8002/ in two browser tabs and type in either; or chat
           from a terminal with the websockets library's client: python -m websockets URL,
           with ws://127.0.0.1:8002/chat as the URL.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from netcomp import Component, Manager
from netcomp.net import write
from netcomp.web import Controller, Server, WebSocketsDispatcher

PAGE = """<!doctype html>
<meta charset="utf-8"><title>netcomp chat</title>
<h1>netcomp chat</h1>
<ul id="log"></ul>
<form id="say"><input id="text" autocomplete="off" autofocus><button>send</button></form>
<script>
const log = document.getElementById("log");
const socket = new WebSocket(`ws://${location.host}/chat`);
window.chat = {socket, lines: [], open: false};
function show(line) {
  window.chat.lines.push(line);
  const item = document.createElement("li");
  item.textContent = line;
  log.appendChild(item);
}
socket.onopen = () => { window.chat.open = true; };
socket.onmessage = (event) => show(event.data);
socket.onclose = (event) => show(`*** closed (${event.code})`);
document.getElementById("say").onsubmit = (event) => {
  event.preventDefault();
  const text = document.getElementById("text");
  if (text.value) { socket.send(text.value); show(`me: ${text.value}`); text.value = ""; }
};
</script>
"""

MAX_LINE = 4096  # longer messages are cut: a chat line, not a file transfer


class Page(Controller):
    """The chat page."""

    channel = "/"

    def index(self) -> str:
        return PAGE


class Chat(Component):
    """Relays each message to every other page."""

    channel = "chat"

    def init(self, chat: WebSocketsDispatcher) -> None:
        self.chat = chat
        self.names: dict[socket.socket, str] = {}

    def connect(self, sock: socket.socket, request: Any) -> None:
        host, port = request.remote[:2]
        name = f"{host}:{port}"
        self.names[sock] = name
        self.fire(write(sock, f"*** welcome {name}, {len(self.names) - 1} other(s) here"))
        self.chat.broadcast(f"*** {name} joined", exclude=sock)

    def read(self, sock: socket.socket, message: str | bytes) -> None:
        name = self.names.get(sock, "?")
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        self.chat.broadcast(f"{name}: {text[:MAX_LINE]}", exclude=sock)

    def disconnect(self, sock: socket.socket) -> None:
        name = self.names.pop(sock, None)
        if name is not None:
            self.chat.broadcast(f"*** {name} left")


class Announce(Component):
    """Says where the server listens."""

    channel = "web"

    def ready(self, server: Any, bind: Any) -> None:
        print(f"listening on http://{bind[0]}:{bind[1]}", flush=True)


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 0
    app = Manager()
    server = Server(("127.0.0.1", port))
    server.register(app)
    Page().register(server)
    Announce().register(server)
    chat = WebSocketsDispatcher("/chat", channel="chat").register(server)
    Chat(chat).register(app)
    code = app.run()  # SIGINT / SIGTERM stop it gracefully
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
