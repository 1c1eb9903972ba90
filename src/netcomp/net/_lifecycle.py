"""The lifecycle of a stream connection: its states and the transitions allowed between them.

A :class:`~netcomp.net.Connection` is in exactly one :class:`ConnectionState`; every change
goes through ``Connection._transition``, checked against :data:`TRANSITIONS` (anything else
is a bug and raises). What is not a stage of the lifecycle is a flag of its own on the
connection, independent of the state: ``held`` (the owner paused input), ``congested``
(output above high water), ``eof`` (the peer sent its FIN or close_notify), ``tls``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = ["TRANSITIONS", "ConnectionState"]


class ConnectionState(enum.Enum):
    """Where a connection is in its life (see :data:`TRANSITIONS` for the moves)."""

    #: A client's TCP connect is in progress (writes are kept until it is up).
    CONNECTING = "connecting"
    #: The TLS handshake is in progress (writes are kept until it is done).
    HANDSHAKING = "handshaking"
    #: Up: data flows both ways (the peer may have half-closed: ``eof``).
    OPEN = "open"
    #: ``close()`` was asked: the buffered output is being sent; input is dropped.
    CLOSING = "closing"
    #: Our FIN is sent: waiting (bounded) for the peer's EOF before closing the socket.
    LINGERING = "lingering"
    #: The socket is closed (terminal).
    CLOSED = "closed"

    # Members are singletons: hash them by identity, in C. Enum's own __hash__ is a Python
    # method, and a transition check hashes two states (measured: 1 us a connection).
    __hash__ = object.__hash__


CONNECTING = ConnectionState.CONNECTING
HANDSHAKING = ConnectionState.HANDSHAKING
OPEN = ConnectionState.OPEN
CLOSING = ConnectionState.CLOSING
LINGERING = ConnectionState.LINGERING
CLOSED = ConnectionState.CLOSED

#: state -> the states it may move to. A client starts in CONNECTING (TCP up: OPEN, or
#: HANDSHAKING when TLS was asked for); an accepted connection starts in OPEN (TLS servers
#: and STARTTLS move it to HANDSHAKING). CLOSED is reachable from everywhere (an error, an
#: abort) and leads nowhere.
TRANSITIONS: Mapping[ConnectionState, frozenset[ConnectionState]] = {
    CONNECTING: frozenset({OPEN, HANDSHAKING, CLOSED}),
    HANDSHAKING: frozenset({OPEN, CLOSED}),
    OPEN: frozenset({HANDSHAKING, CLOSING, LINGERING, CLOSED}),
    CLOSING: frozenset({LINGERING, CLOSED}),
    LINGERING: frozenset({CLOSED}),
    CLOSED: frozenset(),
}

#: The states a connection is created in.
INITIAL = frozenset({CONNECTING, OPEN})
