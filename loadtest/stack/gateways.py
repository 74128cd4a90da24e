"""N gateway replicas in front of the same pods: started, named, addressed and stopped as one.

Every replica gets the same config (the same models, the same static endpoints), as replicas of
one Deployment behind a Service do. ``loadtest goodput``, ``ab`` and ``trace`` start their
gateways here; ``loadtest.stack.spread`` spreads a run's load over them. Several replicas
share the pods' slots through a coordinator, as in a cluster, where the autoscaler is that
coordinator: unless the config already names an autoscaler, one is started here in dry run
(it decides nothing that is applied) and every replica reports to it under its own name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loadtest.clients.base import is_grpc
from loadtest.stack.procs import AutoscalerProc, GatewayProc, start_autoscaler, start_gateway

__all__ = ["Gateways", "coordinator_config", "gateway_name", "start_gateways"]


def gateway_name(index: int) -> str:
    """Replica ``index``'s name in reports: ``gateway``, ``gateway1``, ``gateway2`` … (the
    first keeps the name a lone gateway has)."""
    return "gateway" if index == 0 else f"gateway{index}"


@dataclass(frozen=True, slots=True)
class Gateways:
    """Gateway replicas in front of the same pods, in the order started."""

    procs: tuple[GatewayProc, ...]
    coordinator: AutoscalerProc | None = None  # started here for several replicas

    def __len__(self) -> int:
        return len(self.procs)

    def named(self) -> dict[str, GatewayProc]:
        """Each replica by its name (``gateway_name``)."""
        return {gateway_name(i): g for i, g in enumerate(self.procs)}

    def addresses(self, protocol: str) -> tuple[str, ...]:
        """Each replica's address for ``protocol``: ``host:port`` for gRPC, else its base URL."""
        return tuple(g.grpc_address if is_grpc(protocol) else g.http_url for g in self.procs)

    @property
    def metrics_urls(self) -> dict[str, str]:
        """Each replica's ``/metrics`` URL, by name."""
        return {name: g.metrics_url for name, g in self.named().items()}

    def gone(self) -> str | None:
        """Which replica has exited, and with what code; None while all run."""
        for name, g in self.named().items():
            code = g.popen.poll()
            if code is not None:
                return f"{name} exited with {code}"
        return None

    def stop(self) -> None:
        """Stop every replica, the last started first, then the coordinator."""
        for g in reversed(self.procs):
            g.stop()
        if self.coordinator is not None:
            self.coordinator.stop()


def start_gateways(
    count: int,
    models: list[dict[str, Any]],
    *,
    extra: dict[str, Any] | None = None,
    args: Sequence[str] = (),
    stdout: Any = None,
    forwarding: bool = True,
) -> Gateways:
    """Start ``count`` gateways, each on free ports with the same config (``start_gateway``'s
    ``models``, ``extra`` and ``args``); return once every one serves every model. If one fails
    to start, those already up are stopped. Without ``forwarding`` no replica tells the others
    its peer address, so replicas split the slots of pods fewer than they are instead of one
    owning each pod and the others sending their requests on (gateway/routing/shares.py)."""
    if count < 1:
        raise ValueError(f"gateways must be >= 1, got {count}")
    coordinator = None
    if count > 1 and "autoscaler" not in (extra or {}):
        coordinator = start_autoscaler(coordinator_config(models))
    procs: list[GatewayProc] = []
    try:
        for i in range(count):
            config = dict(extra or {})
            if coordinator is not None:
                config["autoscaler"] = {
                    "address": coordinator.grpc_address,
                    "report_interval_ms": 100,
                    "replica_id": gateway_name(i),
                }
                if not forwarding:
                    config["autoscaler"]["peer_address"] = ""
            procs.append(start_gateway(models, extra=config, args=args, stdout=stdout))
    except BaseException:
        Gateways(tuple(procs), coordinator).stop()
        raise
    return Gateways(tuple(procs), coordinator)


def coordinator_config(models: list[dict[str, Any]]) -> dict[str, Any]:
    """An autoscaler in dry run for ``models``: it hears every replica and lists them back."""
    return {"dry_run": True, "tick_ms": 250, "models": [{"name": m["name"]} for m in models]}
