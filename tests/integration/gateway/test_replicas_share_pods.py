"""Two gateway replicas on one pod, coordinated as in a cluster (an autoscaler hears both and
lists them back): the pod never holds more batches than its slots, and the fitted batch cost
matches a lone gateway's against the same pod, in the same test.

The pod (F = 40 ms, one device: 2 slots) counts the most batches it held at once
(``simpod_held_batches_max``). Without the shares each replica would fill both slots (4 held)
and time its batches' wait behind the other's as device time (a fitted F near twice 40 ms).
With peer addresses (the default) one replica owns the pod and the other sends its requests on
to it: one batcher for the pod. Without them (``forwarding=False``) the two split its slots.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from gateway.routing.forward import FORWARDED_HEADER
from loadtest.stack.gateways import start_gateways
from loadtest.stack.procs import PodProc, start_gateway, start_pod
from tests.integration.autoscaler.support import Load, scrape, until

F_MS = 40.0
MODEL: dict[str, Any] = {"name": "sim", "dynamic_batching": {}}


@pytest.fixture(scope="module")
def pod() -> Iterator[PodProc]:
    proc = start_pod(["--fixed-ms", str(F_MS), "--per-row-ms", "0", "--max-batch", "8"])
    yield proc
    proc.stop()


def fitted_f(metrics_url: str) -> float:
    return scrape(metrics_url, "gateway_batch_cost_fixed_seconds", model="sim")


def batches(metrics_url: str) -> float:
    return scrape(metrics_url, "gateway_batch_rows_count", model="sim")


async def lone_fit(model: dict[str, Any]) -> float:
    lone = await asyncio.to_thread(start_gateway, [model])
    try:
        async with Load(lone.grpc_address, clients=6):
            await until(lambda: batches(lone.metrics_url) >= 30 and fitted_f(lone.metrics_url) > 0)
        lone_f = fitted_f(lone.metrics_url)
    finally:
        await asyncio.to_thread(lone.stop)
    assert lone_f == pytest.approx(F_MS / 1000, rel=0.25)  # the pod's own F: a sanity check
    return lone_f


def infer_once(http_url: str, headers: dict[str, str]) -> None:
    body = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "data": [0] * 16}]}
    request = urllib.request.Request(
        f"{http_url}/v2/models/sim/infer", data=json.dumps(body).encode(), headers=headers
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def sharing(url: str, replicas: int) -> bool:
    return scrape(url, "gateway_load_sharing_replicas", model="sim") == replicas


def held_max(pod: PodProc) -> float:
    return scrape(f"{pod.http_url}/metrics", "simpod_held_batches_max", model="sim")


async def test_one_replica_owns_the_pod_and_the_other_sends_its_requests_on(pod: PodProc) -> None:
    model = MODEL | {"endpoints": [pod.grpc_address]}
    lone_f = await lone_fit(model)
    gateways = await asyncio.to_thread(start_gateways, 2, [model])
    try:
        owner, other = list(gateways.metrics_urls.values())
        for url in (owner, other):  # the coordinator's list reached both before any load
            await until(partial(sharing, url, 2))
        await until(lambda: scrape(other, "gateway_load_own_slots", model="sim") == 0)
        assert scrape(owner, "gateway_load_own_slots", model="sim") == 2  # the whole pod
        loads = [Load(g.grpc_address, clients=6) for g in gateways.procs]
        async with loads[0], loads[1]:
            await until(
                lambda: (
                    batches(owner) >= 60
                    and scrape(other, "gateway_forwarded_requests_total", model="sim") >= 30
                ),
                limit_s=60,
            )
            await until(lambda: fitted_f(other) > 0)  # from the pod's own statistics
            owner_f, other_f = fitted_f(owner), fitted_f(other)
        assert all(load.ok > 0 and not load.errors for load in loads), [x.errors for x in loads]
        assert batches(other) == 0  # it never sent the pod a batch: the owner batched its rows
        forwarded = scrape(other, "gateway_forwarded_requests_total", model="sim")
        received = scrape(other, "gateway_requests_total", model="sim")
        assert forwarded == received  # every request it took went on to the owner
        # A request another replica sent on is never sent on again (no loop while the
        # replicas disagree on who owns the pod): it is served from this replica's own share.
        await asyncio.to_thread(infer_once, gateways.procs[1].http_url, {FORWARDED_HEADER: "1"})
        assert scrape(other, "gateway_forwarded_requests_total", model="sim") == forwarded
        assert batches(other) == 1
    finally:
        await asyncio.to_thread(gateways.stop)
    assert 0 < held_max(pod) <= 2, f"the pod held {held_max(pod):g} batches at once; it has 2"
    for fit in (owner_f, other_f):  # each replica's fit is the pod's
        assert fit == pytest.approx(lone_f, rel=0.25), (owner_f, other_f, lone_f)


async def test_two_replicas_without_peer_addresses_split_the_pods_slots(pod: PodProc) -> None:
    model = MODEL | {"endpoints": [pod.grpc_address]}
    lone_f = await lone_fit(model)
    gateways = await asyncio.to_thread(start_gateways, 2, [model], forwarding=False)
    try:
        urls = list(gateways.metrics_urls.values())
        for url in urls:  # the coordinator's list reached both before any load
            await until(partial(sharing, url, 2))
            assert scrape(url, "gateway_load_own_slots", model="sim") == 1
        loads = [Load(g.grpc_address, clients=6) for g in gateways.procs]
        async with loads[0], loads[1]:
            await until(lambda: all(batches(u) >= 60 and fitted_f(u) > 0 for u in urls), limit_s=60)
            fits = [fitted_f(u) for u in urls]
        assert all(load.ok > 0 and not load.errors for load in loads), [x.errors for x in loads]
    finally:
        await asyncio.to_thread(gateways.stop)
    assert 0 < held_max(pod) <= 2, f"the pod held {held_max(pod):g} batches at once; it has 2"
    for fit in fits:
        assert fit == pytest.approx(lone_f, rel=0.25), (fits, lone_f)


async def test_a_replica_whose_owner_dies_serves_from_the_pod_itself(pod: PodProc) -> None:
    model = MODEL | {"endpoints": [pod.grpc_address]}
    gateways = await asyncio.to_thread(start_gateways, 2, [model])
    owner, other = gateways.procs
    try:
        await until(lambda: scrape(other.metrics_url, "gateway_load_own_slots", model="sim") == 0)
        async with Load(other.grpc_address, clients=6) as load:
            await until(partial(forwarded_at_least, other.metrics_url, 20))
            owner.kill()  # no goodbye: the coordinator keeps listing it for a while
            before = load.ok
            await until(lambda: load.ok >= before + 60, limit_s=60)
        # what was on its way to the owner was handed back unsent and served here
        assert not load.errors, load.errors[:5]
        assert batches(other.metrics_url) > 0
    finally:
        await asyncio.to_thread(gateways.stop)


def forwarded_at_least(url: str, n: int) -> bool:
    return scrape(url, "gateway_forwarded_requests_total", model="sim") >= n
