"""SIGTERM of the gateway process under load loses no admitted request.

A gateway in front of a slow simulated pod gets a burst of HTTP and gRPC requests, more than
the pod runs at once, and is sent SIGTERM while they are queued and in flight: its gRPC health
turns NOT_SERVING at once, both front-ends stop taking new work at once (HTTP does not wait for
gRPC to drain), every request it had admitted is answered 200 with its own answer, and the
process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
import urllib.request
from collections.abc import Callable

import aiohttp
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from loadtest.probes.metrics import parse_metrics
from loadtest.stack.procs import HOST, GatewayProc, start_gateway, start_pod
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc, v2_http
from protos.infer import InferRequestBody
from protos.tensors import from_numpy, to_numpy

# 250 ms a batch of at most 2 rows, one at a time: the burst takes seconds to serve.
SLOW = ["--fixed-ms", "250", "--per-row-ms", "1", "--max-batch", "2"]
PER_PROTOCOL = 8
BOUND_S = 30.0  # an upper bound to fail on, never a measured time
SERVING = health_pb2.HealthCheckResponse.SERVING


async def wait_for(check: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + BOUND_S
    while not await asyncio.to_thread(check):
        if time.monotonic() > end:
            raise AssertionError(f"not within {BOUND_S} s: {what}")
        await asyncio.sleep(0.02)


def request(seed: int) -> tuple[InferRequestBody, np.ndarray]:
    x = np.random.default_rng(seed).standard_normal((1, 16), dtype=np.float32)
    return InferRequestBody([from_numpy("INPUT0", "FP32", x)], id=f"r{seed}"), x


async def http_infer(session: aiohttp.ClientSession, url: str, seed: int) -> None:
    body, x = request(seed)
    payload, length = v2_http.encode_request(body, True)
    headers = {} if length is None else {v2_http.HEADER_LENGTH: str(length)}
    async with session.post(f"{url}/v2/models/sim/infer", data=payload, headers=headers) as r:
        assert r.status == 200, await r.text()
        raw = await r.read()
        size = r.headers.get(v2_http.HEADER_LENGTH)
    out = v2_http.decode_response(raw, None if size is None else int(size))
    np.testing.assert_array_equal(to_numpy(out.outputs[0]), 2 * x)


async def grpc_infer(stub: pb_grpc.GRPCInferenceServiceStub, seed: int) -> None:
    body, x = request(seed)
    reply = await stub.ModelInfer(v2_grpc.encode_request("sim", body), timeout=BOUND_S)
    np.testing.assert_array_equal(to_numpy(v2_grpc.decode_response(reply).outputs[0]), 2 * x)


def received(gw: GatewayProc) -> float:
    with urllib.request.urlopen(gw.metrics_url, timeout=5) as resp:
        scrape = parse_metrics(resp.read().decode())
    return scrape.total("gateway_requests_total", model="sim") or 0.0


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_sigterm_under_load_answers_every_admitted_request_then_exits_0() -> None:
    pod = await asyncio.to_thread(start_pod, SLOW)
    model = {"name": "sim", "endpoints": [pod.grpc_address], "max_queue_wait_ms": 0}
    model["dynamic_batching"] = {"max_queue_delay_microseconds": 0}
    gw = await asyncio.to_thread(start_gateway, [model], extra={"server": {"drain_grace_s": 20}})
    try:
        async with (
            aiohttp.ClientSession() as session,
            grpc.aio.insecure_channel(gw.grpc_address) as channel,
        ):
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            assert (await watch.read()).status == SERVING
            burst = [asyncio.ensure_future(http_infer(session, gw.http_url, i)) for i in range(8)]
            burst += [asyncio.ensure_future(grpc_infer(stub, 100 + i)) for i in range(8)]
            await wait_for(lambda: received(gw) == 2 * PER_PROTOCOL, "every request admitted")
            assert not all(f.done() for f in burst)  # seconds of work queued on the pod
            gw.popen.send_signal(signal.SIGTERM)
            update = await asyncio.wait_for(watch.read(), BOUND_S)  # at once, not after draining
            assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING
            await wait_for(lambda: refuses_connections(gw.http_port), "HTTP stops accepting")
            # ... while gRPC drains (the watch is a call in flight it waits for), and gRPC takes
            # no new call either: both stopped accepting at once.
            assert not watch.done()
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ServerLive(pb.ServerLiveRequest(), timeout=BOUND_S)
            # UNAVAILABLE once the client has the GOAWAY; CANCELLED when the call reached the
            # server first (a loaded machine): refused either way, never served
            assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
            watch.cancel()  # a health watcher that saw it leaves, as a client-side balancer does
            await asyncio.wait_for(asyncio.gather(*burst), BOUND_S)  # each 200, its own answer
        code = await asyncio.to_thread(gw.popen.wait, BOUND_S)
        assert code == 0
    finally:
        await asyncio.to_thread(gw.stop)
        await asyncio.to_thread(pod.stop)
