"""Graphviz: a :class:`Graph` as DOT text, and as SVG through the ``dot`` program.

Rules (docs/tools.md, "The graph"):
* Components are boxes (name, class, channel, then one line per handler: its events,
  ``@channel`` when not the component's, ``p=N`` when not 0); the tree is drawn with
  solid edges, parent to child; channels are ellipses with dashed edges to the components
  listening on them, labelled with the event names.
* Every string is quoted and escaped: any name is safe in the output.
* SVG needs Graphviz's ``dot``; without it :class:`GraphvizMissing` says how to get it
  (the DOT and Mermaid forms need nothing).
"""

from __future__ import annotations

import shutil
import subprocess

from ..core import NetcompError
from ._model import GraphData

__all__ = ["GraphvizMissing", "dot_lines", "dot_quote", "render_svg", "to_dot", "to_svg"]


class GraphvizMissing(NetcompError, RuntimeError):
    """Graphviz's ``dot`` program is not installed (or failed): SVG cannot be drawn."""


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def dot_quote(text: str) -> str:
    """``text`` as a quoted DOT string."""
    return f'"{_escape(text)}"'


def dot_lines(rows: list[str]) -> str:
    """``rows`` as one quoted DOT label, each row left-aligned (``\\l``)."""
    return '"' + "".join(_escape(row) + "\\l" for row in rows) + '"'


def _handler_line(names: tuple[str, ...], channel: str, home: str, priority: float) -> str:
    text = ", ".join(names)
    if channel != home:
        text += f" @{channel}"
    if priority:
        text += f" p={priority:g}"
    return text


def to_dot(graph: GraphData) -> str:
    """The graph as Graphviz DOT text."""
    lines = [
        "digraph netcomp {",
        "  rankdir=LR;",
        '  graph [fontname="Helvetica", fontsize=10];',
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for info in graph.components:
        rows = [info.label, info.cls, f"channel: {info.channel}", ""]
        rows += [
            _handler_line(h.names, h.channel, info.channel, h.priority) for h in info.handlers
        ]
        lines.append(f"  {info.id} [shape=box, style=rounded, label={dot_lines(rows)}];")
    for info in graph.components:
        if info.parent is not None:
            lines.append(f"  {info.parent} -> {info.id} [penwidth=2, arrowhead=none];")
    for number, (channel, listeners) in enumerate(graph.channels.items(), 1):
        node = f"ch{number}"
        lines.append(
            f"  {node} [shape=ellipse, style=filled, fillcolor=lightyellow, "
            f"label={dot_quote(channel)}];"
        )
        for cid, names in listeners:
            names_text = dot_quote(", ".join(names))
            lines.append(f"  {node} -> {cid} [style=dashed, color=gray40, label={names_text}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(dot: str, timeout: float = 30.0) -> str:
    """SVG drawn by ``dot -Tsvg`` from DOT text (:class:`GraphvizMissing` without it)."""
    program = shutil.which("dot")
    if program is None:
        raise GraphvizMissing(
            "Graphviz's 'dot' program is not installed, so no SVG can be drawn "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz). "
            "The DOT and Mermaid forms need nothing."
        )
    try:
        done = subprocess.run(
            [program, "-Tsvg"],
            input=dot.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GraphvizMissing(f"'dot' did not finish within {timeout} s") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise GraphvizMissing(f"'dot' failed (exit {done.returncode}): {message}")
    return done.stdout.decode("utf-8")


def to_svg(graph: GraphData, timeout: float = 30.0) -> str:
    """The graph as SVG (through :func:`render_svg`)."""
    return render_svg(to_dot(graph), timeout)
