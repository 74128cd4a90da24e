"""The PodSet's routing view: probes before traffic, KEP-1669 fallback, ejection and trial,
removed endpoints, static beside discovered endpoints. Fake pod clients, a hand-moved clock."""

from __future__ import annotations

import asyncio
from typing import cast

from gateway.discovery.endpoints import Endpoint
from gateway.routing.outlier import OutlierDetector, OutlierPolicy
from gateway.routing.pod_set import PodSet
from tests.fakes.clock import Clock
from tests.fakes.pod_client import FakePodClient, FakePods


def podset(clock: Clock, static: list[str] | None = None, **kw: object) -> PodSet:
    return PodSet(
        model="m",
        addresses=static or [],
        probe_interval_s=10.0,
        probe_timeout_s=1.0,
        on_ready=lambda pod: None,
        client_factory=FakePods(),
        clock=clock,
        outliers=OutlierDetector(OutlierPolicy(consecutive_failures=2, base_ejection_s=5.0)),
        **kw,  # type: ignore[arg-type]
    )


def names(pods: object) -> set[str]:
    return {p.address for p in pods}  # type: ignore[attr-defined]


async def test_a_new_endpoint_gets_no_batch_before_its_probe_passes() -> None:
    pods = podset(Clock())
    pods.set_endpoints({"a:1": Endpoint("a:1")})
    assert pods.ready_pods() == ()
    await pods.probe(pods.pods[0])
    assert names(pods.ready_pods()) == {"a:1"}
    cast(FakePodClient, pods.pods[0].client).ready = False
    await pods.probe(pods.pods[0])
    assert pods.ready_pods() == ()


async def test_terminating_pods_are_used_only_when_no_ready_one_passed_its_probe() -> None:
    pods = podset(Clock())
    pods.set_endpoints({"a:1": Endpoint("a:1"), "b:1": Endpoint("b:1", False, True, True)})
    b = pods.get("b:1")
    assert b is not None
    await pods.probe(b)
    assert names(pods.ready_pods()) == {"b:1"}  # the ready one is not probed yet
    a = pods.get("a:1")
    assert a is not None
    await pods.probe(a)
    assert names(pods.ready_pods()) == {"a:1"}


async def test_a_removed_endpoint_gets_no_new_batch_and_closes_after_its_batches() -> None:
    pods = podset(Clock())
    pods.set_endpoints({"a:1": Endpoint("a:1"), "b:1": Endpoint("b:1")})
    for p in pods.pods:
        await pods.probe(p)
    a = pods.get("a:1")
    assert a is not None
    a.in_flight = 1
    added, removed = pods.set_endpoints({"b:1": Endpoint("b:1")}, {"a:1"})
    assert (added, removed) == ([], ["a:1"])
    assert names(pods.ready_pods()) == {"b:1"} and names(pods.free_pods()) == {"b:1"}
    await asyncio.sleep(0.06)
    assert not cast(FakePodClient, a.client).closed  # a batch is still in flight
    a.in_flight = 0
    await asyncio.sleep(0.06)
    assert cast(FakePodClient, a.client).closed
    await pods.stop()


async def test_static_endpoints_stay_beside_discovered_ones() -> None:
    pods = podset(Clock(), static=["s:1"])
    pods.set_endpoints({"d:1": Endpoint("d:1")})
    assert names(pods.pods) == {"s:1", "d:1"}
    pods.set_endpoints({}, None)
    assert names(pods.pods) == {"s:1"}


async def test_failing_pods_are_ejected_then_return_on_trial_with_one_slot() -> None:
    clock = Clock()
    pods = podset(clock)
    pods.set_endpoints({f"{n}:1": Endpoint(f"{n}:1") for n in "abc"})
    for p in pods.pods:
        await pods.probe(p)
        p.slots = 4
    a = pods.get("a:1")
    assert a is not None
    pods.record_failure(a)
    assert "a:1" in names(pods.ready_pods())
    pods.record_failure(a)
    assert names(pods.ready_pods()) == {"b:1", "c:1"}
    b = pods.get("b:1")
    assert b is not None
    pods.record_failure(b)
    pods.record_failure(b)  # 10 % of 3 pods: only one may be out
    assert names(pods.ready_pods()) == {"b:1", "c:1"}
    clock.now = 5.0
    assert names(pods.ready_pods()) == {"a:1", "b:1", "c:1"}
    a.in_flight = 1
    assert "a:1" not in names(pods.free_pods())  # on trial: one batch at a time
    pods.record_success(a)
    assert "a:1" in names(pods.free_pods())
    await pods.stop()


async def test_a_ready_pod_that_reconnects_is_described_again() -> None:
    described: list[str] = []
    pods = PodSet(
        model="m",
        addresses=["a:1"],
        probe_interval_s=600.0,
        probe_timeout_s=1.0,
        on_ready=lambda pod: described.append(pod.address),
        client_factory=FakePods(),
    )
    pods.start()
    client = cast(FakePodClient, pods.pods[0].client)
    for _ in range(100):  # the first probe, then the connection watcher
        if described and hasattr(client, "_restarted"):
            break
        await asyncio.sleep(0.01)
    assert described == ["a:1"]
    client.restart()
    for _ in range(100):
        if len(described) == 2:
            break
        await asyncio.sleep(0.01)
    assert described == ["a:1", "a:1"]
    await pods.stop()
