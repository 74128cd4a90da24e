"""simpod records the W3C trace context each inference call brought, read back at
``GET /sim/traceparents``, over gRPC (metadata) and HTTP (headers)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from loadtest.stack.procs import PodProc
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc, v2_http
from tests.integration.loadtest.simpod.simpod_wire import sim_request


def _traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


async def _recorded(http: aiohttp.ClientSession, pod: PodProc) -> list[dict[str, Any]]:
    async with http.get(f"{pod.http_url}/sim/traceparents") as resp:
        assert resp.status == 200
        doc = await resp.json()
    records: list[dict[str, Any]] = doc["traceparents"]
    return records


async def _with(
    http: aiohttp.ClientSession, pod: PodProc, traceparent: str
) -> list[dict[str, Any]]:
    return [r for r in await _recorded(http, pod) if r["traceparent"] == traceparent]


async def _http_infer(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, bytes]:
    body, _ = v2_http.encode_request(sim_request(2)[0], binary=False)
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.read()


async def test_grpc_infer_records_the_traceparent_metadata(
    pod: PodProc, stub: pb_grpc.GRPCInferenceServiceStub, http: aiohttp.ClientSession
) -> None:
    traceparent = _traceparent()
    metadata = (("traceparent", traceparent), ("tracestate", "gw=1,other=x"))
    reply = await stub.ModelInfer(
        v2_grpc.encode_request("sim", sim_request(3)[0]), metadata=metadata
    )
    assert reply.outputs[0].name == "OUTPUT0"
    assert await _with(http, pod, traceparent) == [
        {
            "traceparent": traceparent,
            "tracestate": "gw=1,other=x",
            "model": "sim",
            "protocol": "grpc",
        }
    ]


async def test_each_streamed_request_records_the_stream_traceparent(
    pod: PodProc, stub: pb_grpc.GRPCInferenceServiceStub, http: aiohttp.ClientSession
) -> None:
    traceparent = _traceparent()

    async def messages() -> AsyncIterator[pb.ModelInferRequest]:
        for seed in (1, 2):
            yield v2_grpc.encode_request("sim", sim_request(1, seed)[0])

    call = stub.ModelStreamInfer(messages(), metadata=(("traceparent", traceparent),))
    replies = [reply async for reply in call]
    assert [r.error_message for r in replies] == ["", ""]
    records = await _with(http, pod, traceparent)
    assert [(r["model"], r["protocol"], r["tracestate"]) for r in records] == [
        ("sim", "grpc", None),
        ("sim", "grpc", None),
    ]


@pytest.mark.parametrize("path", ["/v2/models/sim/infer", "/v2/models/sim/versions/1/infer"])
async def test_http_infer_records_the_traceparent_header(
    pod: PodProc, http: aiohttp.ClientSession, path: str
) -> None:
    traceparent = _traceparent()
    status, _ = await _http_infer(http, f"{pod.http_url}{path}", {"traceparent": traceparent})
    assert status == 200
    assert await _with(http, pod, traceparent) == [
        {"traceparent": traceparent, "tracestate": None, "model": "sim", "protocol": "http"}
    ]


async def test_records_are_listed_oldest_first(
    pod: PodProc, stub: pb_grpc.GRPCInferenceServiceStub, http: aiohttp.ClientSession
) -> None:
    first, second = _traceparent(), _traceparent()
    msg = v2_grpc.encode_request("sim", sim_request(1)[0])
    await stub.ModelInfer(msg, metadata=(("traceparent", first),))
    status, _ = await _http_infer(
        http, f"{pod.http_url}/v2/models/sim/infer", {"traceparent": second}
    )
    assert status == 200
    seen = [r["traceparent"] for r in await _recorded(http, pod)]
    assert seen.index(first) < seen.index(second)


async def test_a_malformed_traceparent_is_served_and_recorded_cut_short(
    pod: PodProc, stub: pb_grpc.GRPCInferenceServiceStub, http: aiohttp.ClientSession
) -> None:
    garbage = "zz-" + secrets.token_hex(200)
    reply = await stub.ModelInfer(
        v2_grpc.encode_request("sim", sim_request(1)[0]), metadata=(("traceparent", garbage),)
    )
    assert reply.outputs[0].name == "OUTPUT0"
    status, _ = await _http_infer(
        http, f"{pod.http_url}/v2/models/sim/infer", {"traceparent": garbage}
    )
    assert status == 200
    records = await _with(http, pod, garbage[:256])
    assert [r["protocol"] for r in records] == ["grpc", "http"]


async def test_a_call_without_traceparent_is_not_recorded(
    pod: PodProc, stub: pb_grpc.GRPCInferenceServiceStub, http: aiohttp.ClientSession
) -> None:
    before = await _recorded(http, pod)
    await stub.ModelInfer(v2_grpc.encode_request("sim", sim_request(1)[0]))
    status, _ = await _http_infer(http, f"{pod.http_url}/v2/models/sim/infer", {})
    assert status == 200
    assert await _recorded(http, pod) == before


async def test_a_failed_call_is_recorded_too(pod: PodProc, http: aiohttp.ClientSession) -> None:
    traceparent = _traceparent()
    status, _ = await _http_infer(
        http, f"{pod.http_url}/v2/models/nope/infer", {"traceparent": traceparent}
    )
    assert status == 404
    assert [r["model"] for r in await _with(http, pod, traceparent)] == ["nope"]
