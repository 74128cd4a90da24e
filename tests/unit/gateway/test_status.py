"""The gateway's /status and its page: each model's pods, queue, batch sizes, fitted cost,
rejections and arrivals, read from the scheduler's state and the metrics, served on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from gateway.config import parse_config
from gateway.core import Gateway
from gateway.metrics import GatewayMetrics, ModelMetrics
from gateway.scheduler_state import PodView, SchedulerState
from gateway.status import (
    GatewayStatus,
    add_status_routes,
    metric_figures,
    model_status,
    pod_status,
)
from loadtest.stack.procs import HOST, free_port

PODS = ["127.0.0.1:1", "127.0.0.1:2"]


def _pod(address: str = "p:1", **kw: object) -> PodView:
    fields: dict[str, object] = {
        "in_flight": 0,
        "outstanding_rows": 0,
        "ready": True,
        "slots": 3,
        "devices": 2,
        "terminating": False,
    }
    fields.update(kw)
    return PodView(address, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pod", "ejected", "state"),
    [
        (_pod(), False, "ready"),
        (_pod(), True, "ejected"),
        (_pod(ready=False), False, "starting"),
        (_pod(ready=False, terminating=True), True, "terminating"),
    ],
)
def test_a_pods_state(pod: PodView, ejected: bool, state: str) -> None:
    assert pod_status(pod, ejected=ejected, share=None)["state"] == state


def test_a_pods_devices_split_its_batches_into_running_and_waiting() -> None:
    busy = pod_status(_pod(in_flight=3, outstanding_rows=24), ejected=False, share=2)
    assert (busy["running"], busy["waiting"], busy["devices"]) == (2, 1, 2)
    assert (busy["in_flight"], busy["slots"], busy["share"], busy["outstanding_rows"]) == (
        3,
        3,
        2,
        24,
    )
    idle = pod_status(_pod(), ejected=False, share=None)
    assert (idle["running"], idle["waiting"]) == (0, 0)


def test_the_metrics_figures_per_model() -> None:
    metrics = GatewayMetrics()
    sim = ModelMetrics(metrics, "sim")
    for rows, reason in ((1, "idle_pod"), (3, "cost_model"), (3, "cost_model"), (16, "full")):
        sim.batch_sent("p:1", rows, 1, reason)
    sim.batch_sent("p:1", 300, 1, "full")
    sim.rejected("queue_full")
    sim.rejected("queue_full")
    sim.rejected("timeout")
    sim.queue_time(0.002)
    metrics.requests.labels("sim", "grpc").inc(5)
    metrics.requests.labels("sim", "http").inc(2)
    metrics.failures.labels("sim", "grpc", "BACKEND", "unavailable").inc()
    metrics.latency.labels("sim", "grpc").observe(0.01)
    metrics.latency.labels("sim", "http").observe(0.03)
    ModelMetrics(metrics, "other").batch_sent("q:1", 2, 1, "deadline")
    figures = metric_figures(metrics)
    sim_figures = figures["sim"]
    assert sim_figures["batches"] == 5 and sim_figures["batch_rows"] == 323
    assert sim_figures["sends"] == {"idle_pod": 1.0, "cost_model": 2.0, "full": 2.0}
    assert sim_figures["rejections"] == {"queue_full": 2.0, "timeout": 1.0}
    assert sim_figures["requests"] == {"grpc": 5.0, "http": 2.0}
    assert sim_figures["failures"] == {"unavailable": 1.0}
    assert sim_figures["latency_s"] == {"count": 2.0, "sum": pytest.approx(0.04)}
    assert sim_figures["queue_wait_s"] == {"count": 1.0, "sum": pytest.approx(0.002)}
    assert figures["other"]["batches"] == 1

    state = SchedulerState(
        queued_requests=3,
        queued_rows=5,
        levels=((0, 0, 0), (1, 2, 4), (2, 1, 1)),
        arrival_rows_per_s=123.4567,
        completed_rows_total=90,
        rejected_requests_total=3,
        fixed_s=0.01,
        per_row_s=0.0005,
        max_batch_size=32,
        pods=(_pod("p:1", in_flight=1), _pod("p:2", ready=False)),
    )
    doc = model_status(
        "sim",
        state,
        in_flight_requests=4,
        ejected=frozenset({"p:1"}),
        shares=None,
        replicas=("gw-a", "gw-b"),
        me="gw-a",
        figures=sim_figures,
    )
    sizes = {b["rows"]: b["batches"] for b in doc["batch_sizes"]}
    assert sizes == {
        "1": 1,
        "2": 0,
        "3-4": 2,
        "5-8": 0,
        "9-16": 1,
        "17-32": 0,
        "33-64": 0,
        "65-128": 0,
        "129-256": 0,
        "257+": 1,
    }
    assert doc["queue"] == [
        {"priority": 0, "requests": 0, "rows": 0},
        {"priority": 1, "requests": 2, "rows": 4},
        {"priority": 2, "requests": 1, "rows": 1},
    ]
    assert (doc["arrival_rows_per_s"], doc["rejected_requests_total"]) == (123.457, 3)
    assert doc["cost"] == {"fixed_s": 0.01, "per_row_s": 0.0005}
    assert (doc["batches_total"], doc["batch_rows_total"], doc["in_flight_requests"]) == (5, 323, 4)
    assert doc["batch_sends"] == {"idle_pod": 1.0, "cost_model": 2.0, "full": 2.0}
    assert [p["state"] for p in doc["pods"]] == ["ejected", "starting"]
    assert doc["ready_pods"] == 0
    assert (doc["replica"], doc["sharing_replicas"]) == ("gw-a", ["gw-a", "gw-b"])


def _gateway() -> Gateway:
    """A gateway of one model with two static pods, not started (no pod is probed)."""
    return Gateway(
        parse_config(
            {
                "models": [
                    {
                        "name": "sim",
                        "endpoints": PODS,
                        "outlier_detection": {"consecutive_failures": 1, "max_ejected_percent": 50},
                    }
                ]
            }
        )
    )


async def test_the_status_of_a_gateway_reads_its_scheduler_pods_and_metrics() -> None:
    # async: a Gateway opens its pod channels (grpc.aio) on the running loop
    gateway = _gateway()
    runtime = gateway.models["sim"]
    runtime.metrics.batch_sent(PODS[0], 8, 2, "full")
    runtime.metrics.rejected("queue_full")
    runtime.pods.outliers.failure(PODS[1], time.monotonic(), hosts=2)
    doc = GatewayStatus(gateway).read()
    assert (doc["service"], doc["ready"], doc["replica"], doc["autoscaler"]) == (
        "gateway",
        False,
        None,
        None,
    )
    (sim,) = doc["models"]
    assert [(p["address"], p["state"]) for p in sim["pods"]] == [
        (PODS[0], "starting"),
        (PODS[1], "ejected"),
    ]
    assert sim["batches_total"] == 1 and sim["batch_rows_total"] == 8
    assert sim["rejections"] == {"queue_full": 1.0} and sim["batch_sends"] == {"full": 1.0}
    assert sim["arrival_rows_per_s"] == 0.0 and sim["queued_requests"] == 0


@pytest.fixture
async def served() -> AsyncIterator[str]:
    app = web.Application()
    add_status_routes(app, GatewayStatus(_gateway()).read)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, HOST, port).start()
    yield f"http://{HOST}:{port}"
    await runner.cleanup()


async def test_the_page_and_its_json_are_served(served: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{served}/") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            page = await resp.text()
        assert 'fetch("status"' in page and "setTimeout(poll, 1000)" in page
        async with session.get(f"{served}/status") as resp:
            assert resp.status == 200 and resp.content_type == "application/json"
            assert resp.headers["Cache-Control"] == "no-store"
            doc = await resp.json()
    assert [m["model"] for m in doc["models"]] == ["sim"]
    assert [p["address"] for p in doc["models"][0]["pods"]] == PODS
