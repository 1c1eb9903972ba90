"""web_rpc.py: one calculator served over JSON-RPC 2.0 and XML-RPC, on two virtual hosts.

What it shows: `JSONRPC` at /json and `XMLRPC` at /xml fire events by method name on the
"calc" channel, where a plain `Component` answers them (`add`, `divide`, and an `async`
`slow_square`); `methods=` lists the only names a client may call. A division by zero is
the handler's error: the client gets "internal error" (-32603) and the server logs the
traceback. `VirtualHosts` sends requests for `docs.localhost` to the `/docs` controller
tree, the rest to `/`. It prints `listening on http://127.0.0.1:PORT` once bound.

Poke it:   python examples/web_rpc.py 8000                           (port from argv[1]; 0 = any)
           curl --json '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}' 127.0.0.1:8000/json
           curl --json '{"method":"divide","params":[1,0],"id":1}' 127.0.0.1:8000/json  (1.0)
           curl -H 'Host: docs.localhost' http://127.0.0.1:8000/  (the docs page)
           and from Python: xmlrpc.client.ServerProxy("http://127.0.0.1:8000/xml").add(2, 3)
"""

from __future__ import annotations

import sys

from netcomp import Component, Manager, sleep
from netcomp.web import JSONRPC, XMLRPC, Controller, Server, VirtualHosts

METHODS = ["add", "divide", "slow_square"]


class Calculator(Component):
    channel = "calc"

    def add(self, a: float, b: float) -> float:
        return a + b

    def divide(self, a: float, b: float) -> float:
        return a / b

    async def slow_square(self, x: float) -> float:
        await sleep(0.01)
        return x * x


class Home(Controller):
    channel = "/"

    def index(self) -> str:
        return "POST JSON-RPC to /json, XML-RPC to /xml\n"


class Docs(Controller):
    channel = "/docs"

    def index(self) -> str:
        return "methods: " + ", ".join(METHODS) + "\n"


def main(port: int) -> int:
    app = Manager()
    server = Server(("127.0.0.1", port)).register(app)
    Calculator().register(app)
    JSONRPC("/json", rpc_channel="calc", methods=METHODS).register(server)
    XMLRPC("/xml", rpc_channel="calc", methods=METHODS).register(server)
    VirtualHosts({"docs.localhost": "/docs"}).register(server)
    Home().register(server)
    Docs().register(server)
    print(f"listening on {server.url}", flush=True)
    return app.run()


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8000))
