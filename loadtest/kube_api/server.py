"""A Kubernetes API server double on loopback, faithful to the REST wire protocol.

What it serves, for any namespaced resource (EndpointSlices, Deployments, Leases, Events…):
list (with ``labelSelector``, the list's ``resourceVersion``), watch (``?watch=1`` with
``resourceVersion``, ``allowWatchBookmarks``, ``timeoutSeconds``; JSON lines over a chunked
response; ``410 Gone`` as an ERROR event holding a Status, as the real server sends it),
get, create, replace and merge-patch with ``409 Conflict`` on a stale resourceVersion, delete,
and the Deployment ``scale`` subresource (``loadtest.kube_api.scale``). Errors are ``Status``
objects (415 for an unknown patch type, 422 for an invalid object). Faults are injected through
``faults`` (``loadtest.kube_api.faults``): broken watches, 503s, and per request (method and
resource) an error with its headers (a 429 with ``Retry-After``) or a racing write just before
it is served; ``stop()`` then ``start()`` on the same port is the API server going down and
coming back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from loadtest.kube_api import discovery, scale
from loadtest.kube_api.faults import Faults
from loadtest.kube_api.patch import UnsupportedMediaType, apply_patch
from loadtest.kube_api.store import (
    END,
    AlreadyExists,
    Conflict,
    Expired,
    Invalid,
    NotFound,
    ObjectStore,
)
from loadtest.kube_api.wire import (
    Target,
    error_response,
    event_line,
    json_response,
    list_body,
    parse_path,
    parse_selector,
    status,
)

__all__ = ["KINDS", "KubeApiServer"]

HOST = "127.0.0.1"
KINDS = discovery.KINDS
Handler = Callable[[web.Request, Target], Awaitable[web.StreamResponse]]


class KubeApiServer:
    """The double: ``store`` holds the objects; ``requests`` logs (method, path, query)."""

    def __init__(self, store: ObjectStore | None = None, faults: Faults | None = None) -> None:
        self.store = store or ObjectStore()
        self.faults = faults or Faults()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._watches: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 (``port`` 0: a free one; again: the port it had)."""
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, port or self.port, reuse_address=True)
        await site.start()
        addresses: Any = self._runner.addresses
        self.port = int(addresses[0][1])

    async def __aenter__(self) -> KubeApiServer:
        """``async with KubeApiServer() as api``: started on a free port, stopped on exit."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Go down: close the listener and every open watch, at once."""
        for task in list(self._watches):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def end_watches(self) -> None:
        """End every open watch cleanly, as the server does when ``timeoutSeconds`` is up."""
        self.store.end_watches()

    def watch_count(self) -> int:
        """Watches open now."""
        return len(self._watches)

    # -- dispatch ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append((request.method, request.path, query))
        fail, self.faults.fail_requests = Faults.take(self.faults.fail_requests)
        if fail:
            return error_response(503, "the API server is unavailable (injected)")
        doc = discovery.document(request.path, f"{HOST}:{self.port}")
        if doc is not None and request.method == "GET":
            return json_response(doc)
        target = parse_path(request.path)
        if target is None:
            return error_response(404, f"the server could not find {request.path}")
        injection = self.faults.take_injection(request.method, target.plural, target.subresource)
        if injection is not None:
            if injection.before is not None:
                injection.before()
            if injection.code is not None:
                return error_response(
                    injection.code, f"injected {injection.code}", headers=injection.headers
                )
        try:
            if target.subresource == "scale" and target.plural == "deployments":
                return await scale.handle(self.store, request, target)
            if target.subresource is not None:
                return error_response(404, f"no subresource {target.subresource}")
            return await self._route(request, target)
        except NotFound as exc:
            return error_response(404, str(exc))
        except AlreadyExists as exc:
            return error_response(409, str(exc), "AlreadyExists")
        except Conflict as exc:
            return error_response(409, str(exc))
        except UnsupportedMediaType as exc:
            return error_response(415, str(exc))
        except Invalid as exc:
            return error_response(422, str(exc))
        except (ValueError, KeyError, TypeError) as exc:
            return error_response(400, f"bad request: {exc}")

    async def _route(self, request: web.Request, target: Target) -> web.StreamResponse:
        method, s = request.method, self.store
        ns = target.namespace or ""
        if target.name is None:
            if method == "GET":
                if request.query.get("watch") in ("1", "true", "True"):
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST" and (
                target.namespace is not None or target.plural in discovery.CLUSTER_SCOPED
            ):
                body = await request.json()
                self._fill(body, target)
                return json_response(s.create(target.resource, ns, body), 201)
        elif method == "GET":
            return json_response(s.get(target.resource, ns, target.name))
        elif method == "PUT":
            body = await request.json()
            self._fill(body, target)
            if body.get("metadata", {}).get("name") != target.name:
                raise ValueError("the name in the body does not match the path")
            return json_response(s.replace(target.resource, ns, body))
        elif method == "PATCH":
            patch = json.loads(await request.text())
            kind = request.content_type
            name = target.name
            current = s.get(target.resource, ns, name)
            patched = apply_patch(current, patch, kind)
            expect = (
                (patch.get("metadata") or {}).get("resourceVersion")
                if isinstance(patch, dict)
                else None
            )
            patched["metadata"]["resourceVersion"] = (
                expect or current["metadata"]["resourceVersion"]
            )
            return json_response(s.replace(target.resource, ns, patched))
        elif method == "DELETE":
            return json_response(s.delete(target.resource, ns, target.name))
        return error_response(405, f"{method} is not supported here")

    def _fill(self, body: dict[str, Any], target: Target) -> None:
        body.setdefault("kind", KINDS.get(target.plural, target.plural))
        body.setdefault("apiVersion", target.api_version)
        body.setdefault("metadata", {})

    def _list(self, request: web.Request, target: Target) -> web.Response:
        selector = parse_selector(request.query.get("labelSelector"))
        items, rv = self.store.list(target.resource, target.namespace, selector)
        kind = KINDS.get(target.plural, target.plural)
        return web.Response(
            body=list_body(kind, target.api_version, items, rv), content_type="application/json"
        )

    # -- watch -------------------------------------------------------------------------------

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._watches.add(task)
        try:
            return await self._stream(request, target)
        finally:
            self._watches.discard(task)

    async def _stream(self, request: web.Request, target: Target) -> web.StreamResponse:
        q = request.query
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        f = self.faults
        expire, f.expire_watches = Faults.take(f.expire_watches)
        silent, f.silent_watches = Faults.take(f.silent_watches)
        cut, f.cut_watches = Faults.take(f.cut_watches)
        since = q.get("resourceVersion", "")
        if expire:
            message = f"too old resource version: {q.get('resourceVersion', '')}"
            await resp.write(event_line("ERROR", status(410, "Expired", message)))
            return resp
        if silent:
            await asyncio.Event().wait()  # until the client gives up or the server stops
        try:
            sub = self.store.subscribe(
                target.resource, target.namespace, parse_selector(q.get("labelSelector")), since
            )
        except Expired as exc:
            await resp.write(event_line("ERROR", status(410, "Expired", str(exc))))
            return resp
        if cut:
            await resp.write(b'{"type":"MODIFIED","object":{"kind":')
            assert request.transport is not None
            request.transport.abort()
            self.store.unsubscribe(sub)
            return resp
        try:
            await self._events(resp, sub, target, q)
        except ConnectionResetError:  # the watcher went away: nothing more to send it
            pass
        finally:
            self.store.unsubscribe(sub)
        return resp

    async def _events(self, resp: web.StreamResponse, sub: Any, target: Target, q: Any) -> None:
        loop = asyncio.get_running_loop()
        timeout = float(q.get("timeoutSeconds") or 1800)
        end = loop.time() + timeout
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1", "True")
        interval = self.faults.bookmark_interval_s if bookmarks else None
        next_mark = loop.time() + interval if interval else float("inf")
        kind = KINDS.get(target.plural, target.plural)
        while (now := loop.time()) < end:
            try:
                event, obj, _ = await asyncio.wait_for(sub.queue.get(), min(end, next_mark) - now)
            except TimeoutError:
                if interval and loop.time() >= next_mark:
                    await resp.write(event_line("BOOKMARK", self.bookmark(kind, target)))
                    next_mark = loop.time() + interval
                continue
            chunk: list[bytes] = []
            while True:  # what is already queued goes in one write
                if event == END:
                    await resp.write(b"".join(chunk))
                    return
                chunk.append(event_line(event, obj))
                if sub.queue.empty():
                    break
                event, obj, _ = sub.queue.get_nowait()
            await resp.write(b"".join(chunk))

    def bookmark(self, kind: str, target: Target) -> dict[str, Any]:
        """A BOOKMARK's object: only the kind and a resourceVersion."""
        return {
            "kind": kind,
            "apiVersion": target.api_version,
            "metadata": {"resourceVersion": str(self.store.rv), "creationTimestamp": None},
        }
