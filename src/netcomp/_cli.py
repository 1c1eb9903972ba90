"""The ``netcomp`` command.

``netcomp serve [module:attr] [--bind ...] [--static DIR] [--log-level L] [--workers N]``
runs an application, like ``uvicorn module:app``: ``attr`` names a component tree (its
root, or any component in it), a component, or a factory (a class, a function) that
returns one. A tree with no server of its own (controllers, static files, a WSGI gateway)
is served by a web ``Server`` on ``--bind`` (default 127.0.0.1:8000; repeat it to listen
on several addresses); a tree with its own servers listens where they say. Without
``module:attr`` it runs the demo web server. ``--workers N`` runs it in N supervised
processes (``netcomp.net.Supervisor``), each building the tree anew from
``module:attr``. ``netcomp --version``.

``netcomp graph module:attr -o app.svg`` draws an application's component graph (DOT,
SVG, Mermaid, JSON), ``netcomp graph trace.jsonl -o trace.svg`` a recorded trace
(``netcomp.tools``; docs/tools.md).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from typing import Any

from . import __version__
from .core import Manager, configure_logging
from .net import Server as StreamServer
from .net import UDPServer
from .tools._command import add_graph_options, run_graph
from .web import Server
from .web._demo import (
    add_server_options,
    build,
    check_static,
    run_tree,
    supervise,
    without_workers,
)

__all__ = ["load", "main", "worker_tree"]

PROG = "netcomp"


class AppError(Exception):
    """The application named on the command line cannot be run (says why)."""


def load(spec: str) -> Manager:
    """The component named by ``module:attr`` (a factory is called with no arguments)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise AppError(f"{spec!r}: expected module:attribute, as in myapp:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as python -m does: the app lives here
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise AppError(f"{spec!r}: cannot import {module_name!r}: {error}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppError(f"{spec!r}: {module_name} has no attribute {attr!r}") from None
    if not isinstance(target, Manager) and callable(target):
        target = target()
    if not isinstance(target, Manager):
        raise AppError(
            f"{spec!r} is a {type(target).__name__}; expected a component or a tree "
            "(a Manager), or a factory that returns one"
        )
    return target


def _serves(root: Manager) -> bool:
    return any(isinstance(node, (StreamServer, UDPServer)) for node in root.walk())


def tree(app: str | None, bind: str | None, static: Any) -> Manager:
    """The tree ``netcomp serve`` runs: the demo (on ``static``), or the application
    ``app`` names, on a web ``Server`` on ``bind`` when it brings no server of its own."""
    if app is None:
        return build(bind or "127.0.0.1:8000", static)
    if static is not None:
        raise AppError("--static is the demo's option; serve files with Static")
    root = load(app).root
    if not _serves(root):
        server = Server(bind or "127.0.0.1:8000")
        root.register(server)
        return server
    if bind is not None:
        raise AppError(
            f"{app} brings its own servers: --bind is for an application without one "
            "(controllers, static files, WSGI)"
        )
    return root


def worker_tree(app: str | None, bind: str | None, static: str | None) -> Manager:
    """:func:`tree` in a worker process of ``netcomp serve --workers``: what cannot
    start says why and exits, as the single process does."""
    prog = f"{PROG} serve"
    try:
        return tree(app, bind, static)
    except AppError as error:
        raise SystemExit(f"{prog}: {error}") from None
    except (OSError, ValueError, TypeError) as error:
        raise SystemExit(f"{prog}: cannot start: {error}") from None


def serve(options: argparse.Namespace) -> int:
    """``netcomp serve``: the user's application, or the demo."""
    prog = f"{PROG} serve"
    wrong = without_workers(options)
    if wrong:
        print(f"{prog}: {wrong}", file=sys.stderr)
        return 2
    configure_logging(options.log_level, pid=options.workers is not None)
    static = options.static
    try:
        if options.app is None:
            static = check_static(prog, options.static)
            if static is None:
                return 2
        if options.workers is not None:
            return _serve_workers(options, prog, static)
        root = tree(options.app, options.bind, static)
    except AppError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError) as error:
        print(f"{prog}: cannot start: {error}", file=sys.stderr)
        return 1
    return run_tree(root, prog)


def _serve_workers(options: argparse.Namespace, prog: str, static: Any) -> int:
    """Check what can be checked here (nothing is imported: a module that binds at import
    would bind in the supervisor), then supervise the workers."""
    app = options.app
    if app is not None:
        if options.static is not None:
            raise AppError("--static is the demo's option; serve files with Static")
        module, sep, attr = app.partition(":")
        if not (sep and module and attr):
            raise AppError(f"{app!r}: expected module:attribute, as in myapp:app")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # the workers get this path too
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError) as error:
            raise AppError(f"{app!r}: cannot import {module!r}: {error}") from None
        if found is None:
            raise AppError(f"{app!r}: cannot import {module!r}: No module named {module!r}")
    kwargs = {"app": app, "bind": options.bind, "static": None if static is None else str(static)}
    return supervise(options, prog, "netcomp._cli:worker_tree", kwargs)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``netcomp`` console script."""
    parser = argparse.ArgumentParser(prog=PROG, description="netcomp command line")
    parser.add_argument("--version", action="version", version=f"netcomp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve", help="run an application (module:attr) or the demo web server"
    )
    serve_parser.add_argument(
        "app", nargs="?", help="module:attr of a component, a tree or a factory (default: demo)"
    )
    add_server_options(serve_parser)
    graph_parser = commands.add_parser(
        "graph", help="draw an application's component graph, or a recorded trace"
    )
    add_graph_options(graph_parser)
    options = parser.parse_args(argv)
    if options.command is None:
        parser.print_help(sys.stderr)
        return 2
    if options.command == "graph":
        return run_graph(options, load, (AppError,))
    return serve(options)


if __name__ == "__main__":
    sys.exit(main())
