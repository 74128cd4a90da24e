"""Two gateway replicas on one pod, coordinated as in a cluster (an autoscaler hears both and
lists them back): the pod never holds more batches than its slots, and each replica's fitted
batch cost matches a lone gateway's against the same pod, in the same test.

The pod (F = 40 ms, one device: 2 slots) counts the most batches it held at once
(``simpod_held_batches_max``). Without the shares each replica would fill both slots (4 held)
and time its batches' wait behind the other's as device time (a fitted F near twice 40 ms).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from loadtest.stack.gateways import start_gateways
from loadtest.stack.procs import PodProc, start_gateway, start_pod
from tests.integration.autoscaler.support import Load, scrape, until

F_MS = 40.0
MODEL = {"name": "sim", "dynamic_batching": {}}


@pytest.fixture(scope="module")
def pod() -> Iterator[PodProc]:
    proc = start_pod(["--fixed-ms", str(F_MS), "--per-row-ms", "0", "--max-batch", "8"])
    yield proc
    proc.stop()


def fitted_f(metrics_url: str) -> float:
    return scrape(metrics_url, "gateway_batch_cost_fixed_seconds", model="sim")


def batches(metrics_url: str) -> float:
    return scrape(metrics_url, "gateway_batch_rows_count", model="sim")


async def test_two_replicas_keep_to_the_pods_slots_and_fit_its_cost(pod: PodProc) -> None:
    model = MODEL | {"endpoints": [pod.grpc_address]}
    lone = await asyncio.to_thread(start_gateway, [model])
    try:
        async with Load(lone.grpc_address, clients=6):
            await until(lambda: batches(lone.metrics_url) >= 30 and fitted_f(lone.metrics_url) > 0)
        lone_f = fitted_f(lone.metrics_url)
    finally:
        await asyncio.to_thread(lone.stop)
    assert lone_f == pytest.approx(F_MS / 1000, rel=0.25)  # the pod's own F: a sanity check

    gateways = await asyncio.to_thread(start_gateways, 2, [model])
    try:
        urls = list(gateways.metrics_urls.values())
        for url in urls:  # the coordinator's list reached both before any load
            await until(lambda u=url: scrape(u, "gateway_load_sharing_replicas", model="sim") == 2)
            assert scrape(url, "gateway_load_own_slots", model="sim") == 1
        loads = [Load(g.grpc_address, clients=6) for g in gateways.procs]
        async with loads[0], loads[1]:
            await until(lambda: all(batches(u) >= 60 and fitted_f(u) > 0 for u in urls), limit_s=60)
            fits = [fitted_f(u) for u in urls]
        assert all(load.ok > 0 and not load.errors for load in loads), [x.errors for x in loads]
    finally:
        await asyncio.to_thread(gateways.stop)
    held = scrape(f"{pod.http_url}/metrics", "simpod_held_batches_max", model="sim")
    assert 0 < held <= 2, f"the pod held {held:g} batches at once; it has 2 slots"
    for fit in fits:
        assert fit == pytest.approx(lone_f, rel=0.25), (fits, lone_f)
