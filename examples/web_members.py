"""web_members.py: a members area with a login, sessions, gzip and an access log.

What it shows: `Sessions` (a session per client, found again through an HttpOnly,
SameSite=Lax cookie), `digest_auth` (RFC 7616: SHA-256 offered first, then MD5) guarding
`/login`, which rotates the session id once the user is known, `Gzip` compressing text
answers for clients that accept it, and `Logger` writing one Combined Log Format line per
response to standard output. `/` greets whoever the session says is there, `/visits`
counts the visits of this session, `/logout` ends it. Users: ada/lovelace, alan/turing.

Poke it:   python examples/web_members.py 8000                  (port from argv[1]; 0 = any)
           curl -c /tmp/m.jar -b /tmp/m.jar http://127.0.0.1:8000/  (Hello, stranger)
           curl -b /tmp/m.jar -c /tmp/m.jar --digest -u ada:lovelace http://127.0.0.1:8000/login
           curl -c /tmp/m.jar -b /tmp/m.jar http://127.0.0.1:8000/  (Hello, ada)
           curl -b /tmp/m.jar --compressed http://127.0.0.1:8000/visits  (visit 1...)
           curl -c /tmp/m.jar -b /tmp/m.jar http://127.0.0.1:8000/logout  (Bye)
"""

from __future__ import annotations

import sys

from netcomp import Manager
from netcomp.web import Controller, Gzip, Logger, Server, Sessions
from netcomp.web.tools import digest_auth

USERS = {"ada": "lovelace", "alan": "turing"}


class Members(Controller):
    channel = "/"

    def index(self) -> str:
        return f"Hello, {self.session.get('user', 'stranger')}\n"

    def login(self) -> str:
        refused = digest_auth(self.request, self.response, "members", USERS)
        if refused is not None:
            raise refused  # 401 with the challenges
        self.session.rotate()  # a new id for the logged-in session (no fixation)
        self.session["user"] = self.request.login
        return f"Welcome, {self.request.login}\n"

    def visits(self) -> str:
        self.session["visits"] = self.session.get("visits", 0) + 1
        lines = [f"visit {n} of this session" for n in range(1, self.session["visits"] + 1)]
        self.response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return "\n".join(lines * 60) + "\n"  # long enough for Gzip's min_size

    def logout(self) -> str:
        self.session.expire()
        return "Bye\n"


def main(port: int) -> int:
    app = Manager()
    server = Server(("127.0.0.1", port)).register(app)
    Members().register(server)
    Sessions().register(server)
    Gzip().register(server)
    Logger(file=sys.stdout).register(server)
    print(f"listening on {server.url}", flush=True)
    return app.run()


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8000))
