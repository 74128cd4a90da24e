"""Batching through the gateway process with real simulated pods: answers, limits, reload."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import yaml

from loadtest.probes.metrics import Scrape, parse_metrics
from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.infer import InferRequestBody
from protos.tensors import from_numpy, to_numpy

# A pod whose batch costs 20 ms + 0.5 ms/row: requests pile up while it works.
SLOW = ["--fixed-ms", "20", "--per-row-ms", "0.5", "--max-batch", "32"]
BATCHING = {"max_queue_delay_microseconds": 5000}


def scrape(gw: GatewayProc) -> Scrape:
    with urllib.request.urlopen(gw.metrics_url, timeout=5) as resp:
        return parse_metrics(resp.read().decode())


def metric(gw: GatewayProc, name: str) -> float:
    """The sum of a sample's values over its labels (0 when absent)."""
    return scrape(gw).total(name) or 0.0


def one_slot_gateway(pod: PodProc, batching: dict[str, object]) -> GatewayProc:
    """A gateway for ``sim`` that sends one batch at a time: requests queue behind it."""
    return start_gateway(
        [
            {
                "name": "sim",
                "endpoints": [pod.grpc_address],
                "max_inflight_per_pod": 1,
                "dynamic_batching": batching,
            }
        ]
    )


@pytest.fixture(scope="module")
def pod() -> Iterator[PodProc]:
    p = start_pod(SLOW)
    yield p
    p.stop()


@pytest.fixture
async def stub_for() -> AsyncIterator[object]:
    channels: list[grpc.aio.Channel] = []

    def make(gw: GatewayProc) -> pb_grpc.GRPCInferenceServiceStub:
        channel = grpc.aio.insecure_channel(gw.grpc_address)
        channels.append(channel)
        return pb_grpc.GRPCInferenceServiceStub(channel)

    yield make
    for channel in channels:
        await channel.close()


def body(rows: int, seed: int, **params: object) -> tuple[InferRequestBody, np.ndarray]:
    data = np.random.default_rng(seed).standard_normal((rows, 16), dtype=np.float32)
    return InferRequestBody([from_numpy("INPUT0", "FP32", data)], None, f"r{seed}", params), data


async def infer(
    stub: pb_grpc.GRPCInferenceServiceStub, model: str, rows: int, seed: int, **params: object
) -> None:
    request, data = body(rows, seed, **params)
    reply = await stub.ModelInfer(v2_grpc.encode_request(model, request), timeout=20)
    out = v2_grpc.decode_response(reply)
    assert reply.id == f"r{seed}"
    np.testing.assert_array_equal(to_numpy(out.outputs[0]), 2 * data)


async def test_mixed_batch_sizes_are_merged_and_split_back_to_the_right_caller(
    pod: PodProc, stub_for
) -> None:
    gw = start_gateway(
        [{"name": "sim", "endpoints": [pod.grpc_address], "dynamic_batching": BATCHING}]
    )
    try:
        stub = stub_for(gw)
        await asyncio.gather(*(infer(stub, "sim", 1 + i % 5, i) for i in range(120)))
        batches = metric(gw, "gateway_batch_rows_count")
        rows = metric(gw, "gateway_batch_rows_sum")
    finally:
        gw.stop()
    assert rows == sum(1 + i % 5 for i in range(120))
    assert batches < 60, f"{batches} batches for 120 requests: requests were not merged"


async def test_batches_are_counted_by_the_batchers_reason_to_send(pod: PodProc, stub_for) -> None:
    gw = one_slot_gateway(pod, BATCHING)

    def sends() -> dict[str, float]:
        return scrape(gw).by_label("gateway_batch_sends_total", "reason", model="sim")

    try:
        stub = stub_for(gw)
        await infer(stub, "sim", 1, 0)  # alone, to an idle pod: no wait for company
        lone = sends()
        await asyncio.gather(*(infer(stub, "sim", 32, i) for i in range(1, 5)))
        after = sends()
        batches = metric(gw, "gateway_batch_rows_count")
    finally:
        gw.stop()
    assert lone == {"idle_pod": 1.0}
    assert after == {"idle_pod": 1.0, "full": 4.0}  # each a batch of max_batch_size rows
    assert sum(after.values()) == batches == 5


async def test_interleaved_models_never_share_a_batch(pod: PodProc, stub_for) -> None:
    models = [
        {
            "name": n,
            "pod_model": "sim",
            "endpoints": [pod.grpc_address],
            "dynamic_batching": BATCHING,
        }
        for n in ("a", "b")
    ]
    gw = start_gateway(models)
    try:
        stub = stub_for(gw)
        await asyncio.gather(*(infer(stub, "ab"[i % 2], 1 + i % 3, i) for i in range(80)))
    finally:
        gw.stop()


async def test_a_full_queue_rejects_at_once_with_retry_after(pod: PodProc, stub_for) -> None:
    batching = {**BATCHING, "default_queue_policy": {"max_queue_size": 4}}
    gw = one_slot_gateway(pod, batching)
    try:
        stub = stub_for(gw)
        results = await asyncio.gather(
            *(infer(stub, "sim", 32, i) for i in range(40)), return_exceptions=True
        )
    finally:
        gw.stop()
    rejected = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert rejected, "a queue of 4 took 40 requests of 32 rows"
    assert all(r.code() is grpc.StatusCode.RESOURCE_EXHAUSTED for r in rejected)
    assert "queue is full" in (rejected[0].details() or "")
    assert any(k == "retry-after" for k, _ in rejected[0].trailing_metadata() or ())
    assert all(r is None for r in results if not isinstance(r, grpc.aio.AioRpcError))


async def test_queue_timeout_rejects_expired_requests_without_sending_them(
    pod: PodProc, stub_for
) -> None:
    batching = {**BATCHING, "default_queue_policy": {"default_timeout_microseconds": 30_000}}
    gw = one_slot_gateway(pod, batching)
    try:
        stub = stub_for(gw)
        results = await asyncio.gather(
            *(infer(stub, "sim", 32, i) for i in range(12)), return_exceptions=True
        )
        sent_rows = metric(gw, "gateway_batch_rows_sum")
    finally:
        gw.stop()
    expired = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert expired and all(r.code() is grpc.StatusCode.DEADLINE_EXCEEDED for r in expired)
    assert sent_rows == 32 * (len(results) - len(expired))


Leave = Callable[[GatewayProc, Any, InferRequestBody], Awaitable[None]]


async def rows_sent_when_one_leaves(pod: PodProc, stub_for: Any, leave: Leave) -> float:
    """Three full batches keep a one-slot gateway's pod busy (it works on them one at a time)
    while a 7-row request queues behind them and its caller leaves (``leave``); the rows the
    pod was sent in the end."""
    gw = one_slot_gateway(pod, BATCHING)
    try:
        stub = stub_for(gw)
        busy = [asyncio.ensure_future(infer(stub, "sim", 32, i)) for i in range(3)]
        await asyncio.sleep(0.01)
        request, _ = body(7, 99)
        await leave(gw, stub, request)
        await asyncio.gather(*busy)
        await asyncio.sleep(0.1)
        return metric(gw, "gateway_batch_rows_sum")
    finally:
        gw.stop()


async def test_a_cancelled_request_leaves_the_queue_unsent(pod: PodProc, stub_for) -> None:
    async def cancel(gw: GatewayProc, stub: Any, request: InferRequestBody) -> None:
        call = stub.ModelInfer(v2_grpc.encode_request("sim", request), timeout=20)
        await asyncio.sleep(0.005)
        call.cancel()

    sent_rows = await rows_sent_when_one_leaves(pod, stub_for, cancel)
    assert sent_rows == 96, "the cancelled request's 7 rows were sent"


async def test_priority_levels_serve_the_higher_level_first(pod: PodProc, stub_for) -> None:
    batching = {**BATCHING, "priority_levels": 2, "default_priority_level": 2}
    gw = one_slot_gateway(pod, batching)
    finished: list[str] = []

    async def timed(name: str, seed: int, **params: object) -> None:
        await infer(stub, "sim", 32, seed, **params)
        finished.append(name)

    try:
        stub = stub_for(gw)
        first = asyncio.ensure_future(timed("first", 0))
        await asyncio.sleep(0.005)
        low = [asyncio.ensure_future(timed("low", i)) for i in range(1, 4)]
        await asyncio.sleep(0.005)
        high = asyncio.ensure_future(timed("high", 9, priority=1))
        await asyncio.gather(first, high, *low)
    finally:
        gw.stop()
    assert finished.index("high") <= 1, finished


async def test_reload_under_load_loses_nothing_and_shows_the_new_config(
    pod: PodProc, stub_for, tmp_path: Path
) -> None:
    gw = start_gateway(
        [{"name": "sim", "endpoints": [pod.grpc_address], "dynamic_batching": BATCHING}],
        args=["--reload-interval-s", "0.1"],
    )
    try:
        stub = stub_for(gw)
        load = asyncio.ensure_future(
            asyncio.gather(*(infer(stub, "sim", 1 + i % 4, i) for i in range(300)))
        )
        config = yaml.safe_load(gw.config_path.read_text())
        config["models"][0]["dynamic_batching"]["preferred_batch_size"] = [8, 16]
        config["models"][0]["dynamic_batching"]["max_queue_delay_microseconds"] = 2000
        gw.config_path.write_text(yaml.safe_dump(config))
        await asyncio.sleep(0.3)
        gw.config_path.write_text("models: [")  # a bad file is rejected; the config stays
        os.kill(gw.pid, signal.SIGHUP)
        await load  # every request answered correctly
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{gw.http_url}/v2/models/sim/config") as resp:
                shown = yaml.safe_load(resp.read())
            if shown["dynamic_batching"]["preferred_batch_size"] == [8, 16]:
                break
            await asyncio.sleep(0.1)
        assert shown["dynamic_batching"]["max_queue_delay_microseconds"] == 2000
        assert gw.popen.poll() is None
    finally:
        gw.stop()


async def test_an_http_client_that_disconnects_leaves_the_queue_unsent(
    pod: PodProc, stub_for
) -> None:
    import aiohttp

    from protos import v2_http

    async def disconnect(gw: GatewayProc, stub: Any, request: InferRequestBody) -> None:
        payload, _ = v2_http.encode_request(request, binary=False)
        async with aiohttp.ClientSession() as session:
            with pytest.raises(asyncio.TimeoutError):
                await session.post(
                    f"{gw.http_url}/v2/models/sim/infer",
                    data=payload,
                    timeout=aiohttp.ClientTimeout(total=0.01),
                )

    sent_rows = await rows_sent_when_one_leaves(pod, stub_for, disconnect)
    assert sent_rows == 96, "the disconnected HTTP caller's 7 rows were sent"
