"""web_fetch.py: fetch URLs with netcomp's HTTP client and print what came back.

What it shows: `netcomp.web.client.Client`, driven from an `async def` handler that
awaits `self.call(request(...))` for each URL given on the command line, one after the
other: requests to the same origin share one kept-alive connection, `https://` URLs are
verified, a malformed answer or a timeout is an exception saying what went wrong. For
each URL it prints `STATUS REASON SIZE URL` (or `error: ... URL`), then exits with 0 if
every request got an answer (any status), 1 otherwise.

Poke it:   python examples/web_members.py 8000                  (a server to fetch from)
           python examples/web_fetch.py http://127.0.0.1:8000/ http://127.0.0.1:8000/nowhere
"""

from __future__ import annotations

import sys

from netcomp import Component
from netcomp.web.client import Client, request


class Fetch(Component):
    def init(self, urls: list[str]) -> None:
        self.urls = urls
        self.failed = 0
        Client(timeout=15).register(self)

    async def started(self, manager: object) -> None:
        for url in self.urls:
            try:
                reply = await self.call(request("GET", url), "client")
            except Exception as error:  # the request failed: say so, go on
                self.failed += 1
                print(f"error: {error} {url}", flush=True)
            else:
                print(f"{reply.status} {reply.reason} {len(reply.body)} {url}", flush=True)
        self.stop(1 if self.failed else 0)

    def exception(self, *args: object, **kwargs: object) -> None:
        """Failed requests are reported above, once."""


if __name__ == "__main__":
    sys.exit(Fetch(sys.argv[1:]).run())
