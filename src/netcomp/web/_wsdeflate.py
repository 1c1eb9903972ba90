"""permessage-deflate (RFC 7692) with bounded inflation, over wsproto's extension.

wsproto's :class:`~wsproto.extensions.PerMessageDeflate` inflates each frame's payload
whole: a few KiB of a compression bomb become gigabytes before anyone can count them.
:class:`BoundedDeflate` keeps wsproto's negotiation and compression and replaces the
inbound side: every ``decompress`` call is given the room left in the message
(``max_length``), so no message grows past ``max_size`` after inflation; and the bytes
received for one compressed message are bounded too, by ``max_size`` plus deflate's
overhead on data that does not compress (1/16 and 1 KiB: zlib's own worst case is about
0.03 %), since empty deflate blocks inflate to nothing and must not keep a message open
forever. A breach is a 1009 close whose reason is in :attr:`BoundedDeflate.violation`.

Outbound, messages shorter than ``MIN_COMPRESS`` bytes are sent uncompressed (RFC 7692
lets a sender choose per message): deflating them costs more than it saves. So is a
message that deflate makes no smaller, when our side keeps no compression context (the
server's case: its compressor starts afresh for each message anyway).
"""

from __future__ import annotations

import zlib
from typing import Final

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

__all__ = ["MIN_COMPRESS", "SYNC_TAIL", "BoundedDeflate"]

#: Messages shorter than this are sent uncompressed.
MIN_COMPRESS: Final = 128
#: What a sender strips from the end of each compressed message (RFC 7692 section 7.2.1).
SYNC_TAIL: Final = b"\x00\x00\xff\xff"
_USED: Final = RsvBits(True, False, False)


class BoundedDeflate(PerMessageDeflate):
    """permessage-deflate whose inflation of one message stops at ``max_size`` bytes."""

    def __init__(
        self,
        max_size: int,
        client_no_context_takeover: bool = False,
        client_max_window_bits: int | None = None,
        server_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
    ) -> None:
        super().__init__(
            client_no_context_takeover,
            client_max_window_bits,
            server_no_context_takeover,
            server_max_window_bits,
        )
        self.max_size = max_size
        self.max_received = max_size + (max_size >> 4) + 1024
        #: (code, reason) of the limit a peer broke, for the close frame.
        self.violation: tuple[int, str] | None = None
        self._inflater: zlib._Decompress | None = None
        self._data_frame = False  # the frame being received is a data frame
        self._compressed = False  # the message being received is compressed
        self._received = 0  # compressed bytes of that message so far
        self._inflated = 0  # bytes inflated from them so far

    # ------------------------------------------------------------------ inbound
    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        """Note whether a message starts compressed (RSV1 on its first frame only)."""
        if rsv.rsv1 and (opcode.iscontrol() or opcode is Opcode.CONTINUATION):
            return CloseReason.PROTOCOL_ERROR
        self._data_frame = not opcode.iscontrol()
        if self._data_frame and opcode is not Opcode.CONTINUATION:
            self._compressed = rsv.rsv1
            self._received = self._inflated = 0
            if rsv.rsv1 and self._inflater is None:
                bits = self.server_max_window_bits if proto.client else self.client_max_window_bits
                self._inflater = zlib.decompressobj(-bits)
        return _USED

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        """Inflate a piece of a compressed message, within the room the message has left."""
        if not (self._data_frame and self._compressed):
            return data
        self._received += len(data)
        if self._received > self.max_received:
            return self._too_big("compressed message of more than", self.max_received)
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        """At the end of a compressed message, inflate its stripped tail."""
        if not (fin and self._data_frame and self._compressed):
            return None
        self._compressed = False
        out = self._inflate(SYNC_TAIL)
        if proto.client:
            fresh = self.server_no_context_takeover
        else:
            fresh = self.client_no_context_takeover
        if fresh:
            self._inflater = None  # the peer starts each message afresh
        return out

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        inflater = self._inflater
        assert inflater is not None
        room = self.max_size - self._inflated
        try:
            out = inflater.decompress(data, room + 1)  # max_length > 0 always
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self.max_size:
            return self._too_big("message inflating to more than", self.max_size)
        return out

    def _too_big(self, what: str, limit: int) -> CloseReason:
        self.violation = (int(CloseReason.MESSAGE_TOO_BIG), f"{what} {limit} bytes")
        return CloseReason.MESSAGE_TOO_BIG

    # ----------------------------------------------------------------- outbound
    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        """Compress (wsproto's), except whole messages shorter than ``MIN_COMPRESS``, or
        that do not shrink when no context is kept."""
        whole = fin and opcode is not Opcode.CONTINUATION
        if whole and len(data) < MIN_COMPRESS:
            return rsv, data
        packed = super().frame_outbound(proto, opcode, rsv, data, fin)
        if whole and len(packed[1]) >= len(data):
            fresh = (
                self.client_no_context_takeover
                if proto.client
                else self.server_no_context_takeover
            )
            if fresh:
                return rsv, data  # the compressor was dropped: nothing depends on it
        return packed
