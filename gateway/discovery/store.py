"""The endpoints of one Service, kept from a list and its watch events: pure, no I/O.

The watcher only translates what the API server sends into calls here (``replace`` for a list,
``apply`` for an event, ``advance`` for a bookmark). Reading is by ``snapshot``: an immutable
view, built once per batch of changes, that the routing side swaps in whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.discovery.endpoints import Endpoint, best_of, parse_endpoint, slice_port

__all__ = ["EndpointSnapshot", "SliceStore"]

_EMPTY: Mapping[str, Endpoint] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class EndpointSnapshot:
    """The endpoint set at one resourceVersion; never changed once made."""

    endpoints: Mapping[str, Endpoint] = field(default_factory=lambda: _EMPTY)  # by address
    resource_version: str = ""
    generation: int = 0  # counts snapshots, so a consumer can tell old from new

    def addresses(self) -> frozenset[str]:
        return frozenset(self.endpoints)


@dataclass(frozen=True, slots=True)
class _Parsed:
    port: tuple[int | None, str]
    raw: list[Any]
    parsed: list[Endpoint | None]


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class SliceStore:
    """EndpointSlices by name, the endpoints they add up to, and the resourceVersion seen."""

    def __init__(self, port_name: str | None) -> None:
        self.port_name = port_name
        self.resource_version = ""
        self._slices: dict[str, tuple[Endpoint, ...]] = {}
        self._by_address: dict[str, dict[str, Endpoint]] = {}  # address -> slice -> endpoint
        self._merged: dict[str, Endpoint] = {}
        self._changed: set[str] = set()
        self._snapshot = EndpointSnapshot()
        self._raw: dict[str, _Parsed] = {}  # by slice: what each endpoint's JSON gave

    @property
    def dirty(self) -> bool:
        """Whether the endpoints changed since the last snapshot."""
        return bool(self._changed)

    def replace(self, items: Iterable[Mapping[str, Any]], resource_version: str) -> None:
        """A full list: it replaces everything (what the list lacks is gone)."""
        listed = {_name(o): self._parse(_name(o), o) for o in items}
        for name in [n for n in self._slices if n not in listed]:
            self._raw.pop(name, None)
            self._set(name, ())
        for name, endpoints in listed.items():
            self._set(name, endpoints)
        self.resource_version = resource_version

    def apply(self, kind: str, obj: Mapping[str, Any]) -> None:
        """One watch event: ADDED, MODIFIED or DELETED of a slice."""
        name = _name(obj)
        if kind == "DELETED":
            self._raw.pop(name, None)
            self._set(name, ())
        elif kind in ("ADDED", "MODIFIED"):
            self._set(name, self._parse(name, obj))
        self.advance(_version(obj))

    def advance(self, resource_version: str) -> None:
        """A bookmark (or any event): the version to resume watching from."""
        if resource_version:
            self.resource_version = resource_version

    def snapshot(self) -> tuple[EndpointSnapshot, frozenset[str]]:
        """The current view, and the addresses whose endpoint changed since the last one."""
        changed = frozenset(self._changed)
        if changed or self._snapshot.resource_version != self.resource_version:
            self._snapshot = EndpointSnapshot(
                MappingProxyType(dict(self._merged)),
                self.resource_version,
                self._snapshot.generation + 1,
            )
            self._changed.clear()
        return self._snapshot, changed

    def _parse(self, name: str, obj: Mapping[str, Any]) -> tuple[Endpoint, ...]:
        """The slice's endpoints; an endpoint whose JSON is as before is not parsed again
        (a MODIFIED slice of a hundred endpoints usually changes one)."""
        port = slice_port(obj, self.port_name)
        address_type = str(obj.get("addressType") or "IPv4")
        raw = list(obj.get("endpoints") or ())
        prev = self._raw.get(name)
        same = prev is not None and prev.port == (port, address_type)
        parsed: list[Endpoint | None] = []
        for i, ep in enumerate(raw):
            if same and prev is not None and i < len(prev.raw) and prev.raw[i] == ep:
                parsed.append(prev.parsed[i])
            else:
                parsed.append(None if port is None else parse_endpoint(ep, port, address_type))
        self._raw[name] = _Parsed((port, address_type), raw, parsed)
        return tuple(e for e in parsed if e is not None)

    def _set(self, name: str, endpoints: tuple[Endpoint, ...]) -> None:
        old = self._slices.get(name, ())
        if old == endpoints:
            return
        if endpoints:
            self._slices[name] = endpoints
        else:
            self._slices.pop(name, None)
        before = {e.address: e for e in old}
        after = {e.address: e for e in endpoints}
        for address in before.keys() | after.keys():
            was, now = before.get(address), after.get(address)
            if was == now:
                continue  # most of a modified slice: untouched
            holders = self._by_address.setdefault(address, {})
            if now is None:
                holders.pop(name, None)
            else:
                holders[name] = now
            self._remerge(address, holders)

    def _remerge(self, address: str, holders: dict[str, Endpoint]) -> None:
        merged = self._merged.get(address)
        best = best_of(holders.values()) if holders else None
        if best is None:
            del self._by_address[address]
            self._merged.pop(address, None)
        else:
            self._merged[address] = best
        if best != merged:
            self._changed.add(address)
