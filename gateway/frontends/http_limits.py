"""The REST server's limits and deadlines, and the pure rules that apply them.

``due`` decides, from a connection's phase and the time, whether a deadline has passed;
``track_stall`` decides whether a peer has stopped reading its answers. Neither reads the
clock: the server's sweeper passes ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gateway.config import ServerSettings

__all__ = [
    "Action",
    "HttpLimits",
    "Phase",
    "decimal",
    "due",
    "limits_from",
    "track_stall",
]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What a connection may take, and how many there may be. Sizes in bytes, times in s."""

    max_body: int = 64 * 1024 * 1024  # a larger body is answered 413 at once, then closed
    max_head: int = 64 * 1024  # request line and headers (and, apart, a body's trailers): 431
    max_chunk_line: int = 4 * 1024  # a chunk-size line with its extensions: 400
    # Requests parsed ahead of the one being answered: reading pauses past either bound.
    read_ahead_bytes: int = 4 * 1024 * 1024
    read_ahead_requests: int = 16
    write_buffer: int = 256 * 1024  # answers held for a slow reader before reading pauses
    keepalive_s: float = 75.0  # an idle connection is closed after this (aiohttp's 75)
    head_timeout_s: float = 10.0  # from a head's first byte to its end: 408, then closed
    body_timeout_s: float = 60.0  # from the end of the head to the end of the body: 408
    write_stall_s: float = 30.0  # answers unread this long: the connection is aborted
    linger_s: float = 2.0  # after the last answer, the wait for the client to close
    max_connections: int = 4096  # past it a new connection is answered 503 and closed

    @property
    def sweep_s(self) -> float:
        """How often the deadlines are checked: a quarter of the shortest, within 20 ms and 1 s."""
        shortest = min(
            self.keepalive_s,
            self.head_timeout_s,
            self.body_timeout_s,
            self.write_stall_s,
            self.linger_s,
        )
        return min(1.0, max(0.02, shortest / 4))


def limits_from(settings: ServerSettings) -> HttpLimits:
    """The REST server's limits from the ``server`` config section."""
    return HttpLimits(
        max_body=settings.max_request_bytes,
        max_head=settings.http_max_head_bytes,
        read_ahead_bytes=settings.http_read_ahead_bytes,
        keepalive_s=settings.http_keepalive_s,
        head_timeout_s=settings.http_head_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
        write_stall_s=settings.http_write_stall_s,
        max_connections=settings.http_max_connections,
    )


def decimal(value: str) -> int | None:
    """A header field's decimal number: ASCII digits within optional whitespace (RFC 9110
    §5.5); None for anything else (no sign, no ``_``, no other digits Python's int takes)."""
    digits = value.strip(" \t")
    return int(digits) if digits.isascii() and digits.isdigit() else None


class Phase(Enum):
    """Where a connection is, for its deadlines."""

    IDLE = "idle"  # waiting for a request (keep-alive)
    HEAD = "head"  # part of a request head has come
    BODY = "body"  # a head has come, part of its body
    BUSY = "busy"  # answering, with no request partly received
    CLOSING = "closing"  # the last answer is written; the peer is to read it and leave


class Action(Enum):
    NONE = "none"
    CLOSE = "close"  # idle past keep-alive: close quietly
    HEAD_TIMEOUT = "head_timeout"  # 408, then close
    BODY_TIMEOUT = "body_timeout"  # 408, then close
    ABORT = "abort"  # drop the connection and whatever it holds


def due(
    phase: Phase,
    since: float,
    *,
    reading: bool,
    buffered: int,
    stalled_since: float | None,
    now: float,
    limits: HttpLimits,
) -> Action:
    """What the deadlines ask of a connection in ``phase`` since ``since``.

    ``reading`` is False while the server itself holds reading back (read-ahead full, answers
    unread): a head or body cannot be late then. ``buffered`` is the bytes of answers not yet
    taken by the peer, ``stalled_since`` when it last took any (None: it is keeping up).
    """
    if stalled_since is not None and now - stalled_since >= limits.write_stall_s:
        return Action.ABORT
    age = now - since
    if phase is Phase.IDLE:
        return Action.CLOSE if age >= limits.keepalive_s else Action.NONE
    if phase is Phase.CLOSING:
        return Action.ABORT if buffered == 0 and age >= limits.linger_s else Action.NONE
    if not reading:
        return Action.NONE
    if phase is Phase.HEAD and age >= limits.head_timeout_s:
        return Action.HEAD_TIMEOUT
    if phase is Phase.BODY and age >= limits.body_timeout_s:
        return Action.BODY_TIMEOUT
    return Action.NONE


def track_stall(
    buffered: int, drained: int, last_drained: int, stalled_since: float | None, now: float
) -> float | None:
    """Since when the peer has taken none of its answers: None while nothing waits for it or
    it took some since the last look (``drained``, all bytes it has taken, grew)."""
    if buffered == 0 or drained > last_drained:
        return None
    return now if stalled_since is None else stalled_since
