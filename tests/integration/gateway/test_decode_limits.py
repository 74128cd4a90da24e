"""Requests are checked before they are decoded, against a real gateway over HTTP (JSON and the
binary extension) and gRPC: a datatype the model does not take, BYTES items and decode work past
the per-request caps, and raw with typed contents are 400 / INVALID_ARGUMENT naming why."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import grpc
import numpy as np
import orjson
import pytest

from loadtest.stack.procs import GatewayProc, start_gateway, start_pod
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.infer import InferRequestBody
from protos.tensors import Tensor, from_numpy
from tests.integration.loadtest.simpod.simpod_wire import grpc_error, http_infer

MAX_ELEMENTS = 1000
MAX_BYTES_ITEMS = 100
MODELS = ("sim", "identity_bytes", "identity_fp32")
WIRES = ("json", "binary", "grpc")


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProc]:
    """``sim`` takes FP32 [-1, 16]; the identity models take any [-1, -1] of their datatype."""
    pod = start_pod(["--fixed-ms", "1", "--per-row-ms", "0", "--identity-models"])
    server = {"max_decode_elements": MAX_ELEMENTS, "max_bytes_items": MAX_BYTES_ITEMS}
    try:
        gw = start_gateway(
            [{"name": m, "endpoints": [pod.grpc_address]} for m in MODELS],
            extra={"server": server},
        )
        yield gw
        gw.stop()
    finally:
        pod.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


async def infer(
    gw: GatewayProc, session: aiohttp.ClientSession, wire: str, model: str, tensor: Tensor
) -> tuple[bool, str]:
    """Send one input over ``wire``; (answered, the error message if not)."""
    request = InferRequestBody([tensor])
    if wire != "grpc":
        url = f"{gw.http_url}/v2/models/{model}/infer"
        status, body, _ = await http_infer(session, url, request, binary=wire == "binary")
        if status == 200:
            return True, ""
        assert status == 400, body
        return False, orjson.loads(body)["error"]
    async with grpc.aio.insecure_channel(gw.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        msg = v2_grpc.encode_request(model, request)
        try:
            await stub.ModelInfer(msg, timeout=30)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
            return False, exc.details() or ""
        return True, ""


def strings(n: int) -> Tensor:
    return from_numpy("INPUT0", "BYTES", np.array([b""] * n, dtype=object).reshape(1, n))


@pytest.mark.parametrize("wire", WIRES)
async def test_a_datatype_the_model_does_not_take_is_refused(
    gateway: GatewayProc, session: aiohttp.ClientSession, wire: str
) -> None:
    ok, message = await infer(gateway, session, wire, "sim", strings(16))
    assert not ok
    assert "input 'INPUT0' has datatype BYTES, model 'sim' expects FP32" in message


@pytest.mark.parametrize("wire", WIRES)
async def test_bytes_items_past_the_cap_are_refused_naming_it(
    gateway: GatewayProc, session: aiohttp.ClientSession, wire: str
) -> None:
    assert await infer(gateway, session, wire, "identity_bytes", strings(MAX_BYTES_ITEMS)) == (
        True,
        "",
    )
    ok, message = await infer(gateway, session, wire, "identity_bytes", strings(4 * MAX_ELEMENTS))
    assert not ok
    assert f"input 'INPUT0': the request holds {4 * MAX_ELEMENTS} BYTES items" in message
    assert f"max_bytes_items {MAX_BYTES_ITEMS}" in message


@pytest.mark.parametrize(("wire", "refused"), [("json", True), ("binary", False)])
async def test_json_elements_past_the_cap_are_refused_and_raw_data_is_not_decode_work(
    gateway: GatewayProc, session: aiohttp.ClientSession, wire: str, refused: bool
) -> None:
    tensor = from_numpy("INPUT0", "FP32", np.zeros((1, 2 * MAX_ELEMENTS), np.float32))
    ok, message = await infer(gateway, session, wire, "identity_fp32", tensor)
    assert ok is not refused, message
    if refused:
        assert f"input 'INPUT0': the request holds {2 * MAX_ELEMENTS} elements" in message
        assert f"max_decode_elements {MAX_ELEMENTS}" in message


async def grpc_refusal(gw: GatewayProc, msg: Any) -> str:
    async with grpc.aio.insecure_channel(gw.grpc_address) as channel:
        err = await grpc_error(
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(msg, timeout=30)
        )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    return err.details() or ""


async def test_grpc_typed_contents_past_the_cap_are_refused(gateway: GatewayProc) -> None:
    msg = pb.ModelInferRequest(model_name="identity_fp32")
    tensor = msg.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 2 * MAX_ELEMENTS])
    tensor.contents.fp32_contents.extend([0.0] * 2 * MAX_ELEMENTS)
    assert f"max_decode_elements {MAX_ELEMENTS}" in await grpc_refusal(gateway, msg)


async def test_grpc_raw_and_typed_contents_together_are_refused(gateway: GatewayProc) -> None:
    row = from_numpy("INPUT0", "FP32", np.ones((1, 16), np.float32))
    msg = v2_grpc.encode_request("sim", InferRequestBody([row]))
    msg.inputs[0].contents.fp32_contents.extend([1.0] * 16)
    assert await grpc_refusal(gateway, msg) == (
        "contents field must not be specified when using raw_input_contents "
        "for input 'INPUT0' for model 'sim'"
    )
