"""The pod's KServe v2 gRPC service (``inference.GRPCInferenceService``) and gRPC health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from loadtest.simpod.decoupled import RepeatModel, answer_repeat
from loadtest.simpod.engine import Engine
from loadtest.simpod.errors import Code, SimError
from loadtest.simpod.info import EXTENSIONS, SERVER_NAME, server_version
from loadtest.simpod.traces import from_grpc_metadata
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos.tensors import CodecError
from protos.v2_grpc import decode_request, encode_response

__all__ = ["MAX_MESSAGE", "InferenceServicer", "build_grpc_server", "set_health"]

MAX_MESSAGE = 2**31 - 1
log = logging.getLogger("simpod")


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: SimError) -> NoReturn:
    await context.abort(error.code.grpc, error.message)
    raise AssertionError("unreachable")  # context.abort raises


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """Every v2 RPC the pod implements, answered from the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def ServerLive(self, request: Any, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.engine.ready)

    async def ModelReady(self, request: Any, context: Any) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self.engine.model_ready(request.name, request.version))

    async def ServerMetadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(
            name=SERVER_NAME, version=server_version(), extensions=EXTENSIONS
        )

    async def ModelMetadata(self, request: Any, context: Any) -> pb.ModelMetadataResponse:
        try:
            return self.engine.model(request.name, request.version).metadata()
        except SimError as exc:
            await _abort(context, exc)

    async def ModelConfig(self, request: Any, context: Any) -> pb.ModelConfigResponse:
        try:
            config = self.engine.model(request.name, request.version).config(self.engine.devices)
        except SimError as exc:
            await _abort(context, exc)
        return pb.ModelConfigResponse(config=config)

    async def ModelStatistics(self, request: Any, context: Any) -> pb.ModelStatisticsResponse:
        try:
            names = (
                [self.engine.model(request.name, request.version).name]
                if request.name
                else sorted(self.engine.models)
            )
        except SimError as exc:
            await _abort(context, exc)
        return pb.ModelStatisticsResponse(
            model_stats=[self.engine.stats[name].message() for name in names]
        )

    async def _infer(self, request: Any) -> pb.ModelInferResponse:
        self.engine.model(request.model_name, request.model_version)  # NOT_FOUND first
        try:
            body = decode_request(request)
        except CodecError as exc:
            raise SimError.invalid(str(exc)) from None
        response = await self.engine.infer(request.model_name, request.model_version, body)
        msg: pb.ModelInferResponse = encode_response(response)
        return msg

    async def ModelInfer(self, request: Any, context: Any) -> pb.ModelInferResponse:
        traceparent, tracestate = from_grpc_metadata(context.invocation_metadata())
        self.engine.traces.record(
            traceparent, tracestate, model=request.model_name, protocol="grpc"
        )
        try:
            return await self._infer(request)
        except SimError as exc:
            await _abort(context, exc)
        except Exception as exc:  # a bug: answer INTERNAL rather than hang the caller
            log.exception("ModelInfer failed")
            await _abort(context, SimError(Code.INTERNAL, f"internal error: {exc}"))

    async def _stream_one(
        self, request: Any, queue: asyncio.Queue[pb.ModelStreamInferResponse | None]
    ) -> None:
        try:
            out = pb.ModelStreamInferResponse(infer_response=await self._infer(request))
        except SimError as exc:
            out = _stream_error(request, exc.message)
        except Exception as exc:
            log.exception("ModelStreamInfer request failed")
            out = _stream_error(request, f"internal error: {exc}")
        await queue.put(out)

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        """Requests run concurrently; each response is sent when it is ready. The stream's
        trace context (its metadata) is recorded once per request message."""
        traceparent, tracestate = from_grpc_metadata(context.invocation_metadata())
        queue: asyncio.Queue[pb.ModelStreamInferResponse | None] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()

        async def read() -> None:
            try:
                async for request in request_iterator:
                    self.engine.traces.record(
                        traceparent, tracestate, model=request.model_name, protocol="grpc"
                    )
                    model = self.engine.models.get(request.model_name)
                    if isinstance(model, RepeatModel):  # decoupled: 0..n responses
                        work = answer_repeat(self.engine, model, request, queue.put)
                    else:
                        work = self._stream_one(request, queue)
                    task = asyncio.create_task(work)
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                while tasks:
                    await asyncio.gather(*tasks)
            finally:
                queue.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await queue.get()) is not None:
                yield item
            await reader
        finally:
            reader.cancel()
            for task in list(tasks):
                task.cancel()


async def build_grpc_server(
    engine: Engine, address: str, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, health_aio.HealthServicer]:
    """A gRPC server (not yet started) on ``address`` with the inference and health services;
    TLS with ``credentials``."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(engine), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot bind gRPC on {address}")
    return server, health


async def set_health(health: health_aio.HealthServicer, ready: bool) -> None:
    """SERVING for the server ("") and the inference service when ready, else NOT_SERVING."""
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if ready
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for service in ("", "inference.GRPCInferenceService"):
        await health.set(service, status)


def _stream_error(request: Any, message: str) -> pb.ModelStreamInferResponse:
    """An in-band stream error that names its request (as Triton's does), so callers with
    several requests in flight can tell which one failed."""
    echo = pb.ModelInferResponse(
        model_name=request.model_name, model_version=request.model_version, id=request.id
    )
    return pb.ModelStreamInferResponse(error_message=message, infer_response=echo)
