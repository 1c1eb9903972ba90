"""Pollers, where circuits users import them (``circuits.core.pollers``): ``Poller``
chooses the selector a tree's loop waits in (it never polls); ``Select``, ``Poll``,
``EPoll`` and ``KQueue`` are Pollers with a fixed backend, ``BasePoller`` circuits' name
for their base (``Poller`` itself). The one implementation is ``netcomp.core``'s; this
module only names it again."""

from ._pollers import BasePoller, EPoll, KQueue, Poll, Poller, Select, ensure_poller

__all__ = ["BasePoller", "EPoll", "KQueue", "Poll", "Poller", "Select", "ensure_poller"]
