"""What the REST server hands its handlers and what they give back: requests and responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["ErrorHandler", "Handler", "Request", "Response", "json_response"]


@dataclass(slots=True)
class Request:
    """One parsed request: ``path`` as sent (percent-encoded, without the query), ``headers``
    by lower-case name (repeated fields joined with ", "; trailers are not headers), ``params``
    from the route pattern, each segment percent-decoded once (set once routed)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool = True
    params: dict[str, str] = field(default_factory=dict)
    tenant: Any = None  # the caller, once its key is checked (None: no tenants configured)


@dataclass(frozen=True, slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, BaseException], Response | None]


def json_response(
    doc: object, status: int = 200, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    return Response(status, orjson.dumps(doc), "application/json", headers)
