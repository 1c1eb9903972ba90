"""WebSocket limits and timeouts: one frozen dataclass, every default with its reason.

For comparison (2024 defaults): the ``websockets`` library allows 1 MiB messages, pings
every 20 s and gives up after 20 s without a pong, and waits 10 s for a closing handshake;
aiohttp allows 4 MiB messages and sends no pings unless asked; browsers answer pings
at once and send one frame per message.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WebSocketLimits"]

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class WebSocketLimits:
    """What one WebSocket accepts from its peer, and how long it waits (bytes, seconds).

    A breach closes that WebSocket only, with the close code in brackets. ``None`` for a
    timeout means "never".
    """

    #: One message, reassembled from its frames, counted as the frames arrive (never
    #: after buffering) and, with permessage-deflate, both as received and after
    #: inflation, so a compression bomb stops at this size [1009]. 1 MiB, as websockets.
    max_message_size: int = 1 * MiB
    #: Frames in one message [1008]. Empty continuation frames would otherwise let a peer
    #: keep a message open forever at no cost in size; browsers send one frame a message.
    max_frames: int = 1024
    #: Seconds without any input after which a ping is sent. ``None``: no keepalive.
    ping_interval: float | None = 20.0
    #: Seconds after a ping with no input at all before the peer counts as dead: the
    #: WebSocket fails [1011] and its connection is cut.
    ping_timeout: float | None = 20.0
    #: Seconds to wait for the peer's close frame after ours (then the connection is cut),
    #: and, on the client, for the server to end the connection after the handshake.
    close_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in ("max_message_size", "max_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"WebSocketLimits.{name} must be an int >= 1, got {value!r}")
        for name in ("ping_interval", "ping_timeout", "close_timeout"):
            value = getattr(self, name)
            if value is None and name != "close_timeout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(
                    f"WebSocketLimits.{name} must be a positive number of seconds"
                    f"{'' if name == 'close_timeout' else ' or None'}, got {value!r}"
                )
