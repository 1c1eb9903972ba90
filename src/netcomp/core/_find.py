"""Finding components in a tree: by channel, by type, the root (circuits' ``utils``).

Rules: a search covers the tree under the component it is given, that component
included, parents before children (the order of ``walk()``); ``all=True`` returns every
match as a list, otherwise the first one (``None`` when there is none).
"""

from __future__ import annotations

from typing import Any, TypeVar

from ._manager import Manager

__all__ = ["findchannel", "findcmp", "findroot", "findtype"]

M = TypeVar("M", bound=Manager)


def findchannel(root: Manager, channel: Any, all: bool = False) -> Any:
    """The first component under ``root`` (itself included) whose channel is
    ``channel``; with ``all=True``, the list of them."""
    found = [c for c in root.walk() if c.channel == channel]
    if all:
        return found
    return found[0] if found else None


def findtype(root: Manager, cls: type[M], all: bool = False) -> Any:
    """The first component under ``root`` (itself included) that is an instance of
    ``cls``; with ``all=True``, the list of them."""
    found = [c for c in root.walk() if isinstance(c, cls)]
    if all:
        return found
    return found[0] if found else None


def findcmp(root: Manager, cls: type[M], all: bool = False) -> Any:
    """circuits' other name for :func:`findtype`."""
    return findtype(root, cls, all)


def findroot(component: Manager) -> Manager:
    """The root of the tree ``component`` is in (``component.root``)."""
    return component.root
