"""The pod client over v2 REST (``backend_protocol: http``) against real simulated pods, and
against a bare asyncio server for what a simpod will not do (drop a kept-alive connection)."""

from __future__ import annotations

import asyncio
import gc
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import numpy as np
import pytest

from gateway.backends.http_pod import HttpPodClient
from gateway.backends.pod_client import PodClient
from gateway.config import ModelSettings
from gateway.errors import Code, InferError
from gateway.metrics import GatewayMetrics
from gateway.models.runtime import ModelRuntime
from loadtest.stack.procs import PodProc, free_port, start_pod
from protos.infer import InferRequestBody
from protos.tensors import from_numpy, to_numpy

BOUND_S = 10.0  # an upper bound to fail on, never a measured time
FAST = ["--fixed-ms", "1", "--per-row-ms", "0", "--max-batch", "32"]


def request(value: float, rows: int = 1) -> InferRequestBody:
    x = np.full((rows, 16), value, dtype=np.float32)
    return InferRequestBody([from_numpy("INPUT0", "FP32", x)], id=f"r{value}")


def set_faults(pod: PodProc, body: bytes) -> None:
    req = urllib.request.Request(f"{pod.http_url}/faults", data=body, method="PUT")
    with urllib.request.urlopen(req, timeout=BOUND_S) as resp:
        assert resp.status == 200


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    end = time.monotonic() + BOUND_S
    while not await check():
        if time.monotonic() > end:
            raise AssertionError(f"not within {BOUND_S} s: {what}")
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def pod() -> Iterator[PodProc]:
    proc = start_pod(FAST)
    yield proc
    proc.stop()


@pytest.fixture
async def client(pod: PodProc) -> AsyncIterator[HttpPodClient]:
    c = HttpPodClient(address=pod.http_url.removeprefix("http://"), model="sim")
    yield c
    await c.close()


async def test_the_pod_is_described_over_rest_as_over_grpc(
    pod: PodProc, client: HttpPodClient
) -> None:
    over_grpc = PodClient(address=pod.grpc_address, model="sim")
    try:
        assert await client.model_ready(BOUND_S) and await over_grpc.model_ready(BOUND_S)
        assert await client.model_metadata(BOUND_S) == await over_grpc.model_metadata(BOUND_S)
        assert await client.model_config(BOUND_S) == await over_grpc.model_config(BOUND_S)
        stats = await client.model_statistics(BOUND_S)
        assert stats is not None and stats.name == "sim"
    finally:
        await over_grpc.close()


async def test_a_batch_goes_as_one_post_and_each_request_gets_its_rows_back(
    client: HttpPodClient,
) -> None:
    batch = client.encode_batch("sim", "", [request(1.0), request(2.0, rows=3)], [1, 3])
    reply = await client.infer(batch, BOUND_S, BOUND_S)
    first, second = client.decode_batch(reply, [1, 3], True, None, client.address)
    assert first[0].shape == (1, 16) and (to_numpy(first[0]) == 2.0).all()
    assert second[0].shape == (3, 16) and (to_numpy(second[0]) == 4.0).all()


async def test_calls_one_after_another_share_one_kept_alive_connection(
    client: HttpPodClient,
) -> None:
    for i in range(5):
        batch = client.encode_batch("sim", "", [request(float(i))], [1])
        client.decode_batch(await client.infer(batch, BOUND_S), [1], True, None, client.address)
        assert await client.model_ready(BOUND_S)
    assert client.connections == 1


async def test_a_pod_s_error_status_comes_back_as_its_kind_with_its_message(
    client: HttpPodClient,
) -> None:
    with pytest.raises(InferError) as unknown:
        await client.infer(client.encode_batch("nope", "", [request(1.0)], [1]), BOUND_S)
    assert unknown.value.code is Code.NOT_FOUND and "nope" in unknown.value.message
    wrong = InferRequestBody([from_numpy("INPUT0", "FP32", np.zeros((1, 3), np.float32))])
    with pytest.raises(InferError) as bad:
        await client.infer(client.encode_batch("sim", "", [wrong], [1]), BOUND_S)
    assert bad.value.code is Code.INVALID_ARGUMENT and bad.value.message
    assert await client.model_ready(BOUND_S)  # the connection serves on


async def test_a_pod_that_is_not_there_is_unavailable_before_anything_is_sent() -> None:
    client = HttpPodClient(address=f"127.0.0.1:{free_port()}", model="sim")
    try:
        with pytest.raises(InferError) as info:
            await client.infer(client.encode_batch("sim", "", [request(1.0)], [1]), 1.0, 1.0)
        assert info.value.code is Code.UNAVAILABLE and "cannot connect" in info.value.message
        assert not await client.model_ready(1.0)
    finally:
        await client.close()


async def test_a_stalled_call_times_out_and_leaves_no_connection_behind(
    pod: PodProc, client: HttpPodClient
) -> None:
    set_faults(pod, b'{"stall_rate": 1}')
    try:
        with pytest.raises(InferError) as info:
            await client.infer(client.encode_batch("sim", "", [request(1.0)], [1]), 0.2)
        assert info.value.code is Code.DEADLINE_EXCEEDED
        assert info.value.message == f"pod {client.address}: Deadline Exceeded"

        async def dropped() -> bool:
            return client.connections == 0

        await until(dropped, "the stalled connection closed")
    finally:
        set_faults(pod, b'{"stall_rate": 0}')
    batch = client.encode_batch("sim", "", [request(3.0)], [1])
    (outs,) = client.decode_batch(await client.infer(batch, BOUND_S), [1], True, None, "p")
    assert (to_numpy(outs[0]) == 6.0).all()


async def test_a_cancelled_call_closes_its_connection(pod: PodProc, client: HttpPodClient) -> None:
    set_faults(pod, b'{"stall_rate": 1}')
    try:
        call = asyncio.create_task(
            client.infer(client.encode_batch("sim", "", [request(1.0)], [1]), BOUND_S)
        )

        async def connected() -> bool:
            return client.connections == 1

        await until(connected, "the call on the pod")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

        async def dropped() -> bool:
            return client.connections == 0

        await until(dropped, "the cancelled call's connection closed")
    finally:
        set_faults(pod, b'{"stall_rate": 0}')


async def test_a_restarted_pod_is_seen_coming_back_on_a_new_connection() -> None:
    grpc_port, http_port = free_port(), free_port()
    first = start_pod(FAST, grpc_port=grpc_port, http_port=http_port)
    client = HttpPodClient(address=f"127.0.0.1:{http_port}", model="sim")
    second: PodProc | None = None
    try:
        assert await client.model_ready(BOUND_S)
        back = asyncio.create_task(client.reconnected())
        await asyncio.sleep(0)
        first.stop()

        async def lost() -> bool:
            return not await client.model_ready(1.0)

        await until(lost, "the pod gone")
        assert not back.done()
        second = start_pod(FAST, grpc_port=grpc_port, http_port=http_port)
        assert await client.model_ready(BOUND_S)
        await asyncio.wait_for(back, BOUND_S)
    finally:
        await client.close()
        first.stop()
        if second is not None:
            second.stop()


async def test_a_kept_alive_connection_the_pod_dropped_is_replaced_without_an_error() -> None:
    """A server that answers the first request on each connection and drops the connection on
    the second, unanswered: the keep-alive race, where the pod closes as a request goes."""
    answered = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        answered += 1
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = HttpPodClient(address=f"127.0.0.1:{port}", model="sim")
    try:
        assert await client.model_ready(BOUND_S)
        assert await client.model_ready(BOUND_S)  # sent on the dropped connection, then anew
        assert answered == 2
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def test_answered_batches_leave_no_cycles_for_the_garbage_collector(pod: PodProc) -> None:
    """Each try is freed as it ends: a reference cycle per request (try, flight, ticket and
    the tensors they hold) would wait for the cycle collector, whose pauses it lengthens."""
    address = pod.http_url.removeprefix("http://")
    settings = ModelSettings(name="sim", backend_protocol="http", endpoints=[address])
    runtime = ModelRuntime(settings, metrics=GatewayMetrics(), probe_interval_s=10)
    runtime.start()
    try:
        await asyncio.wait_for(_ready(runtime), BOUND_S)
        await runtime.infer(request(0.0), time.monotonic() + BOUND_S)
        gc.collect()
        gc.disable()
        try:
            for i in range(20):
                await runtime.infer(request(float(i)), time.monotonic() + BOUND_S)
            assert gc.collect() == 0
        finally:
            gc.enable()
    finally:
        await runtime.stop()


async def _ready(runtime: ModelRuntime) -> None:
    while not runtime.ready:
        await asyncio.sleep(0.01)
