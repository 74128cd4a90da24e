"""Keep a Service's endpoints current from the API server: list, watch, re-list, reconnect.

The layers, outermost first (after kopf's watching module):

1. ``run``: forever, list when needed and watch; on a failure (API down, HTTP error, a cut or silent
   stream) wait a capped, jittered, exponential backoff and go again;
2. ``_list`` when there is no usable version (at first, after ``410 Gone``): the store is
   replaced at once, never emptied first; then ``_watch`` from the version in hand, request
   after request, keeping it current from every event and bookmark (a failed request resumes
   from it after the backoff, without a list); on ``410 Gone`` return to list afresh;
3. ``_watch_once``: one watch request, with a server-side timeout and a silence watchdog
   (``gateway.discovery.stream``).

The watcher holds no policy about endpoints: it only turns what the server sends into store
calls, and publishes the store's snapshot once per batch of events. While the API server is
unreachable the last snapshot stays in force (the gateway's own probes still guard each pod).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from kubernetes_asyncio.client import DiscoveryV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from gateway.backoff import Backoff
from gateway.discovery.store import EndpointSnapshot, SliceStore
from gateway.discovery.stream import Expired, list_slices, watch_slices

__all__ = ["Publish", "SliceWatcher", "WatcherStats", "service_selector"]

log = logging.getLogger(__name__)

Publish = Callable[[EndpointSnapshot, frozenset[str]], None]
_FAILURES = (ApiException, Expired, aiohttp.ClientError, TimeoutError, OSError, ValueError)


def service_selector(service: str) -> str:
    """The label selector of a Service's EndpointSlices."""
    return f"kubernetes.io/service-name={service}"


@dataclass(slots=True)
class WatcherStats:
    """What the watcher has done, for logs, tests and the benchmark."""

    lists: int = 0  # full lists (the first, and after each 410 Gone)
    watches: int = 0  # watch requests started
    events: int = 0  # ADDED, MODIFIED and DELETED events applied
    bookmarks: int = 0
    expired: int = 0  # 410 Gone answers: the resourceVersion was too old
    failures: int = 0  # lists or watches that failed (API down, cut or silent stream)
    publishes: int = 0  # endpoint views handed on


class SliceWatcher:
    """One Service's EndpointSlices, watched; each new endpoint view goes to ``publish``."""

    def __init__(
        self,
        *,
        api: DiscoveryV1Api,
        namespace: str,
        service: str,
        port_name: str | None,
        publish: Publish,
        watch_timeout_s: float = 300.0,
        silence_timeout_s: float = 360.0,
        connect_timeout_s: float = 5.0,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.namespace = namespace
        self.selector = service_selector(service)
        self.store = SliceStore(port_name)
        self.snapshot = EndpointSnapshot()
        self.synced = False  # a list has been applied
        self.stats = WatcherStats()
        self._api = api
        self._publish_to = publish
        self._watch_timeout_s = watch_timeout_s
        self._silence_s = silence_timeout_s
        self._connect_s = connect_timeout_s
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._publish_pending = False
        self._progressed = False  # an event or bookmark since the last list
        self._relist = True

    async def run(self, iterations: int | None = None) -> None:
        """List and watch forever; ``iterations`` bounds the outer loop (a seam for tests)."""
        done = 0
        while iterations is None or done < iterations:
            done += 1
            try:
                if self._relist:
                    await self._list()
                await self._watch()
            except _FAILURES as exc:
                self.stats.failures += 1
                delay = self._backoff.next()
                log.warning(
                    "endpointslices %s/%s: %s; again in %.2f s",
                    self.namespace,
                    self.selector,
                    _describe(exc),
                    delay,
                )
                await self._sleep(delay)

    async def _list(self) -> None:
        """List: the store is replaced at once (no empty view in between)."""
        items, version = await list_slices(
            self._api, self.namespace, self.selector, timeout_s=self._connect_s + self._silence_s
        )
        self.stats.lists += 1
        self.store.replace(items, version)
        self.synced = True
        self._relist = False
        self._progressed = False
        self._publish()

    async def _watch(self) -> None:
        """Watch from the version in hand, request after request, until the server has
        forgotten it (410): then return for a fresh list. A failure (a cut or silent stream,
        an error) propagates; the next round resumes from the same version."""
        while True:
            try:
                await self._watch_once()
            except Expired as exc:
                self.stats.expired += 1
                self._relist = True
                log.info(
                    "endpointslices %s/%s: %s; listing again", self.namespace, self.selector, exc
                )
                if not self._progressed:  # expired straight after a list: do not spin
                    await self._sleep(self._backoff.next())
                return

    async def _watch_once(self) -> None:
        self.stats.watches += 1
        async for event in watch_slices(
            self._api,
            self.namespace,
            self.selector,
            self.store.resource_version,
            timeout_s=self._watch_timeout_s,
            silence_s=self._silence_s,
            connect_s=self._connect_s,
        ):
            if event.kind == "BOOKMARK":
                self.stats.bookmarks += 1
                self.store.advance(event.resource_version)
            else:
                self.stats.events += 1
                self.store.apply(event.kind, event.obj)
                self._publish_soon()
            self._progressed = True
            self._backoff.reset()

    def _publish_soon(self) -> None:
        """Publish once the events already read are applied (one snapshot per batch)."""
        if not self._publish_pending:
            self._publish_pending = True
            asyncio.get_running_loop().call_soon(self._publish)

    def _publish(self) -> None:
        self._publish_pending = False
        snapshot, changed = self.store.snapshot()
        if snapshot is self.snapshot:
            return
        self.snapshot = snapshot
        self.stats.publishes += 1
        self._publish_to(snapshot, changed)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"API error {exc.status} {exc.reason}"
    if isinstance(exc, TimeoutError):
        return "the stream went silent (watchdog)"
    return f"{type(exc).__name__}: {exc}"
