"""The component graph: a description of a tree, to draw (DOT, SVG, Mermaid) or serve (JSON).

Rules (docs/tools.md, "The graph"):
* Read only through public names: ``walk()``, ``parent``, ``channel`` and the loop's
  ``registry.entries()`` (each handler's names, channel, priority, component, callable).
* Components are numbered in tree order (parents before children, ``c1`` is the root);
  the label of each is its class name, ``Name#2``, ``Name#3`` for further instances.
* A channel connects the components that have handlers on it: one channel node per
  channel, an edge to each listening component, labelled with the event names it takes
  there. ``"*"`` (every channel) is a channel of its own.
* The same tree gives the same description, byte for byte: it is what the docs build
  draws, and what tests compare.
"""

from __future__ import annotations

from typing import Any

from ..core import Manager
from ._dot import to_dot, to_svg
from ._mermaid import to_mermaid
from ._model import ComponentInfo, GraphData, HandlerInfo, channel_name

__all__ = ["Graph", "graph"]


class Graph(GraphData):
    """A tree's description (see :class:`GraphData`), drawn as DOT, SVG or Mermaid."""

    def to_dot(self) -> str:
        """Graphviz DOT text."""
        return to_dot(self)

    def to_svg(self, timeout: float = 30.0) -> str:
        """SVG drawn by Graphviz's ``dot`` (``GraphvizMissing`` without it)."""
        return to_svg(self, timeout)

    def to_mermaid(self) -> str:
        """Mermaid flowchart text (GitHub renders it)."""
        return to_mermaid(self)


def _method(fn: Any) -> str:
    owner = getattr(fn, "__self__", None)
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return f"{type(owner).__name__}.{name}" if owner is not None else str(name)


def graph(manager: Manager) -> Graph:
    """The description of ``manager``'s whole tree (from its root).

    Read on the loop's thread, or while the loop does not run: the tree may change
    while it is read otherwise.
    """
    if not isinstance(manager, Manager):
        raise TypeError(f"graph() takes a component or a Manager, not {manager!r}")
    root = manager.root
    members = list(root.walk())
    ids = {id(m): f"c{i}" for i, m in enumerate(members, 1)}
    counts: dict[str, int] = {}
    labels: dict[int, str] = {}
    for member in members:
        base = type(member).__name__
        counts[base] = counts.get(base, 0) + 1
        labels[id(member)] = base if counts[base] == 1 else f"{base}#{counts[base]}"
    handlers: dict[int, list[HandlerInfo]] = {id(m): [] for m in members}
    channels: dict[str, dict[str, list[str]]] = {}
    for entry in root.loop.registry.entries():
        key = id(entry.component)
        if key not in handlers:
            continue
        channel = channel_name(entry.effective_channel())
        names = tuple(entry.names)
        handlers[key].append(HandlerInfo(names, channel, entry.priority, _method(entry.fn)))
        listening = channels.setdefault(channel, {}).setdefault(ids[key], [])
        listening.extend(n for n in names if n not in listening)
    components = tuple(
        ComponentInfo(
            ids[id(m)],
            labels[id(m)],
            f"{type(m).__module__}.{type(m).__qualname__}",
            channel_name(m.channel),
            ids[id(m.parent)] if m.parent is not None else None,
            tuple(handlers[id(m)]),
        )
        for m in members
    )
    return Graph(
        components,
        {
            name: tuple((cid, tuple(names)) for cid, names in listeners.items())
            for name, listeners in sorted(channels.items())
        },
    )
