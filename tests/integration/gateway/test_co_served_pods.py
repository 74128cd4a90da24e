"""One pod serving two models behind one gateway: each model's batch cost is the pod's device
time for its own batches, read from the pod's statistics, not its answers (which would count
the wait behind the other model's batches as device time). Real pod and gateway processes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from loadtest.stack.procs import PodProc, start_gateway, start_pod
from tests.integration.autoscaler.support import Load, scrape, until

F_MS = 40.0


@pytest.fixture(scope="module")
def pod() -> Iterator[PodProc]:
    args = ["--model-name", "a,b", "--fixed-ms", str(F_MS), "--per-row-ms", "0"]
    proc = start_pod([*args, "--max-batch", "8"])
    yield proc
    proc.stop()


def fitted_f(metrics_url: str, model: str) -> float:
    return scrape(metrics_url, "gateway_batch_cost_fixed_seconds", model=model)


def batches(metrics_url: str, model: str) -> float:
    return scrape(metrics_url, "gateway_batch_rows_count", model=model)


async def test_each_models_fit_is_its_own_device_time_on_a_shared_pod(pod: PodProc) -> None:
    models = [
        {"name": m, "endpoints": [pod.grpc_address], "dynamic_batching": {}} for m in ("a", "b")
    ]
    gateway = await asyncio.to_thread(start_gateway, models)
    url = gateway.metrics_url
    try:
        async with Load(gateway.grpc_address, 6, "a"), Load(gateway.grpc_address, 6, "b"):
            await until(
                lambda: all(batches(url, m) >= 60 and fitted_f(url, m) > 0 for m in "ab"),
                limit_s=60,
            )
            fits = [fitted_f(url, m) for m in "ab"]
    finally:
        await asyncio.to_thread(gateway.stop)
    for fit in fits:  # timed by answers, each would be near 2F: its batches wait out the other's
        assert fit == pytest.approx(F_MS / 1000, rel=0.25), fits
