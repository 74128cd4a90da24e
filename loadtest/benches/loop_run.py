"""One ``loadtest autoscale`` run: a trace against the real loop, under one scaling policy.

It starts its own loop on free loopback ports, the way ``loadtest stack`` does (the control
plane with the Deployment at 1 replica of ``LoopConfig``'s slow pods, the autoscaler scaling it,
the gateway finding the pods through EndpointSlices and streaming its load to the autoscaler),
offers the trace with the open-loop generator while ``LoopSampler`` reads the Deployment and the
autoscaler's patches, and stops everything. The children's output goes to log files.

Policies: ``capacity`` is ``loop.autoscaler_config`` as it stands; ``concurrency`` is the same
windows and limits in Knative's concurrency mode, with the pod's max batch as the per-pod
target (``target_per_pod``, at the spec's default 70 % utilisation).
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.benches.loop_figures import TOO_MANY, SecondRow, loop_figures
from loadtest.benches.loop_sampler import LoopSampler, api_server
from loadtest.clients.base import ClientSpec
from loadtest.clients.payload import SimPayload
from loadtest.generators.open_loop import OpenLoopConfig, run_open_loop
from loadtest.results.open_loop_result import OpenLoopResult
from loadtest.stack.loop import LoopConfig, autoscaler_config, control_plane_args, gateway_model
from loadtest.stack.procs import free_port, start_autoscaler, start_control_plane, start_gateway
from loadtest.stack.simpod_args import QUIET
from loadtest.traces.shapes import Trace

__all__ = ["POLICIES", "LoopRunConfig", "policy_config", "run_one"]

POLICIES = ("capacity", "concurrency")


@dataclass(frozen=True, slots=True)
class LoopRunConfig:
    """How the load is offered, and where the logs go."""

    slo_ms: float = 100.0
    protocol: str = "http-binary"
    processes: int = 1
    warmup_s: float = 1.0
    timeout_s: float = 2.0
    seed: int = 1
    sample_period_s: float = 0.25
    log_dir: Path | None = None


def policy_config(loop: LoopConfig, policy: str) -> dict[str, Any]:
    """The autoscaler's config document for ``policy`` on the loop's Deployment."""
    doc = autoscaler_config(loop)
    if policy == "concurrency":
        scaling = dict(doc["models"][0]["scaling"])
        scaling.pop("latency_target_s", None)
        scaling.update(mode="concurrency", target_per_pod=float(loop.max_batch))
        doc["models"][0]["scaling"] = scaling
    elif policy != "capacity":
        raise ValueError(f"unknown policy {policy!r}; choose from {POLICIES}")
    return doc


def _rows(trace: Trace, result: OpenLoopResult) -> list[SecondRow]:
    rows = []
    for s in result.seconds:
        rows.append(
            SecondRow(
                second=s.second,
                offered=trace.expected(s.second, min(s.second + 1, trace.duration_s)),
                due=s.due,
                ok=s.ok,
                p99_ms=s.summary().p99_us / 1000 if s.ok else None,
                rejected=s.errors.get(TOO_MANY, 0),
                errors=s.error_count,
            )
        )
    return rows


def run_one(trace: Trace, policy: str, config: LoopRunConfig) -> dict[str, Any]:
    """Run ``trace`` against a fresh loop under ``policy``; its report (figures, seconds,
    samples)."""
    with tempfile.TemporaryDirectory(prefix="autoscale-") as tmp, contextlib.ExitStack() as stop:
        loop = LoopConfig(kubeconfig=Path(tmp) / "kubeconfig")
        logs: dict[str, Any] = {}
        for name in ("control-plane", "autoscaler", "gateway"):
            if config.log_dir is None:
                logs[name] = subprocess.DEVNULL
            else:
                config.log_dir.mkdir(parents=True, exist_ok=True)
                path = config.log_dir / f"{trace.name}-{policy}-{name}.log"
                logs[name] = stop.enter_context(path.open("wb"))
        plane = start_control_plane(
            loop.kubeconfig, control_plane_args(loop), stdout=logs["control-plane"]
        )
        stop.callback(plane.stop)
        autoscaler = start_autoscaler(
            policy_config(loop, policy),
            grpc_port=free_port(),
            metrics_port=free_port(),
            stdout=logs["autoscaler"],
        )
        stop.callback(autoscaler.stop)
        gateway = start_gateway(
            [gateway_model(loop)],
            extra={"autoscaler": {"address": autoscaler.grpc_address}},
            args=QUIET,
            stdout=logs["gateway"],
        )
        stop.callback(gateway.stop)
        deployment = (
            f"{api_server(loop.kubeconfig)}/apis/apps/v1/namespaces/{loop.namespace}"
            f"/deployments/{loop.model}"
        )
        sampler = LoopSampler(
            deployment_url=deployment,
            autoscaler_metrics_url=autoscaler.metrics_url,
            period_s=config.sample_period_s,
        )
        spec = ClientSpec(
            config.protocol,
            gateway.http_url,
            SimPayload(model=loop.model, rows=1),
            verify_every=64,
            timeout_s=config.timeout_s,
        )
        load = OpenLoopConfig(
            rate=trace.peak,
            duration_s=trace.duration_s,
            warmup_s=config.warmup_s,
            processes=config.processes,
            seed=config.seed,
            drain_s=config.timeout_s + 1.0,
            shape=trace.relative,
            per_second=True,
        )
        try:
            result = run_open_loop(spec, load, sampler)
        finally:
            sampler.join()
        for proc in (gateway, autoscaler, plane):
            if proc.popen.poll() is not None:
                raise RuntimeError(f"the {proc.name} exited with {proc.popen.returncode}")
    rows = _rows(trace, result)
    samples = sampler.samples
    return {
        "trace": trace.name,
        "policy": policy,
        "scaling": policy_config(loop, policy)["models"][0]["scaling"],
        "pod": {
            "fixed_ms": loop.fixed_ms,
            "per_row_ms": loop.per_row_ms,
            "max_batch": loop.max_batch,
            "startup_s": loop.startup_s,
            "limit_rows_s": round(loop.pod.limit_rows_s, 1),
        },
        "valid": result.valid,
        "invalid_reason": result.invalid,
        "error_sample": result.error_sample,
        "figures": loop_figures(trace, rows, samples, config.slo_ms),
        "seconds": [r.as_dict() for r in rows],
        "samples": {
            "columns": ["at_s", "replicas", "ready", "patched"],
            "rows": [s.as_list() for s in samples],
        },
    }
