"""One list and one watch request for EndpointSlices, read off the wire: the innermost layer.

kubernetes-asyncio makes the requests (auth, TLS, kubeconfig); the watch stream is read here
rather than through its ``Watch`` helper, whose hidden retries get in the way: it retries a
410 once with the same stale resourceVersion, and a cut stream or a silent one is not its
business. Here every way a stream ends is explicit:

- the server ended the watch (its ``timeoutSeconds``): the iterator ends;
- ``410 Gone`` (an ERROR event holding a Status with code 410, or a 410 response): ``Expired``;
- any other ERROR event or HTTP error status: ``ApiException`` with that status;
- a stream cut mid-chunk: ``aiohttp.ClientPayloadError`` (or another ``aiohttp.ClientError``);
- nothing at all for ``silence_s`` (not even a bookmark): ``TimeoutError`` (the watchdog).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio.client import DiscoveryV1Api
from kubernetes_asyncio.client.exceptions import ApiException

__all__ = ["Expired", "WatchEvent", "list_slices", "watch_slices"]


class Expired(Exception):
    """410 Gone: the resourceVersion is older than the server keeps; list again."""


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One event of a watch: ADDED, MODIFIED, DELETED or BOOKMARK, with its object's JSON."""

    kind: str
    obj: dict[str, Any]

    @property
    def resource_version(self) -> str:
        return str((self.obj.get("metadata") or {}).get("resourceVersion") or "")


def _status_error(code: int, body: Any) -> Exception:
    reason = ""
    if isinstance(body, dict):
        reason = f"{body.get('reason', '')}: {body.get('message', '')}"
    if code == 410:
        return Expired(reason or "410 Gone")
    return ApiException(status=code, reason=reason or f"HTTP {code}")


async def _http_error(resp: Any) -> Exception:
    raw = await resp.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    return _status_error(int(resp.status), body)


async def list_slices(
    api: DiscoveryV1Api, namespace: str, selector: str, *, timeout_s: float
) -> tuple[list[dict[str, Any]], str]:
    """The Service's slices and the list's resourceVersion (raw JSON: no model objects)."""
    resp: Any = await asyncio.wait_for(
        api.list_namespaced_endpoint_slice(
            namespace,
            label_selector=selector,
            _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(total=timeout_s),
        ),
        timeout_s,
    )
    try:
        if resp.status != 200:
            raise await _http_error(resp)
        doc = orjson.loads(await asyncio.wait_for(resp.read(), timeout_s))
    finally:
        resp.release()
    version = str((doc.get("metadata") or {}).get("resourceVersion") or "")
    return list(doc.get("items") or ()), version


async def watch_slices(
    api: DiscoveryV1Api,
    namespace: str,
    selector: str,
    resource_version: str,
    *,
    timeout_s: float,
    silence_s: float,
    connect_s: float,
) -> AsyncIterator[WatchEvent]:
    """Events after ``resource_version`` until the server ends the watch (see the module)."""
    resp: Any = await asyncio.wait_for(
        api.list_namespaced_endpoint_slice(
            namespace,
            label_selector=selector,
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=max(1, int(timeout_s)),
            _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(sock_connect=connect_s, sock_read=silence_s + 1),
        ),
        connect_s + silence_s,
    )
    try:
        if resp.status != 200:
            raise await _http_error(resp)
        buffer = bytearray()
        while True:
            newline = buffer.find(b"\n")
            if newline < 0:
                chunk = await asyncio.wait_for(resp.content.readany(), silence_s)  # watchdog
                if chunk:
                    buffer += chunk
                    continue
                if not buffer.strip():
                    return  # the server ended the watch
                newline = len(buffer)
            line = bytes(buffer[:newline])
            del buffer[: newline + 1]
            if line.strip():
                yield _event(orjson.loads(line))
    finally:
        resp.close()


def _event(doc: Any) -> WatchEvent:
    if not isinstance(doc, dict) or "type" not in doc:
        raise ApiException(status=500, reason=f"malformed watch event: {str(doc)[:200]}")
    obj = doc.get("object") or {}
    if doc["type"] == "ERROR":
        raise _status_error(int(obj.get("code") or 500), obj)
    return WatchEvent(str(doc["type"]), obj)
