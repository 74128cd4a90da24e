"""A flood of large bodies against a small memory budget: the gateway refuses what would pass
the budget at once (429 / RESOURCE_EXHAUSTED; over HTTP before the body is read), answers every
request it admitted and never holds more than the budget. Over HTTP its peak RSS stays within
a small multiple of the budget; a gRPC message is received whole by grpc's core before the
gateway sees it (bounded by the server's stream and message limits, not by the budget), so
there the test checks the accounting and the answers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import aiohttp
import grpc
import numpy as np
import pytest

from loadtest.probes.metrics import fetch_metrics
from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc, v2_http
from protos.infer import InferRequestBody
from protos.tensors import from_numpy

ROW = 512 * 1024  # FP32 values per row: a 2 MiB body
BUDGET = 8 * 1024 * 1024
FLOOD = 40  # 80 MiB of bodies at once


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[PodProc, GatewayProc]]:
    # Batches of 4 rows (8 MiB, the budget) that take 3 s: the first budget's worth is held
    # that long, so the rest of a flood arrives while it is full, however slow the machine.
    pod = start_pod(["--row-size", str(ROW), "--fixed-ms", "3000", "--max-batch", "4"])
    try:
        gw = start_gateway(
            [{"name": "sim", "endpoints": [pod.grpc_address], "dynamic_batching": {}}],
            extra={"server": {"memory_budget_bytes": BUDGET}},
        )
        try:
            yield pod, gw
        finally:
            gw.stop()
    finally:
        pod.stop()


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def flood(gw: GatewayProc, http: int, grpc_calls: int) -> Counter[str]:
    """``http`` and ``grpc_calls`` requests of one 2 MiB row at once; their answers by kind."""
    data = np.ones((1, ROW), dtype=np.float32)
    body = InferRequestBody([from_numpy("INPUT0", "FP32", data)])
    http_body, header_length = v2_http.encode_request(body, binary=True)
    headers = {"Inference-Header-Content-Length": str(header_length)}
    grpc_request = v2_grpc.encode_request("sim", body)
    answers: Counter[str] = Counter()

    async def over_http(session: aiohttp.ClientSession) -> None:
        url = f"{gw.http_url}/v2/models/sim/infer"
        async with session.post(url, data=http_body, headers=headers) as resp:
            await resp.read()
            answers[f"http {resp.status}"] += 1

    async def over_grpc(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
        try:
            await stub.ModelInfer(grpc_request, timeout=60)
            answers["grpc OK"] += 1
        except grpc.aio.AioRpcError as exc:
            answers[f"grpc {exc.code().name}"] += 1

    options = [("grpc.max_send_message_length", 64 << 20)]
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        grpc.aio.insecure_channel(gw.grpc_address, options=options) as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        calls = [over_http(session) for _ in range(http)]
        calls += [over_grpc(stub) for _ in range(grpc_calls)]
        async with asyncio.timeout(120):  # a bound on a hang, not a timing check
            await asyncio.gather(*calls)
    assert sum(answers.values()) == http + grpc_calls, answers
    return answers


def check_accounting(gw: GatewayProc, answers: Counter[str], refused: str, ok: str) -> None:
    assert set(answers) <= {refused, ok}, answers
    assert answers[refused] > 0, "nothing was refused"
    assert answers[ok] >= BUDGET // (ROW * 4) - 1  # the budget's worth was admitted, answered
    scrape = fetch_metrics(gw.metrics_url)
    assert scrape is not None
    assert 0 < (scrape.total("gateway_memory_held_peak_bytes") or 0) <= BUDGET
    assert scrape.total("gateway_memory_held_bytes") == 0  # every lease given back


async def test_an_http_flood_of_large_bodies_is_refused_before_it_is_read(
    stack: tuple[PodProc, GatewayProc],
) -> None:
    _, gw = stack
    before = peak_rss_kib(gw.popen.pid)
    answers = await flood(gw, FLOOD, 0)
    check_accounting(gw, answers, "http 429", "http 200")
    grown_mib = (peak_rss_kib(gw.popen.pid) - before) / 1024
    assert grown_mib < 48, f"peak RSS grew {grown_mib:.0f} MiB for a {BUDGET >> 20} MiB budget"


def held_bytes(gw: GatewayProc) -> float:
    scrape = fetch_metrics(gw.metrics_url)
    return (scrape.total("gateway_memory_held_bytes") or 0) if scrape else 0


async def test_a_grpc_call_is_refused_while_the_budget_is_full_and_served_after(
    stack: tuple[PodProc, GatewayProc],
) -> None:
    """gRPC delivers a flood's messages at its own pace, so the budget is filled first (four
    2 MiB HTTP requests, held 3 s by the pod), then gRPC calls come while it is full."""
    _, gw = stack
    filling = asyncio.create_task(flood(gw, BUDGET // (ROW * 4), 0))
    async with asyncio.timeout(60):  # a bound on a hang, not a timing check
        while held_bytes(gw) + ROW * 4 <= BUDGET:  # no room left for one more
            await asyncio.sleep(0.02)
    refused = await flood(gw, 0, 4)
    assert refused == {"grpc RESOURCE_EXHAUSTED": 4}, refused
    filled = await filling  # the ones admitted answered, the one past the budget refused
    assert set(filled) <= {"http 200", "http 429"} and filled["http 200"] >= 1, filled
    assert await flood(gw, 0, 1) == {"grpc OK": 1}  # room again: served
    assert held_bytes(gw) == 0
