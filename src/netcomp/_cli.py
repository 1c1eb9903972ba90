"""The ``netcomp`` command: ``netcomp serve [--bind ...] [--static DIR] [--log-level L]``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``netcomp`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(prog="netcomp", description="netcomp command line")
    top.add_argument("command", choices=["serve"], help="serve: run the demo web server")
    if not args or args[0] not in ("serve",):
        top.parse_args(args[:1] or ["--help"])
        return 2
    from .web._demo import main as serve

    return serve(args[1:], prog="netcomp serve")


if __name__ == "__main__":
    sys.exit(main())
