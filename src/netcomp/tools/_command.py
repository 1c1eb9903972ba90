"""``netcomp graph``: draw an application's component graph, or a recorded trace.

``netcomp graph module:attr -o app.svg`` builds the tree the way ``netcomp serve`` does
(a component, a tree, or a factory called with no arguments), without running it, and
writes its graph; ``netcomp graph trace.jsonl -o trace.svg`` draws a trace saved by
``Trace.save`` as a sequence diagram. The format comes from ``--format``, else from the
output's extension (``.svg``, ``.dot``/``.gv``, ``.mmd``/``.mermaid``, ``.json``), else
it is DOT (Mermaid for a trace) on standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from ..core import Manager, Trace
from ._dot import GraphvizMissing
from ._graph import graph
from ._sequence import sequence_mermaid, sequence_svg

__all__ = ["FORMATS", "add_graph_options", "draw", "run_graph"]

FORMATS = ("dot", "svg", "mermaid", "json")
_EXTENSIONS = {
    ".svg": "svg",
    ".dot": "dot",
    ".gv": "dot",
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".json": "json",
    ".jsonl": "json",
}


def add_graph_options(parser: argparse.ArgumentParser) -> None:
    """The ``graph`` subcommand's arguments."""
    parser.add_argument(
        "target",
        help="module:attr of a component, a tree or a factory; or a trace file (.jsonl)",
    )
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    parser.add_argument("--format", choices=FORMATS, help="default: from the output's extension")
    parser.add_argument(
        "--last", type=int, default=200, help="a trace: draw its last N events (default 200)"
    )


def _format(options: argparse.Namespace, is_trace: bool) -> str:
    if options.format:
        return str(options.format)
    if options.output:
        ext = os.path.splitext(options.output)[1].lower()
        if ext in _EXTENSIONS:
            return _EXTENSIONS[ext]
    return "mermaid" if is_trace else "dot"


def draw(target: Manager | Trace, fmt: str, last: int | None = 200) -> str:
    """``target`` (a tree, or a trace) drawn in ``fmt`` (one of :data:`FORMATS`)."""
    if isinstance(target, Trace):
        if fmt == "svg":
            return sequence_svg(target, last)
        if fmt == "mermaid":
            return sequence_mermaid(target, last)
        if fmt == "json":
            return target.dumps()
        raise ValueError("a trace is drawn as svg, mermaid or json (JSON lines), not dot")
    description = graph(target)
    if fmt == "svg":
        return description.to_svg()
    if fmt == "mermaid":
        return description.to_mermaid()
    if fmt == "json":
        return json.dumps(description.to_json(), indent=1) + "\n"
    return description.to_dot()


def run_graph(
    options: argparse.Namespace,
    load: Callable[[str], Any],
    refusals: tuple[type[Exception], ...] = (),
) -> int:
    """Run ``netcomp graph``. ``load``: how the command line finds ``module:attr``;
    ``refusals``: the errors it raises for an application it cannot load (exit 2)."""
    prog = "netcomp graph"
    is_trace = options.target.endswith((".jsonl", ".json")) and ":" not in options.target
    fmt = _format(options, is_trace)
    try:
        source: Manager | Trace = Trace.load(options.target) if is_trace else load(options.target)
        text = draw(source, fmt, options.last or None)
    except refusals as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except GraphvizMissing as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 3
    except (OSError, ValueError, TypeError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    if options.output:
        with open(options.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0
