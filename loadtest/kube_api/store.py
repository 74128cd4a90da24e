"""The objects of the API server double, with one resourceVersion counter (as etcd has one),
an event history to watch from, and compaction (what makes an old version ``410 Gone``)."""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "END",
    "AlreadyExists",
    "Change",
    "Conflict",
    "Expired",
    "Invalid",
    "NotFound",
    "ObjectStore",
    "Subscription",
    "matches",
]

END = "END"  # queued to a subscription: the server ends that watch
Key = tuple[str, str, str]  # (resource, namespace, name); resource as "group/version/plural"


class Conflict(Exception):
    """A write with a resourceVersion that is not the object's current one (HTTP 409)."""


class NotFound(Exception):
    """No such object (HTTP 404)."""


class AlreadyExists(Exception):
    """A create of a name that exists (HTTP 409, reason AlreadyExists)."""


class Invalid(Exception):
    """An object that fails validation (HTTP 422, reason Invalid)."""


class Expired(Exception):
    """A watch from a resourceVersion older than the history kept (410 Gone)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One write, as the history keeps it: the object before and after (None: absent)."""

    rv: int
    resource: str
    namespace: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def matches(obj: dict[str, Any] | None, selector: dict[str, str | None]) -> bool:
    """Whether ``obj``'s labels satisfy an equality selector (value None: the key exists)."""
    if obj is None:
        return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all((k in labels) if v is None else labels.get(k) == v for k, v in selector.items())


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Subscription:
    """One watcher's view of the changes to a resource in a namespace, matching a selector."""

    def __init__(self, resource: str, namespace: str | None, selector: dict[str, str | None]):
        self.resource = resource
        self.namespace = namespace
        self.selector = selector
        self.queue: asyncio.Queue[tuple[str, dict[str, Any], int]] = asyncio.Queue()

    def translate(self, change: Change) -> tuple[str, dict[str, Any]] | None:
        """The event this watcher sees for a change, if any (label moves become ADDED or
        DELETED, as the real server sends them)."""
        if change.resource != self.resource:
            return None
        if self.namespace is not None and change.namespace != self.namespace:
            return None
        was, now = matches(change.before, self.selector), matches(change.after, self.selector)
        if now and change.after is not None:
            return ("MODIFIED" if was else "ADDED"), change.after
        if was and change.before is not None:
            gone = copy.deepcopy(change.before)
            gone["metadata"]["resourceVersion"] = str(change.rv)
            return "DELETED", gone
        return None

    def offer(self, change: Change) -> None:
        event = self.translate(change)
        if event is not None:
            self.queue.put_nowait((event[0], event[1], change.rv))


class ObjectStore:
    """Namespaced objects of any resource, their history, and live watchers."""

    def __init__(self, history_limit: int = 10_000) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.history: list[Change] = []
        self.compacted = 0  # versions at or below this are forgotten
        self._rv = itertools.count(1)
        self.rv = 0
        self._history_limit = history_limit
        self._subscriptions: set[Subscription] = set()
        self.on_write: list[Callable[[Change], None]] = []

    def _next_rv(self) -> int:
        self.rv = next(self._rv)
        return self.rv

    # -- reads -------------------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self.objects.get((resource, namespace, name))
        if obj is None:
            raise NotFound(f'{resource.rsplit("/", 1)[-1]} "{name}" not found')
        return copy.deepcopy(obj)

    def list(
        self, resource: str, namespace: str | None, selector: dict[str, str | None]
    ) -> tuple[list[dict[str, Any]], int]:
        items = [
            copy.deepcopy(obj)
            for (res, ns, _), obj in sorted(self.objects.items())
            if res == resource and (namespace is None or ns == namespace) and matches(obj, selector)
        ]
        return items, self.rv

    # -- writes ------------------------------------------------------------------------------

    def create(self, resource: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        key = (resource, namespace, str(meta.get("name", "")))
        if key in self.objects:
            raise AlreadyExists(f'"{key[2]}" already exists')
        meta.update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            creationTimestamp=_timestamp(),
            generation=1,
        )
        return self._write(key, None, obj)

    def replace(self, resource: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT: the whole object; a resourceVersion in it must be the current one."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = (resource, namespace, str(meta.get("name", "")))
        before = self.objects.get(key)
        if before is None:
            raise NotFound(f'"{key[2]}" not found')
        sent = meta.get("resourceVersion")
        if sent and str(sent) != before["metadata"]["resourceVersion"]:
            raise Conflict(_conflict_message(key[2]))
        for field in ("uid", "creationTimestamp", "namespace"):
            meta[field] = before["metadata"][field]
        generation = before["metadata"].get("generation", 1)
        meta["generation"] = generation + (obj.get("spec") != before.get("spec"))
        return self._write(key, before, obj)

    def update(
        self,
        resource: str,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any]], None],
        expect_rv: str | None = None,
    ) -> dict[str, Any]:
        """Read, change in place, write back; ``expect_rv`` guards it (409 when stale)."""
        current = self.get(resource, namespace, name)
        if expect_rv and expect_rv != current["metadata"]["resourceVersion"]:
            raise Conflict(_conflict_message(name))
        change(current)
        current["metadata"].pop("resourceVersion", None)
        return self.replace(resource, namespace, current)

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        key = (resource, namespace, name)
        before = self.objects.get(key)
        if before is None:
            raise NotFound(f'"{name}" not found')
        rv = self._next_rv()
        del self.objects[key]
        self._record(Change(rv, resource, namespace, before, None))
        gone = copy.deepcopy(before)
        gone["metadata"]["resourceVersion"] = str(rv)
        return gone

    def _write(
        self, key: Key, before: dict[str, Any] | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        self.objects[key] = obj
        self._record(Change(rv, key[0], key[1], before, obj))
        return copy.deepcopy(obj)

    def _record(self, change: Change) -> None:
        self.history.append(change)
        if len(self.history) > self._history_limit:
            drop = len(self.history) - self._history_limit
            self.compacted = self.history[drop - 1].rv
            del self.history[:drop]
        for sub in list(self._subscriptions):
            sub.offer(change)
        for hook in self.on_write:
            hook(change)

    def compact(self) -> None:
        """Forget the history: any watch from a version before now gets 410 Gone."""
        self.history.clear()
        self.compacted = self.rv

    # -- watches -----------------------------------------------------------------------------

    def subscribe(
        self,
        resource: str,
        namespace: str | None,
        selector: dict[str, str | None],
        since: str,
    ) -> Subscription:
        """A watcher from ``since``: "" or "0" start with the current objects as ADDED (the
        real server's "any version"); otherwise the changes after it, or Expired."""
        sub = Subscription(resource, namespace, selector)
        if since in ("", "0"):
            items, rv = self.list(resource, namespace, selector)
            for obj in items:
                sub.queue.put_nowait(("ADDED", obj, rv))
        else:
            start = int(since)
            if start < self.compacted:
                raise Expired(f"too old resource version: {start} ({self.compacted + 1})")
            for change in self._since(start):
                sub.offer(change)
        self._subscriptions.add(sub)
        return sub

    def end_watches(self) -> None:
        for sub in self._subscriptions:
            sub.queue.put_nowait((END, {}, self.rv))

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    def _since(self, rv: int) -> Iterator[Change]:
        return (c for c in self.history if c.rv > rv)


def _conflict_message(name: str) -> str:
    return (
        f'Operation cannot be fulfilled on "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
