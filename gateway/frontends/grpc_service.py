"""The v2 gRPC front-end (grpc.aio): GRPCInferenceService, health checking and reflection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import message_factory
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.config import ServerSettings
from gateway.core import Gateway
from gateway.errors import Code, InferError
from gateway.frontends.grpc_status import GRPC_REQUEST_ID, abort, parsing, status_detail
from gateway.memory_budget import budget_full
from gateway.models.decoupled import Emit
from gateway.models.spec import STREAM, decoupled_refusal
from gateway.observe.request import RequestInfo, checked_request_id
from gateway.tenants.directory import Tenant
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.heads import DecodeLimits

__all__ = ["GrpcFrontend", "add_inference_service", "build_grpc_server", "server_options"]

_INT32_MAX = 2**31 - 1
_SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
_TRACE_KEYS = ("traceparent", "tracestate", GRPC_REQUEST_ID, "authorization")
_SPAN_ATTRS = {"rpc.system": "grpc", "rpc.service": _SERVICE}


def _trace_metadata(context: Any) -> dict[str, str]:
    """The call's ``traceparent``, ``tracestate`` and ``x-request-id`` metadata (the first of
    each)."""
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key in _TRACE_KEYS and key not in found and isinstance(value, str):
            found[key] = value
    return found


class GrpcFrontend(pb_grpc.GRPCInferenceServiceServicer):
    """Each RPC maps onto the Gateway core; failures abort with the error's status code."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        server = gateway.config.server  # fixed at start: a reload keeps the running server's
        self._limits = DecodeLimits(server.max_decode_elements, server.max_bytes_items)
        self._stream_max_inflight = server.grpc_stream_max_inflight
        self._stream_answers = gateway.metrics.stream_answers
        self._observer = gateway.request_observer

    def _caller(
        self, context: Any, rpc: str, model: str = "", found: dict[str, str] | None = None
    ) -> Tenant | None:
        """The tenant making the call: None when no tenants are configured or the RPC is open;
        else its ``authorization`` metadata (from ``found``, the call's metadata already read,
        when given) is checked (UNAUTHENTICATED) and ``model`` authorized (PERMISSION_DENIED)."""
        tenants = self.gateway.tenants
        if not tenants.enabled or tenants.is_open_rpc(rpc):
            return None
        if found is None:
            found = _trace_metadata(context)
        tenant = tenants.identify(found.get("authorization"))
        if model:
            tenants.authorize(tenant, model)
        return tenant

    async def ServerLive(self, request: Any, context: Any) -> Any:
        try:
            self._caller(context, "ServerLive")
            return pb.ServerLiveResponse(live=self.gateway.live)
        except InferError as exc:
            await abort(context, exc)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        try:
            self._caller(context, "ServerReady")
            return pb.ServerReadyResponse(ready=self.gateway.ready)
        except InferError as exc:
            await abort(context, exc)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        """Whether the model (at the version, when one is asked for) is ready: false, as Triton
        answers, for a model or version the gateway does not serve (HTTP: 404)."""
        try:
            self._caller(context, "ModelReady", request.name)
            runtime = self.gateway.model(request.name, request.version)
            return pb.ModelReadyResponse(ready=runtime.ready)
        except InferError as exc:
            if exc.code is Code.NOT_FOUND:  # the tenant check never answers NOT_FOUND
                return pb.ModelReadyResponse(ready=False)
            await abort(context, exc)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        try:
            self._caller(context, "ServerMetadata")
            return self.gateway.server_metadata()
        except InferError as exc:
            await abort(context, exc)

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        try:
            self._caller(context, "ModelMetadata", request.name)
            return self.gateway.spec(request.name, request.version).metadata()
        except InferError as exc:
            await abort(context, exc)

    async def ModelConfig(self, request: Any, context: Any) -> Any:
        try:
            self._caller(context, "ModelConfig", request.name)
            return pb.ModelConfigResponse(
                config=self.gateway.model(request.name, request.version).config()
            )
        except InferError as exc:
            await abort(context, exc)

    async def ModelStatistics(self, request: Any, context: Any) -> Any:
        try:
            tenant = self._caller(context, "ModelStatistics", request.name)
            if not request.name and tenant is not None and tenant.models is not None:
                return self.gateway.statistics_of(list(tenant.models))
            return self.gateway.statistics(request.name, request.version)
        except InferError as exc:
            await abort(context, exc)

    async def _infer(
        self, request: Any, timeout_s: float | None, info: RequestInfo, emit: Emit | None = None
    ) -> Any:
        """A ModelInfer request's ModelInferResponse; on a stream (``emit`` given) its last
        ModelStreamInferResponse, a decoupled model's other responses given to ``emit`` first
        (None: it has no last one to relay). A decoupled model refuses ModelInfer as Triton
        does, before the request is read."""
        info.model = request.model_name
        tenants = self.gateway.tenants
        if info.tenant is not None:
            tenants.authorize(info.tenant, request.model_name)  # 403 before 404
        runtime = self.gateway.model(request.model_name, request.model_version)  # NOT_FOUND first
        if emit is None and runtime.spec is not None and runtime.spec.decoupled:
            raise decoupled_refusal("grpc")
        size = request.ByteSize()
        lease = self.gateway.budget.try_acquire(size)
        if lease is None:
            raise InferError(Code.RESOURCE_EXHAUSTED, budget_full(self.gateway.budget, size))
        name, version, gateway = request.model_name, request.model_version, self.gateway
        try:
            head = v2_grpc.parse_request(request)
            # checked before anything is decoded
            body = runtime.decode(head, self._limits, "grpc" if emit is None else STREAM)
            if emit is None:
                response = await gateway.infer("grpc", name, version, body, timeout_s, info)
                return v2_grpc.encode_response(response)
            spec = runtime.spec or await runtime.described(
                runtime.deadline(timeout_s, time.monotonic()), body
            )
            if spec.decoupled:
                return await gateway.infer_decoupled(
                    "grpc", name, version, body, timeout_s, info, emit
                )
            response = await gateway.infer("grpc", name, version, body, timeout_s, info)
            return pb.ModelStreamInferResponse(infer_response=v2_grpc.encode_response(response))
        finally:
            lease.release()

    async def ModelInfer(self, raw: bytes, context: Any) -> Any:
        """Its request comes as bytes (see ``add_inference_service``), parsed here; the answer
        (or the error) carries the request id as ``x-request-id`` trailing metadata."""
        found = _trace_metadata(context)
        observer = self._observer
        info = observer.begin(
            "grpc", "ModelInfer", found.get("traceparent"), found.get("tracestate"), _SPAN_ATTRS
        )
        try:
            info.given_id = checked_request_id(found.get(GRPC_REQUEST_ID))
            info.tenant = self._caller(context, "ModelInfer", found=found)
            request = v2_grpc.request_from_bytes(raw)
            reply = await self._infer(request, context.time_remaining(), info)
        except BaseException as exc:
            error = observer.failed(info, exc)
            if error is None:
                raise
            await abort(context, error, info.request_id)
        context.set_trailing_metadata(((GRPC_REQUEST_ID, info.request_id),))
        observer.end(info)
        return reply

    async def _stream_answer(
        self, raw: bytes, context: Any, trace: dict[str, str], tenant: Tenant | None, emit: Emit
    ) -> Any:
        """One stream request's last answer: its response (a decoupled model's last, its
        others given to ``emit`` first; None: no last one to relay), or its error echoing its
        id (a message that does not parse is answered with that error, and the stream goes
        on). Its request id is its own v2 ``id`` (or one made for it); the stream's
        ``traceparent`` is each message's parent."""
        observer = self._observer
        info = observer.begin(
            "grpc",
            "ModelStreamInfer",
            trace.get("traceparent"),
            trace.get("tracestate"),
            _SPAN_ATTRS,
        )
        info.tenant = tenant
        request = pb.ModelInferRequest()
        try:
            request = v2_grpc.request_from_bytes(raw)
            reply = await self._infer(request, context.time_remaining(), info, emit)
        except BaseException as exc:
            error = observer.failed(info, exc)
            if error is None:
                raise
            echo = pb.ModelInferResponse(
                model_name=request.model_name, model_version=request.model_version, id=request.id
            )
            detail = status_detail(error.message)  # as an abort's: one cap for every error
            return pb.ModelStreamInferResponse(error_message=detail, infer_response=echo)
        observer.end(info)
        return reply

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        """Answer each request of the stream as it completes (match responses by id); a
        decoupled model's requests each with every response its pod sends, in order
        (``gateway.models.decoupled``), interleaved with the others'.

        At most ``grpc_stream_max_inflight`` requests are read and not yet answered to the
        client: a slot is taken before a request is read and freed once gRPC has taken its
        (last) answer (as far as the client's HTTP/2 windows allow), so a client that does not
        read its answers stops the stream being read, and its requests wait in its own windows.
        A decoupled request's other responses wait for gRPC to take them within a window of as
        many (past it, its relay stops reading its pod's stream, and the pod's windows fill).
        """
        slots = asyncio.Semaphore(self._stream_max_inflight)
        window = asyncio.Semaphore(self._stream_max_inflight)  # responses but a request's last
        answers: asyncio.Queue[tuple[Any, bool] | None] = asyncio.Queue()  # bounded by both
        pending: set[asyncio.Task[None]] = set()
        gauge = self._stream_answers
        held = 0  # requests read whose last answers gRPC has not taken yet

        trace = _trace_metadata(context)
        try:
            tenant = self._caller(context, "ModelStreamInfer", found=trace)  # once a stream
        except InferError as exc:
            await abort(context, exc)

        async def relay(response: Any) -> None:
            await window.acquire()
            answers.put_nowait((response, False))

        async def one(request: Any) -> None:
            last = await self._stream_answer(request, context, trace, tenant, relay)
            answers.put_nowait((last, True))

        async def read() -> None:
            nonlocal held
            requests = aiter(request_iterator)
            try:
                while True:
                    await slots.acquire()
                    try:
                        request = await anext(requests)
                    except StopAsyncIteration:
                        break
                    held += 1
                    gauge.inc()
                    task = asyncio.create_task(one(request))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                while pending:
                    await asyncio.gather(*pending)
            finally:
                answers.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await answers.get()) is not None:
                answer, last = item
                if answer is not None:
                    yield answer
                if not last:
                    window.release()
                    continue
                held -= 1
                gauge.dec()
                slots.release()
            await reader  # surface a failure of the request stream
        finally:
            gauge.dec(held)
            for task in (reader, *pending):
                task.cancel()
            for task in (reader, *pending):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def server_options(settings: ServerSettings) -> list[tuple[str, int]]:
    """The gRPC server's channel options: message sizes; a maximum connection age (with grace
    for calls in flight) so long-lived clients reconnect and rebalance; streams per connection;
    keepalive, both ways (the server's pings, and how often a client may ping)."""

    def ms(seconds: float) -> int:
        return round(seconds * 1000)

    return [
        ("grpc.max_receive_message_length", settings.max_request_bytes),
        ("grpc.max_send_message_length", _INT32_MAX),
        ("grpc.so_reuseport", 0),
        ("grpc.max_connection_age_ms", ms(settings.grpc_max_connection_age_s)),
        ("grpc.max_connection_age_grace_ms", ms(settings.grpc_max_connection_age_grace_s)),
        ("grpc.max_concurrent_streams", settings.grpc_max_concurrent_streams),
        ("grpc.keepalive_time_ms", ms(settings.grpc_keepalive_time_s)),
        ("grpc.keepalive_timeout_ms", ms(settings.grpc_keepalive_timeout_s)),
        ("grpc.keepalive_permit_without_calls", int(settings.grpc_keepalive_permit_without_calls)),
        ("grpc.http2.min_ping_interval_without_data_ms", ms(settings.grpc_min_ping_interval_s)),
        ("grpc.http2.max_ping_strikes", settings.grpc_max_ping_strikes),
        ("grpc.http2.max_pings_without_data", 0),  # keep pinging a quiet connection
    ]


def add_inference_service(frontend: GrpcFrontend, server: grpc.aio.Server) -> None:
    """Register GRPCInferenceService as the generated code does, except that every RPC takes
    its request as bytes, parsed once in the handler: ModelInfer and ModelStreamInfer parse
    their own (a failure is observed, and answered with the request's id), the others through
    ``grpc_status.parsing``. A body that is not the RPC's request is then INVALID_ARGUMENT
    naming it (grpcio's own deserializer answers UNKNOWN and logs a traceback)."""
    methods: dict[str, grpc.RpcMethodHandler] = {}
    for method in pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods:
        rpc = getattr(frontend, method.name)
        serialize = message_factory.GetMessageClass(method.output_type).SerializeToString
        if method.client_streaming:  # ModelStreamInfer, the one streaming RPC
            methods[method.name] = grpc.stream_stream_rpc_method_handler(
                rpc, response_serializer=serialize
            )
            continue
        if method.name != "ModelInfer":
            rpc = parsing(rpc, message_factory.GetMessageClass(method.input_type))
        methods[method.name] = grpc.unary_unary_rpc_method_handler(
            rpc, response_serializer=serialize
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, methods),))
    server.add_registered_method_handlers(_SERVICE, methods)


async def build_grpc_server(
    gateway: Gateway, address: str, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """A started gRPC server on ``address`` with the inference, health and reflection services;
    past ``grpc_max_concurrent_rpcs`` calls at once, a new one is answered RESOURCE_EXHAUSTED.
    With ``credentials`` (``ServerTls.grpc_credentials``) the port is TLS.

    Returns the server, its port and the health servicer (set NOT_SERVING when draining).
    """
    settings = gateway.config.server
    server = grpc.aio.server(
        options=server_options(settings),
        maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
    )
    add_inference_service(GrpcFrontend(gateway), server)
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    reflection.enable_server_reflection(
        (_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    await server.start()
    for service in ("", _SERVICE):
        await checker.set(service, health_pb2.HealthCheckResponse.SERVING)
    return server, port, checker
