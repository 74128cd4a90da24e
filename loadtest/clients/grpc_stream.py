"""The gRPC streaming load-generator client (KServe v2 ModelStreamInfer, Triton's decoupled API).

One bidirectional stream per client carries every request; answers come back in completion
order and are matched by request ``id``. The request is serialized once: each send appends its
``id`` field (protobuf keeps the last value of a repeated scalar field), so a send costs a few
bytes of concatenation. Every answer is parsed (its ``id`` is needed), the tensors only for the
sampled ones. A stream that breaks fails the requests on it; the next send opens a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from loadtest.clients.base import ClientSpec, InferError, SampledClient
from loadtest.clients.grpc_unary import CHANNEL_OPTIONS
from protos import grpc_service_pb2 as pb
from protos.v2_grpc import decode_response, encode_request

__all__ = ["MODEL_STREAM_INFER", "GrpcStreamClient", "with_id"]

MODEL_STREAM_INFER = "/inference.GRPCInferenceService/ModelStreamInfer"
_ID_TAG = b"\x1a"  # ModelInferRequest.id: field 3, length-delimited


def with_id(body: bytes, request_id: str) -> bytes:
    """``body`` (a serialized ModelInferRequest) with its ``id`` set to ``request_id``."""
    raw = request_id.encode()
    size, varint = len(raw), bytearray()
    while True:
        byte, size = size & 0x7F, size >> 7
        varint.append(byte | (0x80 if size else 0))
        if not size:
            break
    return body + _ID_TAG + bytes(varint) + raw


class GrpcStreamClient(SampledClient):
    """Sends every request on one ModelStreamInfer stream and matches answers by id."""

    def __init__(self, spec: ClientSpec) -> None:
        super().__init__(spec)
        self._body = encode_request(spec.payload.model, spec.payload.request()).SerializeToString()
        self._timeout = spec.timeout_s
        self._metadata = spec.grpc_metadata()  # sent once, when a stream opens
        self._channel = grpc.aio.insecure_channel(spec.target, options=CHANNEL_OPTIONS)
        self._open = self._channel.stream_stream(MODEL_STREAM_INFER)  # bytes in, bytes out
        self._outbox: asyncio.Queue[bytes | None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[pb.ModelStreamInferResponse]] = {}
        self._next = 0

    def _stream(self) -> asyncio.Queue[bytes | None]:
        if self._outbox is None:
            outbox: asyncio.Queue[bytes | None] = asyncio.Queue()

            async def requests() -> AsyncIterator[bytes]:
                while (item := await outbox.get()) is not None:
                    yield item

            call = self._open(requests(), metadata=self._metadata)
            self._outbox = outbox
            self._reader = asyncio.get_running_loop().create_task(self._read(call, outbox))
        return self._outbox

    async def _read(self, call: object, outbox: asyncio.Queue[bytes | None]) -> None:
        error = InferError("grpc-stream closed", "the stream ended with requests unanswered")
        try:
            async for raw in call:  # type: ignore[attr-defined]
                answer = pb.ModelStreamInferResponse.FromString(raw)
                key = answer.infer_response.id or next(iter(self._pending), "")
                found = self._pending.pop(key, None)
                if found is not None and not found.done():
                    found.set_result(answer)
        except grpc.aio.AioRpcError as exc:
            error = InferError(f"grpc {exc.code().name}", str(exc.details()))
        finally:
            if self._outbox is outbox:
                self._outbox = None
            pending, self._pending = self._pending, {}
            for future in pending.values():
                if not future.done():
                    future.set_exception(error)

    async def infer(self) -> None:
        outbox = self._stream()
        request_id = str(self._next)
        self._next += 1
        future: asyncio.Future[pb.ModelStreamInferResponse] = (
            asyncio.get_running_loop().create_future()
        )
        check = self._sampler.due()
        self._pending[request_id] = future
        outbox.put_nowait(with_id(self._body, request_id))
        try:
            answer = await asyncio.wait_for(future, self._timeout)
        finally:
            self._pending.pop(request_id, None)  # a timed-out one must not linger
        if answer.error_message:
            raise InferError("grpc-stream error", answer.error_message)
        if check:
            self._verify(decode_response(answer.infer_response))

    async def aclose(self) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(None)
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 2.0)
        await self._channel.close()
