"""HTTP limits and timeouts: one frozen dataclass, every default with its reason.

For comparison (2024 defaults): nginx allows an 8 KiB request line and 8 KiB per header
line (``large_client_header_buffers 4 8k``), 1 MiB bodies, 60 s header/body timeouts and 75 s
keep-alive; Apache allows 8,190-byte fields, 100 fields and 60 s; uvicorn closes idle
keep-alive connections after 5 s; tomcat caps the head at 8 KiB.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HTTPLimits"]

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class HTTPLimits:
    """What one HTTP server accepts, and how long it waits (sizes in bytes, times in s).

    A breach answers with the status in brackets and closes that connection only.
    ``None`` for a timeout means "never".
    """

    #: Method, target and version [414]. 8 KiB: what nginx, Apache and most proxies allow.
    max_request_line: int = 8 * KiB
    #: One header field, name and value [431]. Apache's 8,190; nginx's 8 KiB buffer.
    max_field_size: int = 8 * KiB
    #: The whole head, request line and fields [431]. Room for large cookies.
    max_head_size: int = 64 * KiB
    #: Header fields per request [431]. Apache's ``LimitRequestFields``.
    max_fields: int = 100
    #: Request body [413, answered from the head, before reading the body]. 16 MiB.
    max_body_size: int = 16 * MiB
    #: Bodies up to this size are read whole into ``request.body`` before the handler
    #: runs; larger ones (and chunked ones that grow past it) are streamed to it.
    max_buffered_body: int = 1 * MiB
    #: Chunk-extension bytes per chunk [400]: they carry nothing netcomp uses.
    max_chunk_extension: int = 16 * KiB
    #: Pipelined requests parsed ahead of their responses, per connection. Past it the
    #: connection is not read until responses go out (backpressure, not an error).
    max_pipelined: int = 16
    #: Open connections per server [503, then close]. Descriptors are the scarce resource.
    max_connections: int = 10_000
    #: Requests being handled at once per server [503]. ``None``: no limit.
    max_requests: int | None = None
    #: From a request's first byte to its complete head [408, close]: slow-loris defence.
    head_timeout: float | None = 30.0
    #: Idle keep-alive connection with no request in progress [close].
    keepalive_timeout: float | None = 15.0
    #: Silence while a request body is being received [408, close].
    body_timeout: float | None = 60.0
    #: Bytes/s a request head must keep up with once ``min_rate_grace`` has passed since
    #: its first byte [408, close]: by ``t`` s, ``(t - grace) * rate`` bytes. Apache's
    #: ``mod_reqtimeout`` default (500). A 64 KiB head has 30 s anyway (head_timeout);
    #: this cuts one that drips well before. ``None``: no minimum.
    head_min_rate: int | None = 500
    #: The same for a request body [408, close]: a body sent a byte every few seconds
    #: never falls silent for ``body_timeout``, yet holds a connection and a request slot
    #: for as long as it likes. 500 bytes/s (4 kbit/s) is below any real uplink, so
    #: only a peer that means to be slow is cut (a 1 MiB upload may take 35 minutes).
    body_min_rate: int | None = 500
    #: Seconds before the minimum rates apply (Apache: 20): a slow start (TCP slow start,
    #: a client that computes its body as it goes) is never cut.
    min_rate_grace: float = 20.0
    #: A handler's time to start answering [503]. ``None``: wait forever.
    response_timeout: float | None = 60.0
    #: Response bytes buffered over all connections together, at most (each connection
    #: holds at most the server's ``high_water``, 32 KiB by default, plus one chunk of a
    #: streamed body). Over it, every connection that buffers waits as above its high
    #: water (one whose client keeps up goes on). 64 MiB: 2,000 slow readers at 32 KiB
    #: each, a small share of a server's memory. ``None``: no ceiling over the sum.
    output_budget: int | None = 64 * MiB
    #: Seconds the output budget may stay exceeded before the connections congested the
    #: longest (the slowest readers) are closed until it is back to 3/4 [close, one
    #: WARNING counting them]. Long enough for a burst of readers to catch up.
    output_grace: float = 10.0

    def __post_init__(self) -> None:
        for name in (
            "max_request_line",
            "max_field_size",
            "max_head_size",
            "max_fields",
            "max_chunk_extension",
            "max_pipelined",
            "max_connections",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"HTTPLimits.{name} must be at least 1, got {getattr(self, name)}"
                )
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError(
                f"HTTPLimits.max_requests must be at least 1 or None, got {self.max_requests}"
            )
        if self.max_body_size < 0 or self.max_buffered_body < 0:
            raise ValueError("HTTPLimits.max_body_size and max_buffered_body must be >= 0")
        if self.output_budget is not None and self.output_budget < 1:
            raise ValueError(
                f"HTTPLimits.output_budget must be at least 1 or None, got {self.output_budget}"
            )
        for name in ("head_min_rate", "body_min_rate"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"HTTPLimits.{name} must be at least 1 or None, got {value}")
        if self.min_rate_grace < 0:
            raise ValueError(f"HTTPLimits.min_rate_grace must be >= 0, got {self.min_rate_grace}")
        if self.output_grace < 0:
            raise ValueError(f"HTTPLimits.output_grace must be >= 0, got {self.output_grace}")
        for name in ("head_timeout", "keepalive_timeout", "body_timeout", "response_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"HTTPLimits.{name} must be positive or None, got {value}")
