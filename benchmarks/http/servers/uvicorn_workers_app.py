"""Hello-world on uvicorn with worker processes: ``uvicorn uvicorn_app:app --workers N``.

``python uvicorn_workers_app.py PORT WORKERS`` (a real port: uvicorn's workers cannot
report one the kernel chose); prints ``listening PORT`` and runs ``uvicorn.run`` with the
same settings as ``uvicorn_app.py`` (uvloop, httptools, no access log, backlog 1024).
The benchmark waits for an answer, then for every worker, before it measures.
"""

from __future__ import annotations

import contextlib
import sys

import uvicorn


def main() -> int:
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    print(f"listening {port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            "uvicorn_app:app",
            host="127.0.0.1",
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
            backlog=1024,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
