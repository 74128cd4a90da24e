"""EndpointSlices as the endpoints a model may use: pure, with conditions as KEP-1669 means them.

- ``ready`` nil counts as ready; a terminating endpoint is never ready, whatever it says.
- ``serving`` nil defers to ``ready``; ``terminating`` nil is false.
- Each slice's port is chosen by name (or the slice's only port when no name is configured);
  an endpoint's address is its first address (all of them are fungible) and that port.
- The same address in two slices (a transient state while slices are rebalanced) is one
  endpoint, with the better of its conditions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

__all__ = [
    "Endpoint",
    "best_of",
    "parse_endpoint",
    "routable",
    "slice_endpoints",
    "slice_port",
]

T = TypeVar("T")


class Endpoint(NamedTuple):
    """One pod address as the EndpointSlices describe it (a tuple: cheap to make and compare,
    and never changed)."""

    address: str  # host:port, IPv6 in brackets
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    pod: str | None = None  # the targetRef's name, when it is a Pod

    @property
    def fallback(self) -> bool:
        """Terminating but still serving: used only when no endpoint is ready (KEP-1669)."""
        return self.serving and self.terminating and not self.ready

    @property
    def rank(self) -> int:
        """Higher is better: ready, then serving-terminating, then neither."""
        if self.ready:
            return 2
        return 1 if self.serving else 0


def _port(ports: Sequence[Mapping[str, Any]] | None, port_name: str | None) -> int | None:
    if not ports:
        return None  # no ports listed means "all ports": nothing to dial
    if port_name is None:
        only = ports[0].get("port") if len(ports) == 1 else None
        return int(only) if only else None
    for port in ports:
        if (port.get("name") or "") == port_name and port.get("port"):
            return int(port["port"])
    return None


def _address(host: str, port: int, address_type: str) -> str:
    return f"[{host}]:{port}" if address_type == "IPv6" or ":" in host else f"{host}:{port}"


def slice_port(obj: Mapping[str, Any], port_name: str | None) -> int | None:
    """The slice's port named ``port_name`` (None: its only port); None when it has none."""
    return _port(obj.get("ports"), port_name)


def parse_endpoint(ep: Mapping[str, Any], port: int, address_type: str) -> Endpoint | None:
    """One endpoint of a slice (its JSON form) on ``port``; None when it has no address."""
    addresses = ep.get("addresses") or ()
    if not addresses:
        return None
    cond = ep.get("conditions") or {}
    terminating = cond.get("terminating") is True
    ready_flag = cond.get("ready")
    ready = (ready_flag is None or ready_flag is True) and not terminating
    serving_flag = cond.get("serving")
    serving = ready if serving_flag is None else serving_flag is True
    ref = ep.get("targetRef") or {}
    return Endpoint(
        _address(str(addresses[0]), port, address_type),
        ready,
        serving or ready,
        terminating,
        ref.get("name") if ref.get("kind", "Pod") == "Pod" else None,
    )


def slice_endpoints(obj: Mapping[str, Any], port_name: str | None) -> tuple[Endpoint, ...]:
    """The endpoints of one EndpointSlice (its JSON form) on the configured port."""
    port = slice_port(obj, port_name)
    if port is None:
        return ()
    address_type = str(obj.get("addressType") or "IPv4")
    parsed = (parse_endpoint(ep, port, address_type) for ep in obj.get("endpoints") or ())
    return tuple(e for e in parsed if e is not None)  # endpoints: None when the slice is empty


def best_of(candidates: Iterable[Endpoint]) -> Endpoint:
    """The one endpoint for an address listed more than once: the best conditions win."""
    return max(candidates, key=lambda e: e.rank)


def routable(items: Iterable[T], endpoint: Callable[[T], Endpoint]) -> list[T]:
    """Where new batches may go: the items whose endpoint is ready, or, only when none is,
    those whose endpoint is terminating but still serving (KEP-1669)."""
    listed = list(items)
    ready = [i for i in listed if endpoint(i).ready]
    if ready:
        return ready
    return [i for i in listed if endpoint(i).fallback]
