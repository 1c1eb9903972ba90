"""Mermaid: a :class:`GraphData` as a flowchart (GitHub renders it in Markdown).

Rules (docs/tools.md, "The graph"):
* ``flowchart LR``; a component is ``cN["..."]`` (name, class, channel, its handlers on
  ``<br/>``-separated lines), the tree is ``parent --> child``, a channel is a stadium
  ``chN(["name"])`` with ``chN -.->|"events"| cN`` to each component listening on it.
* Text is always quoted, with Mermaid's entity codes for the characters that would end
  or change it (``#quot;``, ``#35;``, ``#lt;``, ``#gt;``, ``#124;``): any name is safe.
"""

from __future__ import annotations

from ._model import GraphData

__all__ = ["mermaid_text", "to_mermaid"]

_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "|": "#124;"}


def mermaid_text(text: str) -> str:
    """``text`` with Mermaid's entity codes for ``# " < > |`` and no line breaks."""
    out = "".join(_ENTITIES.get(ch, ch) for ch in text)
    return out.replace("\r", " ").replace("\n", " ")


def _lines(rows: list[str]) -> str:
    return '"' + "<br/>".join(mermaid_text(row) for row in rows) + '"'


def to_mermaid(graph: GraphData) -> str:
    """The graph as Mermaid flowchart text."""
    lines = ["flowchart LR"]
    for info in graph.components:
        rows = [info.label, info.cls, f"channel: {info.channel}"]
        for h in info.handlers:
            row = ", ".join(h.names)
            if h.channel != info.channel:
                row += f" @{h.channel}"
            if h.priority:
                row += f" p={h.priority:g}"
            rows.append(row)
        lines.append(f"  {info.id}[{_lines(rows)}]")
    for info in graph.components:
        if info.parent is not None:
            lines.append(f"  {info.parent} --> {info.id}")
    channel_ids = []
    for number, (channel, listeners) in enumerate(graph.channels.items(), 1):
        node = f"ch{number}"
        channel_ids.append(node)
        lines.append(f"  {node}([{_lines([channel])}])")
        for cid, names in listeners:
            lines.append(f"  {node} -.->|{_lines([', '.join(names)])}| {cid}")
    if channel_ids:
        lines.append("  classDef channel fill:#ffffe0,stroke:#999")
        lines.append(f"  class {','.join(channel_ids)} channel")
    return "\n".join(lines) + "\n"
