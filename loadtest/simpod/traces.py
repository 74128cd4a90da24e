"""The W3C trace context each inference call brought, kept so tests and benches can read it back.

The pod never checks a ``traceparent``: whatever string came is recorded (cut to a bounded
length), so tracing can never fail a call.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Literal

__all__ = [
    "RECENT",
    "TRACEPARENT_CHARS",
    "TRACESTATE_CHARS",
    "Protocol",
    "TraceRecorder",
    "from_grpc_metadata",
    "from_http_headers",
]

RECENT = 1_000  # how many calls the recorder remembers
TRACEPARENT_CHARS = 256
TRACESTATE_CHARS = 512  # what W3C asks a vendor to propagate at least
log = logging.getLogger("simpod")
Protocol = Literal["grpc", "http"]
Record = dict[str, str | None]


def from_grpc_metadata(
    metadata: Iterable[tuple[str, str | bytes]] | None,
) -> tuple[str | None, str | None]:
    """The first ``traceparent`` and ``tracestate`` in gRPC metadata (None where absent)."""
    found: dict[str, str] = {}
    for key, value in metadata or ():
        name = key.lower()
        if name in ("traceparent", "tracestate") and name not in found:
            found[name] = value.decode("latin-1") if isinstance(value, bytes) else value
    return found.get("traceparent"), found.get("tracestate")


def from_http_headers(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The ``traceparent`` and ``tracestate`` headers (None where absent)."""
    return headers.get("traceparent"), headers.get("tracestate")


class TraceRecorder:
    """The trace context of the last ``maxlen`` calls that carried one, oldest first."""

    def __init__(self, maxlen: int = RECENT) -> None:
        self._recent: deque[Record] = deque(maxlen=maxlen)

    def record(
        self, traceparent: str | None, tracestate: str | None, *, model: str, protocol: Protocol
    ) -> None:
        """Remember one call's context; a call without ``traceparent`` is not recorded."""
        if traceparent is None:
            return
        parent = traceparent[:TRACEPARENT_CHARS]
        state = None if tracestate is None else tracestate[:TRACESTATE_CHARS]
        self._recent.append(
            {"traceparent": parent, "tracestate": state, "model": model, "protocol": protocol}
        )
        log.debug(
            "%s infer of model '%s' with traceparent %s",
            protocol,
            model,
            parent,
            extra={"traceparent": parent},
        )

    def recent(self) -> list[Record]:
        """Copies of the records, oldest first."""
        return [dict(r) for r in self._recent]
