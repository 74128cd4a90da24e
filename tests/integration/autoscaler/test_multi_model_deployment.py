"""Two models on one Deployment whose pods serve both, on real processes: sized together.

The local control plane (the API double and its kubelet, in this test's event loop) runs the
Deployment ``shared`` as simulated pods that each serve the models ``a`` and ``b`` on the same
device (``--model-name a,b``); a gateway process finds the pods of both models through the
Deployment's EndpointSlices and streams their load to an autoscaler process. Closed-loop
clients keep 8 requests of ``a`` and 6 of ``b`` in the system: at 4 rows per pod ``a`` alone
could never ask for more than 2 pods, nor ``b``; together they need 3 to 4, one decision
patched once. A config whose models contradict each other's bounds is refused at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml

from loadtest.control_plane.plane import ControlPlane
from loadtest.kube_api.objects import EVENTS, PODS, spec_replicas
from loadtest.probes.metrics import parse_metrics
from loadtest.stack.procs import HOST, AutoscalerProc, GatewayProc, start_autoscaler, start_gateway
from tests.integration.autoscaler.support import scrape, until

NS = "models"
DEPLOYMENT = "shared"
BOUND_S = 120.0  # bounds a hang; nothing here asserts on a time
POD = {  # F 50 ms + 0.5 ms a row, one device, both models on it
    "sim.loadtest/fixed-ms": "50",
    "sim.loadtest/per-row-ms": "0.5",
    "sim.loadtest/max-batch": "16",
    "sim.loadtest/startup-s": "0.2",
    "sim.loadtest/args": "--model-name a,b",
}
PER_MODEL = {"target_per_pod": 4, "target_utilisation": 1.0}  # 4 rows in the system a pod
WINDOWS = {
    "stable_window_s": 3,
    "panic_window_s": 1,
    "scale_down_stabilization_s": 600,  # no scale-down while the test runs: every patch is up
    "restart_hold_s": 0,
    "startup_s": 60,
}


def autoscaler_doc(kubeconfig: Path, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {
        "kubernetes": {"namespace": NS, "kubeconfig": str(kubeconfig)},
        "leader_election": {"enabled": False},
        "tick_ms": 200,
        "models": [
            {"name": "a", "deployment": DEPLOYMENT, "scaling": {**PER_MODEL, **a}},
            {"name": "b", "deployment": DEPLOYMENT, "scaling": {**PER_MODEL, **b}},
        ],
    }


def gateway_model(name: str, kubeconfig: Path) -> dict[str, Any]:
    discovery = {"namespace": NS, "service": DEPLOYMENT, "port_name": "grpc"}
    return {
        "name": name,
        "discovery": {**discovery, "kubeconfig": str(kubeconfig)},
        "dynamic_batching": {"max_queue_delay_microseconds": 2000},
    }


@contextlib.asynccontextmanager
async def closed_loop(url: str, model: str, clients: int) -> AsyncIterator[list[int]]:
    """``clients`` HTTP clients each keeping one request of ``model`` in the system; yields
    [answers, errors]. (HTTP, not gRPC: gRPC's runtime in this process, which forks the
    kubelet's pods from threads, can crash a child between fork and exec.)"""
    counts = [0, 0]
    body = {
        "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "data": [1.0] * 16}]
    }

    async def client(session: aiohttp.ClientSession) -> None:
        while True:
            try:
                async with session.post(f"{url}/v2/models/{model}/infer", json=body) as resp:
                    await resp.read()
                    counts[0 if resp.status == 200 else 1] += 1
                    if resp.status == 200:
                        continue
            except aiohttp.ClientError:
                counts[1] += 1
            await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        tasks = [asyncio.create_task(client(session)) for _ in range(clients)]
        try:
            yield counts
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(namespace=NS, tick_s=0.1) as plane:
        plane.write_kubeconfig(tmp_path / "kubeconfig")
        plane.add_deployment(DEPLOYMENT, 1, annotations=POD, grace_s=2)
        yield plane


def rescales(plane: ControlPlane) -> list[tuple[int, int]]:
    """The Deployment's SuccessfulRescale Events, as (from, to), oldest first."""
    events = [
        e
        for e in plane.api.store.list(EVENTS, NS, {})[0]
        if e["reason"] == "SuccessfulRescale" and e["involvedObject"]["name"] == DEPLOYMENT
    ]
    events.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    out = []
    for e in events:
        *_, old, _, new = e["message"].split()  # "...; from 1 to 3"
        out.append((int(old), int(new)))
    return out


def pod_counts(plane: ControlPlane) -> list[dict[str, float]]:
    """Each ready pod's rows served, by model (its Triton-style metrics)."""
    out = []
    for pod in plane.api.store.list(PODS, NS, {})[0]:
        if not pod["status"]["containerStatuses"][0]["ready"]:
            continue
        ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
        with urllib.request.urlopen(f"http://{HOST}:{ports['http']}/metrics", timeout=5) as r:
            page = parse_metrics(r.read().decode())
        out.append(page.by_label("nv_inference_count", "model"))
    return out


def status(scaler: AutoscalerProc) -> dict[str, Any]:
    with urllib.request.urlopen(scaler.metrics_url.replace("/metrics", "/status"), timeout=5) as r:
        doc: dict[str, Any] = orjson.loads(r.read())
    return {m["model"]: m for m in doc["models"]}


async def test_two_models_load_one_deployment_sized_on_their_sum_patched_once_a_decision(
    plane: ControlPlane, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    doc = autoscaler_doc(kubeconfig, {"max_replicas": 5, **WINDOWS}, {"min_replicas": 1})
    scaler = await asyncio.to_thread(start_autoscaler, doc)
    gateway: GatewayProc | None = None
    try:
        reporting = {"address": scaler.grpc_address, "report_interval_ms": 100, "replica_id": "gw"}
        models = [gateway_model(m, kubeconfig) for m in ("a", "b")]
        gateway = await asyncio.to_thread(start_gateway, models, extra={"autoscaler": reporting})
        metrics = scaler.metrics_url

        def patched(model: str) -> float:
            return scrape(metrics, "autoscaler_scale_changes_total", model=model, result="patched")

        async with (
            closed_loop(gateway.http_url, "a", 8) as a_counts,
            closed_loop(gateway.http_url, "b", 6) as b_counts,
        ):
            await until(lambda: spec_replicas(plane.api.store, NS, DEPLOYMENT) >= 3, BOUND_S)
            # Every patch is counted once per decision, under each model, after its Event.
            await until(lambda: patched("a") == patched("b") == len(rescales(plane)), BOUND_S)
            await until(lambda: len(pod_counts(plane)) >= 3, BOUND_S)
            await until(lambda: all(c.get("a") and c.get("b") for c in pod_counts(plane)), BOUND_S)
            models_now = await asyncio.to_thread(status, scaler)
        assert a_counts[0] > 0 and b_counts[0] > 0
        changes = rescales(plane)
        assert changes and changes[0][0] == 1 and changes[-1][1] >= 3
        assert all(old < new for old, new in changes), f"only ever up, never fighting: {changes}"
        assert all(changes[i][1] == changes[i + 1][0] for i in range(len(changes) - 1)), changes
        a, b = models_now["a"], models_now["b"]
        assert a["deployment_models"] == b["deployment_models"] == ["a", "b"]
        assert a["decisions"] == b["decisions"], "one decision, shown under each model"
        latest = a["latest"]
        assert latest["deployment"] == f"{NS}/{DEPLOYMENT}"
        shares = {m["model"]: m["pods"] for m in latest["models"]}
        assert set(shares) == {"a", "b"} and shares["a"] <= 2.0 and shares["b"] <= 1.5
        assert latest["demand_pods"] == pytest.approx(shares["a"] + shares["b"], abs=1e-3)
        print(f"rescales {changes}; latest shares in pods {shares}")
        info = {"namespace": NS, "deployment": DEPLOYMENT}
        assert scrape(metrics, "autoscaler_model_deployment_info", model="b", **info) == 1.0
    finally:
        if gateway is not None:
            await asyncio.to_thread(gateway.stop)
        await asyncio.to_thread(scaler.stop)


def test_a_config_whose_models_contradict_each_others_bounds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "autoscaler.yaml"
    doc = autoscaler_doc(tmp_path / "kubeconfig", {"min_replicas": 5}, {"max_replicas": 3})
    path.write_text(yaml.safe_dump(doc))
    run = subprocess.run(
        [sys.executable, "-m", "autoscaler.main", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "share the Deployment models/shared" in run.stderr
    assert "min_replicas 5 (model 'a')" in run.stderr
    assert "max_replicas 3 (model 'b')" in run.stderr
