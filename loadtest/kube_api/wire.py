"""The API server's wire forms: Status objects, list envelopes, watch event lines, paths."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

__all__ = [
    "REASONS",
    "Target",
    "error_response",
    "event_line",
    "json_response",
    "list_body",
    "parse_path",
    "parse_selector",
    "status",
]

# The Status ``reason`` the real server sends with each error code.
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A ``v1 Status`` failure, as the server sends with an error code or in an ERROR event."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def json_response(
    obj: Any, code: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``obj`` as the JSON body of a response."""
    return web.Response(
        body=orjson.dumps(obj), status=code, headers=headers, content_type="application/json"
    )


def error_response(
    code: int, message: str, reason: str | None = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An error answer: HTTP ``code`` with a Status body (reason: the code's, unless given)."""
    return json_response(
        status(code, reason or REASONS.get(code, "Unknown"), message), code, headers
    )


def list_body(kind: str, api_version: str, items: list[dict[str, Any]], rv: int) -> bytes:
    return orjson.dumps(
        {
            "kind": f"{kind}List",
            "apiVersion": api_version,
            "metadata": {"resourceVersion": str(rv)},
            "items": items,
        }
    )


def event_line(kind: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


def parse_selector(text: str | None) -> dict[str, str | None]:
    """``a=b,c==d,e`` (equality and existence terms) as {key: value or None}."""
    out: dict[str, str | None] = {}
    for term in (text or "").split(","):
        term = term.strip()
        if not term:
            continue
        if "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            out[key.strip()] = value.strip()
        else:
            out[term] = None
    return out


@dataclass(frozen=True, slots=True)
class Target:
    """What a request path names."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None = None
    subresource: str | None = None

    @property
    def resource(self) -> str:
        return f"{self.group}/{self.version}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def parse_path(path: str) -> Target | None:
    """``/api/v1/namespaces/ns/pods/x`` or ``/apis/g/v/namespaces/ns/plural/name/sub``; a
    cluster-scoped ``/api/v1/namespaces/x`` (a name, no plural after it) is namespace None."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
        return Target(group, version, rest[0], ns, *rest[1:3]) if len(rest) <= 3 else None
    if 1 <= len(rest) <= 2:
        return Target(group, version, rest[0], None, *rest[1:])
    return None
