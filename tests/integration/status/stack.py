"""Simulated pods, a dry-run autoscaler and a gateway reporting to it, for the status pages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from loadtest.stack.procs import (
    HOST,
    AutoscalerProc,
    GatewayProc,
    PodProc,
    running,
    start_autoscaler,
    start_gateway,
    start_pod,
)

__all__ = ["StatusStack", "autoscaler_config", "status_stack"]


def autoscaler_config() -> dict[str, Any]:
    """A dry-run autoscaler of ``sim`` with no cluster (its current count is its last decision)
    and short windows, so a few seconds of load change its decisions."""
    return {
        "dry_run": True,
        "tick_ms": 200,
        "report_ttl_ms": 1000,
        "models": [
            {
                "name": "sim",
                "scaling": {
                    "target_per_pod": 2,
                    "target_utilisation": 1.0,
                    "max_replicas": 5,
                    "stable_window_s": 2,
                    "panic_window_s": 1,
                    "scale_down_stabilization_s": 1,
                    "restart_hold_s": 0,
                    "startup_s": 5,
                },
            }
        ],
    }


@dataclass(frozen=True, slots=True)
class StatusStack:
    pods: tuple[PodProc, ...]
    autoscaler: AutoscalerProc
    gateway: GatewayProc

    @property
    def gateway_page(self) -> str:
        return f"http://{HOST}:{self.gateway.metrics_port}/"

    @property
    def autoscaler_page(self) -> str:
        return f"http://{HOST}:{self.autoscaler.metrics_port}/"


@contextlib.contextmanager
def status_stack(
    pods: int = 2,
    pod_args: Sequence[str] = ("--fixed-ms", "10", "--per-row-ms", "0.5", "--devices", "2"),
    gateway_args: Sequence[str] = (),
) -> Iterator[StatusStack]:
    """Start ``pods`` simulated pods, the autoscaler and the gateway (stopped in reverse on
    exit); the gateway reports every 100 ms as ``gw-status``."""
    with contextlib.ExitStack() as stack:
        started: list[PodProc] = []
        for _ in range(pods):
            started.append(start_pod(list(pod_args)))
            stack.enter_context(running(started[-1]))
        autoscaler = start_autoscaler(autoscaler_config())
        stack.enter_context(running(autoscaler))
        reporting = {
            "address": autoscaler.grpc_address,
            "report_interval_ms": 100,
            "replica_id": "gw-status",
        }
        gateway = start_gateway(
            [
                {
                    "name": "sim",
                    "endpoints": [p.grpc_address for p in started],
                    "dynamic_batching": {},
                }
            ],
            extra={"autoscaler": reporting},
            args=gateway_args,
        )
        stack.enter_context(running(gateway))
        yield StatusStack(tuple(started), autoscaler, gateway)
