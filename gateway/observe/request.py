"""One inference request as the logs and traces see it: its id and what happened to it.

The request id is the caller's ``X-Request-Id`` (HTTP) or ``x-request-id`` (gRPC metadata)
when one came, else the v2 ``id`` of the request body when it could be a header's value (1 to
200 visible ASCII characters), else one made here (16 hex digits);
the answer carries it back in the same header or metadata. The scheduler fills in where the
request went (its time in the queue, its batch, its pod), so the access log and the trace can
say so.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.errors import Code, InferError

if TYPE_CHECKING:
    from gateway.observe.tracing import TracedRequest
    from gateway.tenants.directory import Tenant

__all__ = ["MAX_ID_CHARS", "REQUEST_ID_HEADER", "RequestInfo", "checked_request_id", "new_id"]

REQUEST_ID_HEADER = "X-Request-Id"
MAX_ID_CHARS = 200
_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID_CHARS}}}")  # visible ASCII: safe in headers and logs


def new_id() -> str:
    """A fresh request id: 64 random bits as 16 hex digits."""
    return os.urandom(8).hex()


def checked_request_id(value: str | None) -> str:
    """The caller's request id as given; '' for none; INVALID_ARGUMENT for one that is too long
    or holds spaces or characters that are not visible ASCII."""
    if value is None or value == "":
        return ""
    if _ID.fullmatch(value) is None:
        raise InferError(
            Code.INVALID_ARGUMENT,
            f"{REQUEST_ID_HEADER} must be 1 to {MAX_ID_CHARS} visible ASCII characters",
        )
    return value


@dataclass(slots=True, eq=False)
class RequestInfo:
    """What one request's access-log line and trace say; filled in as the request goes."""

    protocol: str  # "http" or "grpc"
    start_ns: int  # time.perf_counter_ns() as it came
    given_id: str = ""  # from the header or metadata
    model: str = ""
    body_id: str = ""  # the v2 request's own id
    rows: int = 0
    queue_ns: int = 0  # in the queue, until its (last) batch was sent
    batch_rows: int = 0  # rows of its (last) batch
    pod: str = ""  # where its (last) batch went
    tries: int = 0  # batches it was sent in (more than one: retried on another pod)
    trace: TracedRequest | None = None  # its spans, when it is traced
    tenant: Tenant | None = None  # who called, once known
    forwarded: bool = False  # sent on by another gateway replica: never sent on again
    _made_id: str = ""

    @property
    def request_id(self) -> str:
        """The header's id, else the body's, else one made once for this request."""
        if self.given_id:
            return self.given_id
        if self.body_id and _ID.fullmatch(self.body_id) is not None:
            return self.body_id  # one that can go in a header (else it stays in the body only)
        if not self._made_id:
            self._made_id = new_id()
        return self._made_id

    def sent(self, queue_ns: int, batch_rows: int, pod: str) -> None:
        """Its batch went to ``pod`` after ``queue_ns`` in the queue."""
        self.queue_ns = queue_ns
        self.batch_rows = batch_rows
        self.pod = pod
        self.tries += 1
