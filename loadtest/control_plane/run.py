"""`loadtest control-plane` in the foreground: serve, write a kubeconfig, run pods till a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from loadtest.control_plane.plane import ControlPlane
from loadtest.control_plane.spec import Defaults
from loadtest.stack.simpod_args import SimPod

__all__ = ["ControlPlaneConfig", "run_control_plane"]


@dataclass(frozen=True, slots=True)
class ControlPlaneConfig:
    """The server's port (0: a free one), the kubeconfig to write, and the one Deployment made
    at start (its pods' defaults apply to every Deployment without annotations)."""

    port: int = 0
    kubeconfig_out: Path = Path(".run/kubeconfig")
    namespace: str = "models"
    deployment: str = "sim"
    replicas: int = 1
    fixed_ms: float = 8.0
    per_row_ms: float = 0.25
    max_batch: int = 32
    devices: int = 1
    startup_s: float = 1.0
    grace_s: float = 10.0


async def _serve(cfg: ControlPlaneConfig) -> None:
    pod = SimPod(cfg.fixed_ms, cfg.per_row_ms, cfg.max_batch, cfg.devices, cfg.startup_s)
    plane = ControlPlane(
        namespace=cfg.namespace, defaults=Defaults(pod, cfg.grace_s), port=cfg.port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with plane:
        kubeconfig = plane.write_kubeconfig(cfg.kubeconfig_out)
        plane.add_deployment(cfg.deployment, cfg.replicas)
        print(
            f"control plane: API {plane.url}, namespace {cfg.namespace}, "
            f"deployment {cfg.deployment} ({cfg.replicas} replicas)\n"
            f"  kubectl --kubeconfig {kubeconfig} get deployments,pods,endpointslices,events\n"
            f"  kubectl --kubeconfig {kubeconfig} scale deployment {cfg.deployment} --replicas=2\n"
            "Ctrl-C stops it and every pod.",
            flush=True,
        )
        await stop.wait()
        print("control plane: stopping the pods", flush=True)


def run_control_plane(cfg: ControlPlaneConfig) -> int:
    """Run until SIGTERM or SIGINT; every pod is stopped before it returns, errors or not."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    asyncio.run(_serve(cfg))
    return 0
