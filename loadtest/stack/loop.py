"""``loadtest stack`` (``make run``): the whole loop on loopback, in the foreground.

A local control plane (the Kubernetes API double and a kubelet that runs the Deployment's
replicas as simulated pods), the autoscaler (capacity mode) scaling that Deployment, and the
gateway finding its pods through EndpointSlices and streaming its load to the autoscaler:
the same binaries and config loaders as production, pointed at the control plane by a
kubeconfig (``.run/kubeconfig``). It prints how to watch the loop with kubectl, a load trace
that makes it scale, and how to call the model. Ctrl-C stops the gateway, the autoscaler, then
the control plane, which drains and stops every pod.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from loadtest.stack.foreground import run_foreground
from loadtest.stack.local import curl_command, tensor_names, tritonclient_snippet
from loadtest.stack.procs import (
    AutoscalerProc,
    ControlPlaneProc,
    GatewayProc,
    Proc,
    start_autoscaler,
    start_control_plane,
    start_gateway,
)
from loadtest.stack.simpod_args import SimPod

__all__ = ["LoopConfig", "autoscaler_config", "control_plane_args", "gateway_model", "run_loop"]


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """Ports, the Deployment and its pods' cost, and how the autoscaler sizes it.

    The default pods are slow (F = 20 ms, c = 2 ms/row, batches of 16: about 300 rows/s
    each), so that one generator process on a small machine can offer a step that needs
    several of them.
    """

    http_port: int = 8000  # the gateway's ports
    grpc_port: int = 8001
    metrics_port: int = 8002
    autoscaler_grpc_port: int = 8090  # load reports
    autoscaler_metrics_port: int = 8091
    kubeconfig: Path = Path(".run/kubeconfig")
    namespace: str = "models"
    model: str = "sim"  # the model's name, its Deployment's and its Service's
    pods: int = 1  # the Deployment's replicas at start
    max_replicas: int = 8
    fixed_ms: float = 20.0  # pod F: device ms per batch
    per_row_ms: float = 2.0  # pod c: device ms per row
    max_batch: int = 16
    startup_s: float = 3.0  # a new pod's start-up delay
    latency_target_ms: float = 100.0  # capacity mode: the batch latency to keep

    @property
    def pod(self) -> SimPod:
        return SimPod(self.fixed_ms, self.per_row_ms, self.max_batch, startup_s=self.startup_s)


def gateway_model(config: LoopConfig) -> dict[str, Any]:
    """The gateway's model: its pods from the Deployment's EndpointSlices, never static."""
    return {
        "name": config.model,
        "discovery": {
            "namespace": config.namespace,
            "service": config.model,
            "port_name": "grpc",
            "kubeconfig": str(config.kubeconfig.resolve()),
        },
        "dynamic_batching": {"max_queue_delay_microseconds": 5000},
    }


def autoscaler_config(config: LoopConfig) -> dict[str, Any]:
    """Capacity mode on the Deployment, with windows short enough to watch."""
    scaling = {
        "mode": "capacity",
        "latency_target_s": config.latency_target_ms / 1000,
        "min_replicas": 1,
        "max_replicas": config.max_replicas,
        "stable_window_s": 30,
        "panic_window_s": 6,
        "scale_down_stabilization_s": 30,
        "restart_hold_s": 10,
    }
    return {
        "kubernetes": {
            "namespace": config.namespace,
            "kubeconfig": str(config.kubeconfig.resolve()),
        },
        "models": [{"name": config.model, "deployment": config.model, "scaling": scaling}],
    }


def control_plane_args(config: LoopConfig) -> list[str]:
    """``loadtest control-plane``'s options for the loop: the Deployment, its pods' cost."""
    pod = config.pod
    return [
        *("--namespace", config.namespace, "--deployment", config.model),
        *("--replicas", str(config.pods), "--devices", str(pod.devices)),
        *("--startup-s", str(config.startup_s)),  # given even when 0: the command's default is 1
        *pod.args(),  # the cost (a --devices or --startup-s in it is the same value again)
    ]


def trace_command(config: LoopConfig) -> str:
    """A load trace that makes the loop scale: a step to about three pods' worth of load."""
    per_pod = config.pod.limit_rows_s
    peak = max(100, round(3 * per_pod, -2))
    base = max(50, round(0.3 * per_pod, -1))
    return (
        f".venv/bin/loadtest trace --target http://localhost:{config.http_port} "
        f"--metrics http://localhost:{config.metrics_port}/metrics "
        f"--trace step --base-rate {base} --peak-rate {peak} --at-s 20 --duration 120"
    )


def _banner(
    config: LoopConfig, plane: ControlPlaneProc, autoscaler: AutoscalerProc, gateway: GatewayProc
) -> str:
    input_name, output_name = tensor_names(gateway, config.model)
    kubectl = f"kubectl --kubeconfig {config.kubeconfig} -n {config.namespace}"
    pod = config.pod
    return "\n".join(
        [
            "",
            f"Stack ready: the whole loop for model '{config.model}', on loopback",
            f"  gateway        HTTP :{config.http_port}  gRPC :{config.grpc_port}  metrics "
            f"http://localhost:{config.metrics_port}/metrics  (pid {gateway.pid})",
            f"  autoscaler     reports :{config.autoscaler_grpc_port}  metrics "
            f"http://localhost:{config.autoscaler_metrics_port}/metrics  (pid {autoscaler.pid})"
            f"  capacity mode, latency target {config.latency_target_ms:g} ms, "
            f"1..{config.max_replicas} pods",
            f"  control plane  kubeconfig {config.kubeconfig}  (pid {plane.pid})  Deployment "
            f"{config.namespace}/{config.model}: pods of {pod.fixed_ms:g} ms + "
            f"{pod.per_row_ms:g} ms x n, max batch {pod.max_batch} (~{pod.limit_rows_s:.0f} "
            f"rows/s each), ready {config.startup_s:g} s after start",
            "",
            "Watch the loop:",
            f"  {kubectl} get deployments,pods,endpointslices,events",
            f"  {kubectl} get pods -w",
            "",
            "Make it scale (a step to about three pods' worth of load):",
            f"  {trace_command(config)}",
            "",
            "Try it:",
            "  " + curl_command(config.http_port, config.model, input_name),
            "",
            "or with tritonclient:",
            *(
                "  " + line
                for line in tritonclient_snippet(
                    config.http_port, config.model, input_name, output_name
                ).splitlines()
            ),
            "",
            "Ctrl-C stops everything.",
        ]
    )


def run_loop(config: LoopConfig, out: TextIO = sys.stdout) -> int:
    """Run the loop until a stop signal (exit 0) or until a process dies (exit 1)."""

    def start(procs: list[Proc], out: TextIO) -> None:
        print(f"starting the control plane ({config.kubeconfig}) ...", file=out, flush=True)
        plane = start_control_plane(config.kubeconfig, control_plane_args(config))
        procs.append(plane)
        print("starting the autoscaler ...", file=out, flush=True)
        autoscaler = start_autoscaler(
            autoscaler_config(config),
            grpc_port=config.autoscaler_grpc_port,
            metrics_port=config.autoscaler_metrics_port,
        )
        procs.append(autoscaler)
        print(f"starting the gateway (HTTP :{config.http_port}) ...", file=out, flush=True)
        gateway = start_gateway(
            [gateway_model(config)],
            extra={"autoscaler": {"address": autoscaler.grpc_address}},
            http_port=config.http_port,
            grpc_port=config.grpc_port,
            metrics_port=config.metrics_port,
        )
        procs.append(gateway)
        print(_banner(config, plane, autoscaler, gateway), file=out, flush=True)

    return run_foreground(start, out)
