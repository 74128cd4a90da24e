"""One inference call to a gateway process with a tenant's key, over HTTP or gRPC."""

from __future__ import annotations

import aiohttp
import grpc
import numpy as np

from loadtest.stack.procs import GatewayProc
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc, v2_http
from protos.infer import InferRequestBody
from protos.tensors import from_numpy

BOUND_S = 15.0  # an upper bound to fail on, never a measured time


def request_body() -> InferRequestBody:
    x = np.ones((1, 16), dtype=np.float32)
    return InferRequestBody([from_numpy("INPUT0", "FP32", x)])


async def post(
    session: aiohttp.ClientSession, gw: GatewayProc, key: str | None, model: str = "sim"
) -> tuple[int, dict[str, str], str]:
    """A REST infer with ``Authorization: Bearer key`` (none for None): status, headers, text."""
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    payload, _ = v2_http.encode_request(request_body(), False)
    url = f"{gw.http_url}/v2/models/{model}/infer"
    async with session.post(url, data=payload, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.text()


async def grpc_infer(gw: GatewayProc, key: str | None, model: str = "sim") -> grpc.StatusCode:
    """A gRPC ModelInfer with ``authorization: Bearer key`` metadata: its status code."""
    metadata = () if key is None else (("authorization", f"Bearer {key}"),)
    request = v2_grpc.encode_request(model, request_body())
    async with grpc.aio.insecure_channel(gw.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        try:
            await stub.ModelInfer(request, metadata=metadata, timeout=BOUND_S)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK
