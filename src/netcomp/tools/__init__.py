"""netcomp.tools: see a program. The component graph (DOT, SVG, Mermaid), recorded traces
as sequence diagrams (Mermaid, SVG), and a live inspector page for a running web server.

A layer above ``netcomp.web``: it uses core, net and web through their public names only
(docs/architecture.md, "Layers"; docs/tools.md).
"""

from ._dot import GraphvizMissing, render_svg
from ._graph import Graph, graph
from ._inspector import Inspector, InspectorRefused, is_local
from ._model import ComponentInfo, GraphData, HandlerInfo
from ._sequence import sequence_mermaid, sequence_svg
from ._stats import EventCounters

__all__ = [
    "ComponentInfo",
    "EventCounters",
    "Graph",
    "GraphData",
    "GraphvizMissing",
    "HandlerInfo",
    "Inspector",
    "InspectorRefused",
    "graph",
    "is_local",
    "render_svg",
    "sequence_mermaid",
    "sequence_svg",
]
