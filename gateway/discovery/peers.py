"""The other gateway replicas as Kubernetes lists them: the fallback while no coordinator answers.

Replicas divide the pods' slots over the list of replicas the coordinator (the autoscaler)
sends back with each load report (gateway.routing.shares). Until one has answered, or when none
has for ``peers_stale_s``, each replica would hold every slot of every pod as if alone, which
is what puts N·S batches on a pod. So a replica may also watch its own Service (the gateway's,
``autoscaler.replicas_discovery``): the replicas it lists ready are named by their pods (their
host names) and reached at the listed address (the Service's HTTP port), which every replica
sees alike, so they lay the slots out the same way without the coordinator.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping

from gateway.config import DiscoverySettings
from gateway.discovery.model_discovery import ModelDiscovery
from gateway.discovery.store import EndpointSnapshot

__all__ = ["ServicePeers", "service_peers"]


def service_peers(view: EndpointSnapshot) -> dict[str, str]:
    """The ready replicas of a gateway Service's view: {pod name (else address): address}."""
    return {(e.pod or address): address for address, e in view.endpoints.items() if e.ready}


class ServicePeers:
    """Watches the gateway's own Service; ``peers`` is the latest list of its ready replicas,
    ``me`` this replica's id in it (its pod name: the host name)."""

    def __init__(
        self,
        settings: DiscoverySettings,
        *,
        on_change: Callable[[], None] = lambda: None,
        host: str | None = None,
    ) -> None:
        self.me = host or socket.gethostname()
        self.peers: Mapping[str, str] = {}
        self._on_change = on_change
        self._discovery = ModelDiscovery(settings, self._publish)

    def _publish(self, view: EndpointSnapshot, _changed: frozenset[str] = frozenset()) -> None:
        peers = service_peers(view)
        if peers != self.peers:
            self.peers = peers
            self._on_change()

    def start(self) -> None:
        self._discovery.start()

    async def stop(self) -> None:
        await self._discovery.stop()
