"""A decoupled model through the gateway, with real processes: simpod's ``repeat`` (n responses
for INPUT0 = n) relayed on ModelStreamInfer, unbatched, every response in order with its id;
refused on HTTP infer and ModelInfer as Triton refuses it; the pod's errors relayed; a caller
that leaves frees its pod's slot; a pod that dies mid-request is an error naming it."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.infer import InferRequestBody
from protos.tensors import from_numpy

POD = ["--fixed-ms", "2", "--per-row-ms", "0", "--decoupled-models"]  # a response every 2 ms
BOUND_S = 30.0  # an upper bound to fail on, never a measured time
FINAL = "triton_final_response"


def repeat(n: int, rid: str, **parameters: Any) -> pb.ModelInferRequest:
    body = InferRequestBody([from_numpy("INPUT0", "INT32", np.array([n], np.int32))], id=rid)
    body.parameters.update(parameters)
    return v2_grpc.encode_request("repeat", body)


def value(response: pb.ModelStreamInferResponse) -> int:
    (data,) = response.infer_response.raw_output_contents
    return int(np.frombuffer(data, np.int32)[0])


@pytest.fixture(scope="module")
def pod() -> Iterator[PodProc]:
    started = start_pod(POD)
    yield started
    started.stop()


def repeat_gateway(pod: PodProc, slots: int) -> GatewayProc:
    """A gateway for ``repeat`` on ``pod`` (``slots`` in flight on it); at most 2 requests
    unanswered and 2 responses untaken per stream."""
    model = {"name": "repeat", "endpoints": [pod.grpc_address], "max_inflight_per_pod": slots}
    server = {"grpc_stream_max_inflight": 2}
    return start_gateway([model], extra={"server": server})


@pytest.fixture(scope="module")
def gateway(pod: PodProc) -> Iterator[GatewayProc]:
    gw = repeat_gateway(pod, 1)  # one slot: a request left behind would hold it
    yield gw
    gw.stop()


@pytest.fixture
async def stub(gateway: GatewayProc) -> AsyncIterator[pb_grpc.GRPCInferenceServiceStub]:
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


async def stream(
    stub: pb_grpc.GRPCInferenceServiceStub, requests: list[pb.ModelInferRequest]
) -> list[pb.ModelStreamInferResponse]:
    """Every response of one stream carrying ``requests`` (its side closed after them)."""
    call = stub.ModelStreamInfer(iter(requests), timeout=BOUND_S)
    return [response async for response in call]


def by_id(responses: list[pb.ModelStreamInferResponse]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in responses:
        out.setdefault(r.infer_response.id, []).append(r)
    return out


async def test_every_response_is_relayed_in_order_with_its_id(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    counts = {"a": 3, "b": 0, "c": 7, "d": 2}
    got = by_id(await stream(stub, [repeat(n, rid) for rid, n in counts.items()]))
    assert "b" not in got  # no response at all: the pod's empty final response is not relayed
    for rid, n in counts.items():
        answers = got.get(rid, [])
        assert [value(r) for r in answers] == list(range(n)), rid
        for r in answers:
            assert not r.error_message
            assert r.infer_response.model_name == "repeat"
            assert r.infer_response.parameters[FINAL].bool_param is False


async def test_the_empty_final_response_is_relayed_when_the_caller_asks(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    asked = {"triton_enable_empty_final_response": True}
    got = by_id(await stream(stub, [repeat(2, "x", **asked), repeat(0, "y", **asked)]))
    *values, final = got["x"]
    assert [value(r) for r in values] == [0, 1]
    assert final.infer_response.parameters[FINAL].bool_param is True
    assert not final.infer_response.outputs and not final.error_message
    (only,) = got["y"]
    assert only.infer_response.parameters[FINAL].bool_param is True
    assert not only.infer_response.outputs


async def test_the_pods_error_is_relayed_and_the_stream_goes_on(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    wrong = v2_grpc.encode_request(
        "repeat",
        InferRequestBody([from_numpy("INPUT0", "FP32", np.array([1], np.float32))], id="w"),
    )
    got = by_id(await stream(stub, [repeat(-1, "bad"), wrong, repeat(2, "ok")]))
    (error,) = got["bad"]
    assert error.error_message == "count must be non-negative, got -1"  # the pod's own words
    (refused,) = got["w"]
    assert "datatype FP32" in refused.error_message  # the gateway's check, before the pod
    assert [value(r) for r in got["ok"]] == [0, 1]


def http_infer(gw: GatewayProc) -> tuple[int, dict[str, Any]]:
    doc = {"inputs": [{"name": "INPUT0", "datatype": "INT32", "shape": [1], "data": [3]}]}
    req = urllib.request.Request(
        f"{gw.http_url}/v2/models/repeat/infer",
        json.dumps(doc).encode(),
        {"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=BOUND_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_http_infer_and_model_infer_are_refused_as_triton_refuses_them(
    gateway: GatewayProc, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    status, doc = await asyncio.to_thread(http_infer, gateway)
    assert (status, doc) == (
        501,
        {"error": "HTTP end point doesn't support models with decoupled transaction policy"},
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ModelInfer(repeat(3, "u"), timeout=BOUND_S)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert err.value.details() == (
        "ModelInfer RPC doesn't support models with decoupled transaction policy"
    )


async def test_a_caller_that_leaves_frees_its_pods_slot(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    """The pod's one slot is held by a request of 10^6 responses (over half an hour): the
    caller leaves after two, the call to the pod is cancelled, and the next request is
    served (else it would wait for the slot past its deadline)."""
    call = stub.ModelStreamInfer(timeout=BOUND_S)
    await call.write(repeat(1_000_000, "long"))
    for i in range(2):
        assert value(await call.read()) == i
    call.cancel()
    got = by_id(await stream(stub, [repeat(3, "next")]))
    assert [value(r) for r in got["next"]] == [0, 1, 2]


async def test_a_pod_that_dies_mid_request_is_an_error_naming_it() -> None:
    dying = await asyncio.to_thread(start_pod, POD)
    gw = await asyncio.to_thread(repeat_gateway, dying, 4)
    try:
        async with grpc.aio.insecure_channel(gw.grpc_address) as channel:
            call = pb_grpc.GRPCInferenceServiceStub(channel).ModelStreamInfer(timeout=BOUND_S)
            await call.write(repeat(1_000_000, "doomed"))
            assert value(await call.read()) == 0
            dying.kill()
            while (response := await call.read()) is not grpc.aio.EOF:
                if response.error_message:
                    break
            else:
                raise AssertionError("the stream ended without the error")
            assert response.infer_response.id == "doomed"
            assert f"pod {dying.grpc_address}" in response.error_message
            await call.done_writing()
    finally:
        await asyncio.to_thread(gw.stop)
        await asyncio.to_thread(dying.stop)
