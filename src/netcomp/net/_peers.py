"""Who may connect: lists of IP networks (``allow=``, ``deny=``) checked once per peer.

Rules:
* A network is anything :func:`ipaddress.ip_network` takes (``"10.0.0.0/8"``,
  ``"::1"``, an address object, a network object); a bad one is refused at construction,
  naming it.
* A peer is permitted when it is in no ``deny`` network and, if an ``allow`` list is
  given, in one of its networks (deny wins). An IPv4-mapped IPv6 peer
  (``::ffff:127.0.0.2``) is checked as the IPv4 address it is; an IPv6 scope
  (``fe80::1%eth0``) is ignored. A peer that is not an IP address (a UNIX socket's) is
  never permitted by a filter: a server that filters is an IP server.
* Stream servers check at accept, datagram servers per datagram, and only when a list is
  given: a server without one runs the code it ran before.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

__all__ = ["NetworkSpec", "Networks", "PeerFilter", "peer_host"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_ONE = (str, ipaddress.IPv4Network, ipaddress.IPv6Network)
_ADDRESSES = (ipaddress.IPv4Address, ipaddress.IPv6Address)

#: What a network list takes: one network, or an iterable of them.
NetworkSpec = str | _Network | _Address | Iterable[str | _Network | _Address]


def _address(host: Any) -> _Address | None:
    """``host`` (text, with an optional IPv6 scope) as an address, or None."""
    if not isinstance(host, str):
        return None
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def peer_host(peer: Any) -> Any:
    """The host part of a socket address (``(host, port, ...)`` -> ``host``)."""
    return peer[0] if isinstance(peer, tuple) and peer else peer


class Networks:
    """An immutable list of IP networks, asked ``address in networks``.

    ``Networks(["127.0.0.0/8", "::1"])``; ``"10.1.2.3" in networks``. An address may be
    given as text (with an IPv6 scope) or as a socket address tuple.
    """

    __slots__ = ("_v4", "_v6", "networks")

    def __init__(self, networks: NetworkSpec = ()) -> None:
        if isinstance(networks, (*_ONE, *_ADDRESSES)):
            networks = [networks]
        if not isinstance(networks, Iterable):
            raise TypeError(
                f"expected a network or a list of networks ('10.0.0.0/8', '::1'), got {networks!r}"
            )
        found: list[_Network] = []
        for item in networks:
            if not isinstance(item, (*_ONE, *_ADDRESSES)):
                raise TypeError(f"expected a network such as '10.0.0.0/8', got {item!r}")
            try:
                found.append(ipaddress.ip_network(item, strict=False))
            except ValueError as err:
                raise ValueError(f"bad network {item!r}: {err}") from None
        #: The networks, as :mod:`ipaddress` objects.
        self.networks: tuple[_Network, ...] = tuple(found)
        self._v4 = tuple(n for n in found if n.version == 4)
        self._v6 = tuple(n for n in found if n.version == 6)

    def __contains__(self, peer: object) -> bool:
        address = _address(peer_host(peer))
        if address is None:
            return False
        for network in self._v4 if address.version == 4 else self._v6:
            if address in network:
                return True
        return False

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __len__(self) -> int:
        return len(self.networks)

    def __repr__(self) -> str:
        return f"Networks({[str(n) for n in self.networks]!r})"


class PeerFilter:
    """``allow`` and ``deny`` network lists: :meth:`permits` says whether a peer may talk."""

    __slots__ = ("allow", "deny")

    def __init__(self, allow: NetworkSpec | None = None, deny: NetworkSpec | None = None) -> None:
        #: Peers must be in one of these networks; None: any peer not denied.
        self.allow: Networks | None = None if allow is None else Networks(allow)
        #: Peers in these networks are refused (``deny`` wins over ``allow``).
        self.deny: Networks | None = None if deny is None else Networks(deny)

    @classmethod
    def make(cls, allow: NetworkSpec | None, deny: NetworkSpec | None) -> PeerFilter | None:
        """A filter, or None when neither list is given (nothing to check)."""
        if allow is None and deny is None:
            return None
        return cls(allow, deny)

    def permits(self, peer: Any) -> bool:
        """Whether ``peer`` (an address tuple or host text) may talk to the server."""
        if _address(peer_host(peer)) is None:
            return False
        if self.deny is not None and peer in self.deny:
            return False
        return self.allow is None or peer in self.allow

    def __repr__(self) -> str:
        return f"PeerFilter(allow={self.allow!r}, deny={self.deny!r})"
