"""The v2 gRPC front-end (grpc.aio): GRPCInferenceService, health checking and reflection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.config import ServerSettings
from gateway.core import Gateway
from gateway.errors import Code, InferError
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.tensors import CodecError

__all__ = ["GrpcFrontend", "build_grpc_server", "server_options"]

_INT32_MAX = 2**31 - 1
_SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: InferError) -> NoReturn:
    if exc.retry_after_s is not None:
        context.set_trailing_metadata((("retry-after", str(max(1, round(exc.retry_after_s)))),))
    await context.abort(exc.code.grpc_code, exc.message)
    raise AssertionError("unreachable")  # abort raises


def _as_infer_error(exc: Exception) -> InferError:
    if isinstance(exc, InferError):
        return exc
    return InferError(Code.INVALID_ARGUMENT, str(exc))


class GrpcFrontend(pb_grpc.GRPCInferenceServiceServicer):
    """Each RPC maps onto the Gateway core; failures abort with the error's status code."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=self.gateway.live)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.gateway.ready)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        try:
            return pb.ModelReadyResponse(ready=self.gateway.model(request.name).ready)
        except InferError as exc:
            await _abort(context, exc)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return self.gateway.server_metadata()

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        try:
            return self.gateway.spec(request.name, request.version).metadata()
        except InferError as exc:
            await _abort(context, exc)

    async def ModelConfig(self, request: Any, context: Any) -> Any:
        try:
            return pb.ModelConfigResponse(
                config=self.gateway.model(request.name, request.version).config()
            )
        except InferError as exc:
            await _abort(context, exc)

    async def ModelStatistics(self, request: Any, context: Any) -> Any:
        try:
            return self.gateway.statistics(request.name, request.version)
        except InferError as exc:
            await _abort(context, exc)

    async def _infer(self, request: Any, timeout_s: float | None) -> Any:
        body = v2_grpc.decode_request(request)
        response = await self.gateway.infer(
            "grpc", request.model_name, request.model_version, body, timeout_s
        )
        return v2_grpc.encode_response(response)

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        try:
            return await self._infer(request, context.time_remaining())
        except (InferError, CodecError) as exc:
            await _abort(context, _as_infer_error(exc))

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        """Answer each request of the stream as it completes (match responses by id)."""
        answers: asyncio.Queue[Any] = asyncio.Queue()
        pending: set[asyncio.Task[None]] = set()

        async def one(request: Any) -> None:
            try:
                reply = await self._infer(request, context.time_remaining())
                await answers.put(pb.ModelStreamInferResponse(infer_response=reply))
            except (InferError, CodecError) as exc:
                error = _as_infer_error(exc)
                echo = pb.ModelInferResponse(
                    model_name=request.model_name,
                    model_version=request.model_version,
                    id=request.id,
                )
                await answers.put(
                    pb.ModelStreamInferResponse(error_message=error.message, infer_response=echo)
                )

        async def read() -> None:
            async for request in request_iterator:
                task = asyncio.create_task(one(request))
                pending.add(task)
                task.add_done_callback(pending.discard)
            while pending:
                await asyncio.gather(*pending)
            await answers.put(None)

        reader = asyncio.create_task(read())
        try:
            while (answer := await answers.get()) is not None:
                yield answer
            await reader  # surface a failure of the request stream
        finally:
            for task in (reader, *pending):
                task.cancel()
            for task in (reader, *pending):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def server_options(settings: ServerSettings) -> list[tuple[str, int]]:
    """The gRPC server's channel options: message sizes, and a maximum connection age (with
    grace for calls in flight) so long-lived clients reconnect and rebalance."""
    return [
        ("grpc.max_receive_message_length", settings.max_request_bytes),
        ("grpc.max_send_message_length", _INT32_MAX),
        ("grpc.so_reuseport", 0),
        ("grpc.max_connection_age_ms", round(settings.grpc_max_connection_age_s * 1000)),
        (
            "grpc.max_connection_age_grace_ms",
            round(settings.grpc_max_connection_age_grace_s * 1000),
        ),
    ]


async def build_grpc_server(
    gateway: Gateway, address: str
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """A started gRPC server on ``address`` with the inference, health and reflection services.

    Returns the server, its port and the health servicer (set NOT_SERVING when draining).
    """
    server = grpc.aio.server(options=server_options(gateway.config.server))
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(GrpcFrontend(gateway), server)
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    reflection.enable_server_reflection(
        (_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(address)
    await server.start()
    for service in ("", _SERVICE):
        await checker.set(service, health_pb2.HealthCheckResponse.SERVING)
    return server, port, checker
