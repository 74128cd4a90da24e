"""simpod's identity models give back every v2 datatype as sent, over gRPC and HTTP."""

from __future__ import annotations

import aiohttp
import numpy as np
import pytest

from loadtest.stack.procs import PodProc
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import DATATYPES, from_numpy
from tests.integration.loadtest.simpod.simpod_wire import (
    decode_http,
    http_infer,
    sample,
)


@pytest.mark.parametrize("datatype", list(DATATYPES))
async def test_identity_grpc_every_datatype(
    stub: pb_grpc.GRPCInferenceServiceStub, datatype: str
) -> None:
    tensor = sample(datatype)
    model = f"identity_{datatype.lower()}"
    reply = await stub.ModelInfer(v2_grpc.encode_request(model, InferRequestBody([tensor])))
    (out,) = v2_grpc.decode_response(reply).outputs
    assert (out.name, out.datatype, out.shape) == ("OUTPUT0", datatype, tensor.shape)
    assert out.data == tensor.data


@pytest.mark.parametrize("datatype", list(DATATYPES))
async def test_identity_http_binary_every_datatype(
    pod: PodProc, http: aiohttp.ClientSession, datatype: str
) -> None:
    tensor = sample(datatype)
    request = InferRequestBody([tensor], [RequestedOutput("OUTPUT0", True)])
    url = f"{pod.http_url}/v2/models/identity_{datatype.lower()}/infer"
    status, body, headers = await http_infer(http, url, request, binary=True)
    assert status == 200, body
    (out,) = decode_http(body, headers).outputs
    assert (out.datatype, out.shape, out.data) == (datatype, tensor.shape, tensor.data)


@pytest.mark.parametrize("datatype", [d for d, t in DATATYPES.items() if t.json_ok])
async def test_identity_http_json_every_json_datatype(
    pod: PodProc, http: aiohttp.ClientSession, datatype: str
) -> None:
    tensor = sample(datatype)
    if datatype == "BYTES":  # JSON carries text
        tensor = from_numpy("INPUT0", "BYTES", np.array([["a", "bé"], ["", "z"]], dtype=object))
    url = f"{pod.http_url}/v2/models/identity_{datatype.lower()}/infer"
    status, body, headers = await http_infer(http, url, InferRequestBody([tensor]), binary=False)
    assert status == 200, body
    (out,) = decode_http(body, headers).outputs
    assert (out.datatype, out.shape, out.data) == (datatype, tensor.shape, tensor.data)
