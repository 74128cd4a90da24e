"""The gateway's reporter: report building, backoff, and the real gRPC stream to a receiver."""

from __future__ import annotations

import asyncio
import random
import time
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from autoscaler.aggregate import ReportStore
from autoscaler.receiver import LoadReceiver, start_receiver
from gateway.config import AutoscalerSettings, GatewayConfig
from gateway.discovery.endpoints import Endpoint
from gateway.load_metrics import LoadCollector
from gateway.reporter import (
    LoadReporter,
    ReportBuilder,
    advertised_address,
    snapshot,
)
from gateway.routing.shares import layout
from loadtest.stack.procs import free_port
from tests.fakes.reports import Snapshots, snap, until
from tests.fakes.scheduler import fake_scheduler


def test_counters_become_deltas_since_the_previous_report() -> None:
    b = ReportBuilder("gw-1")
    first = b.build(snap(arrived_requests_total=100, completed_rows_total=50), 10.0)
    assert (first.seq, first.interval_s, first.arrived_requests, first.completed_rows) == (
        1,
        0.0,
        0,
        0,
    )
    second = b.build(
        snap(arrived_requests_total=130, completed_rows_total=90, rejected_requests_total=2),
        10.25,
    )
    assert (second.seq, second.arrived_requests, second.completed_rows) == (2, 30, 40)
    assert second.rejected_requests == 2 and second.interval_s == pytest.approx(0.25)
    assert not second.HasField("batch_cost")
    third = b.build(snap(fixed_s=0.01, per_row_s=0.001), 10.5)
    assert third.batch_cost.fixed_s == 0.01


async def test_pods_are_reported_ready_starting_or_terminating_with_devices_apart_from_slots() -> (
    None
):
    """A one-device pod takes two batches (one waits on the pod): slots 2, devices 1. A pod
    Kubernetes calls terminating is on its way out, never starting, probed or not."""
    scheduler, pods, _ = await fake_scheduler(4)
    try:
        _, starting, leaving, leaving_probed = pods.pods
        for pod in pods.pods:
            pod.slots, pod.timeline.devices = 2, 1
        pods.set_ready(starting, False)  # Kubernetes ready, its probe not yet
        pods.set_ready(leaving, False)
        for pod in (leaving, leaving_probed):
            pod.endpoint = Endpoint(pod.address, ready=False, serving=True, terminating=True)
        runtime = SimpleNamespace(
            name="m",
            scheduler=scheduler,
            requests_total=0,
            pods=pods,
            forwarder=SimpleNamespace(forwarded_total=0, handed_back_total=0, usable=False),
        )
        snap = snapshot(runtime, time.monotonic())  # type: ignore[arg-type]
        assert (snap.sharing_replicas, snap.own_slots) == (1, 2)  # alone: the ready pod's 2
        pods.set_peers("gw-1", ["gw-1", "gw-2"])
        shared = snapshot(runtime, time.monotonic())  # type: ignore[arg-type]
        # laid out over the two pods Kubernetes calls ready (the ready one and the starting one)
        (ready,) = [p for p in pods.pods if p.ready]
        mine = layout(["gw-1", "gw-2"], "gw-1", [ready.address, starting.address], 2)
        assert (shared.sharing_replicas, shared.own_slots) == (2, mine.get(ready.address, 0) or 1)
        assert (snap.ready_endpoints, snap.starting_endpoints, snap.terminating_endpoints) == (
            1,
            1,
            2,
        )
        assert (snap.slots_per_pod, snap.devices_per_pod) == (2, 1)
        msg = ReportBuilder("gw-1").build(snap, 0.0)
        assert (msg.slots_per_pod, msg.devices_per_pod) == (2, 1)
        assert (msg.starting_endpoints, msg.terminating_endpoints) == (1, 2)
    finally:
        await scheduler.stop()


def test_a_model_that_is_no_longer_served_gets_a_final_report() -> None:
    b = ReportBuilder("gw-1")
    b.build_all([snap("a"), snap("b")], 0.0)
    out = b.build_all([snap("a")], 0.25)
    assert [(m.model, m.final) for m in out] == [("a", False), ("b", True)]
    assert [(m.model, m.final) for m in b.finals()] == [("a", True)]


def reporter(port: int, snapshots: Snapshots) -> LoadReporter:
    settings = AutoscalerSettings(
        address=f"127.0.0.1:{port}", report_interval_ms=20, replica_id="gw-1"
    )
    return LoadReporter(
        settings=settings,
        snapshots=snapshots,
        rng=random.Random(1),
        backoff_base_s=0.02,
        backoff_cap_s=0.1,
    )


async def test_reports_reach_the_receiver_and_a_goodbye_ends_them() -> None:
    store = ReportStore(ttl_s=5.0, missing_hold_s=60.0)
    loop = asyncio.get_running_loop()
    server, port = await start_receiver(LoadReceiver(store, clock=loop.time), "127.0.0.1:0")
    rep = reporter(port, Snapshots())
    rep.start()
    try:
        await until(lambda: store.load("sim", loop.time()) is not None)
        load = store.load("sim", loop.time())
        assert load is not None and (load.inflight_rows, load.queued_rows) == (7, 2)
        await until(lambda: rep.connected)
    finally:
        await rep.stop()
        await server.stop(None)
    assert store.load("sim", loop.time()) is None
    assert store.staleness("sim", loop.time()) is None, "the goodbye removed the gateway"


async def test_without_an_autoscaler_it_retries_and_connects_once_one_listens() -> None:
    port = free_port()
    snapshots = Snapshots()
    rep = reporter(port, snapshots)
    rep.start()
    try:
        await until(lambda: rep.stream_failures >= 3)
        assert not rep.connected
        store = ReportStore(ttl_s=5.0, missing_hold_s=60.0)
        loop = asyncio.get_running_loop()
        server, _ = await start_receiver(LoadReceiver(store, clock=loop.time), f"127.0.0.1:{port}")
        try:
            await until(lambda: store.load("sim", loop.time()) is not None)
        finally:
            await server.stop(None)
        failures = rep.stream_failures
        await until(lambda: rep.stream_failures > failures)  # the autoscaler went away again
    finally:
        await asyncio.wait_for(rep.stop(), 5.0)


def test_the_signals_are_exported_for_an_hpa_or_keda() -> None:
    registry = CollectorRegistry()
    registry.register(LoadCollector(Snapshots(), None, clock=lambda: 0.0))
    text = generate_latest(registry).decode()
    assert 'gateway_load_inflight_rows{model="sim"} 7.0' in text
    assert 'gateway_load_demand_rows{model="sim"} 9.0' in text
    assert 'gateway_load_ready_endpoints{model="sim"} 1.0' in text
    assert 'gateway_load_devices_per_pod{model="sim"} 1.0' in text
    assert 'gateway_load_terminating_endpoints{model="sim"} 0.0' in text


def test_the_peer_address_is_the_settings_else_the_pod_ip_and_none_with_keys_or_tls() -> None:
    def config(**extra: object) -> GatewayConfig:
        doc: dict[str, object] = {
            "models": [{"name": "m", "endpoints": ["p:1"]}],
            "autoscaler": {"address": "as:1"},
            "server": {"http_port": 8123},
        }
        for key, value in extra.items():
            base = doc.get(key)
            doc[key] = (
                {**base, **value} if isinstance(base, dict) and isinstance(value, dict) else value
            )
        return GatewayConfig.model_validate(doc)

    assert advertised_address(config(), {}) == ""  # not in a pod: it takes none
    assert advertised_address(config(), {"POD_IP": "10.1.2.3"}) == "10.1.2.3:8123"
    told = config(autoscaler={"peer_address": "gw-0.gw:8000"})
    assert advertised_address(told, {"POD_IP": "10.1.2.3"}) == "gw-0.gw:8000"
    off = config(autoscaler={"peer_address": ""})
    assert advertised_address(off, {"POD_IP": "10.1.2.3"}) == ""
    keyed = config(auth={"required": True}, tenants=[{"name": "t", "api_key_sha256": ["0" * 64]}])
    assert advertised_address(keyed, {"POD_IP": "10.1.2.3"}) == ""  # a key does not go on
