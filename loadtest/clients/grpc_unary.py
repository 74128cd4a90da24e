"""The gRPC load-generator client (KServe v2 ModelInfer, raw tensor contents).

The request is serialized once; the call sends those bytes and gets the response's bytes back,
parsing them only for the responses it checks. The method path is the one the generated
``GRPCInferenceServiceStub`` calls; the stub itself is not used because it would serialize the
request and parse the response on every call.
"""

from __future__ import annotations

import grpc

from loadtest.clients.base import ClientSpec, InferError, SampledClient
from protos import grpc_service_pb2 as pb
from protos.v2_grpc import decode_response, encode_request

__all__ = ["MODEL_INFER", "GrpcClient"]

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
_MAX_MESSAGE = 2**31 - 1
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", _MAX_MESSAGE),
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
]


class GrpcClient(SampledClient):
    """Calls ModelInfer on one channel (HTTP/2 multiplexes the concurrent calls)."""

    def __init__(self, spec: ClientSpec) -> None:
        super().__init__(spec)
        request = encode_request(spec.payload.model, spec.payload.request())
        self._body: bytes = request.SerializeToString()
        self._timeout = spec.timeout_s
        self._metadata = spec.grpc_metadata()
        self._channel = grpc.aio.insecure_channel(spec.target, options=CHANNEL_OPTIONS)
        # No serializers: bytes go out as they are and come back unparsed.
        self._call = self._channel.unary_unary(MODEL_INFER)

    async def infer(self) -> None:
        check = self._sampler.due()
        try:
            raw = await self._call(self._body, timeout=self._timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise InferError(f"grpc {exc.code().name}", str(exc.details())) from exc
        if check:
            self._verify(decode_response(pb.ModelInferResponse.FromString(raw)))

    async def aclose(self) -> None:
        await self._channel.close()
