"""The data of a component graph (what :func:`netcomp.tools.graph` describes).

Plain frozen records, read by the renderers (``_dot``, ``_mermaid``) and the inspector.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..core import Manager

__all__ = ["ComponentInfo", "GraphData", "HandlerInfo", "channel_name"]


def channel_name(channel: Any) -> str:
    """A channel as text: a string as it is, a component channel as ``<Class>``."""
    if isinstance(channel, str):
        return channel
    if isinstance(channel, Manager):
        return f"<{type(channel).__name__}>"
    return repr(channel)


@dataclasses.dataclass(frozen=True)
class HandlerInfo:
    """One handler: the event ``names`` it takes, on ``channel`` (its own, else its
    component's), at ``priority``; ``method`` is ``Class.method``."""

    names: tuple[str, ...]
    channel: str
    priority: float
    method: str

    def to_json(self) -> dict[str, Any]:
        """As JSON: ``{"names": [...], "channel": str, "priority": num, "method": str}``."""
        return {
            "names": list(self.names),
            "channel": self.channel,
            "priority": self.priority,
            "method": self.method,
        }


@dataclasses.dataclass(frozen=True)
class ComponentInfo:
    """One component: ``id`` (``c1``...), ``label``, ``cls`` (``module.Class``), its
    ``channel``, its ``parent``'s id (``None`` for the root) and its ``handlers``."""

    id: str
    label: str
    cls: str
    channel: str
    parent: str | None
    handlers: tuple[HandlerInfo, ...]

    def to_json(self) -> dict[str, Any]:
        """As JSON (see ``docs/tools.md``)."""
        return {
            "id": self.id,
            "label": self.label,
            "class": self.cls,
            "channel": self.channel,
            "parent": self.parent,
            "handlers": [h.to_json() for h in self.handlers],
        }


@dataclasses.dataclass(frozen=True)
class GraphData:
    """A tree's description: its ``components`` in tree order, and for each channel the
    ``(component id, event names)`` pairs of those listening on it (``channels``)."""

    components: tuple[ComponentInfo, ...]
    channels: dict[str, tuple[tuple[str, tuple[str, ...]], ...]]

    def component(self, id_or_label: str) -> ComponentInfo:
        """The component of that id or label (``KeyError`` if none)."""
        for info in self.components:
            if id_or_label in (info.id, info.label):
                return info
        raise KeyError(id_or_label)

    def children(self, id: str) -> list[ComponentInfo]:
        """The components whose parent is ``id``."""
        return [c for c in self.components if c.parent == id]

    def to_json(self) -> dict[str, Any]:
        """As JSON: ``{"version": 1, "components": [...], "channels": {...}}``."""
        return {
            "version": 1,
            "components": [c.to_json() for c in self.components],
            "channels": {
                name: [{"component": cid, "names": list(names)} for cid, names in listeners]
                for name, listeners in self.channels.items()
            },
        }
