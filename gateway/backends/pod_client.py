"""The way out to one pod: a persistent gRPC channel speaking v2 ModelInfer with raw contents."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc

from gateway.backends.batch_call import answer_of
from gateway.backends.pod_tls import channel_credentials
from gateway.backends.stream_call import PodStream
from gateway.batching.merge import merge_requests
from gateway.errors import Code, InferError
from gateway.tls_settings import BackendTlsSettings
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import Tensor

__all__ = ["PodClient", "pod_error"]

_INT32_MAX = 2**31 - 1
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", _INT32_MAX),
    ("grpc.max_receive_message_length", _INT32_MAX),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]


def pod_error(exc: grpc.aio.AioRpcError, address: str) -> InferError:
    """A pod's gRPC failure as the caller's error: its status passed on, its message kept."""
    code = Code.from_grpc(exc.code())
    detail = exc.details() or exc.code().name
    if code in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.CANCELLED):
        return InferError(code, f"pod {address}: {detail}")
    return InferError(code, detail)


class PodClient:
    """One pod: a channel opened once and kept (over TLS with ``tls``), and the v2 calls the
    gateway makes on it."""

    def __init__(self, *, address: str, model: str, tls: BackendTlsSettings | None = None) -> None:
        self.address = address
        self.model = model
        if tls is None:
            self._channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
        else:
            credentials, named = channel_credentials(tls)
            options = _CHANNEL_OPTIONS + named
            self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)

    def encode_batch(
        self, model: str, version: str, requests: Sequence[InferRequestBody], rows: Sequence[int]
    ) -> Any:
        """The batch of ``requests`` (``rows`` each) as one ModelInferRequest to ``model``."""
        return merge_requests(model, version, requests, rows)

    def decode_batch(
        self,
        reply: Any,
        rows: Sequence[int],
        batched: bool,
        requested: Sequence[RequestedOutput] | None,
        address: str,
    ) -> list[list[Tensor]]:
        """Each request's outputs from the pod's ModelInferResponse (see ``answer_of``)."""
        return answer_of(reply, rows, batched, requested, address)

    def begin(self, request: Any, timeout_s: float, done: Any, trace: str | None = None) -> None:
        """Over gRPC a call is always awaited (``infer``): nothing is begun here."""
        return None

    async def infer(
        self,
        request: Any,
        timeout_s: float,
        connect_timeout_s: float | None = None,
        trace: str | None = None,
    ) -> Any:
        """Send one ModelInferRequest; a pod failure raises InferError with the pod's status.

        ``timeout_s`` bounds the call. A channel not yet connected gets ``connect_timeout_s``
        (within ``timeout_s``) to connect, else UNAVAILABLE: the batch was never sent, so it
        may go to another pod. A channel in TRANSIENT_FAILURE fails at once (UNAVAILABLE).
        """
        if connect_timeout_s is not None:
            await self._connected(min(connect_timeout_s, timeout_s))
        try:
            metadata = None if trace is None else (("traceparent", trace),)
            return await self._stub.ModelInfer(request, timeout=timeout_s, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise pod_error(exc, self.address) from None

    async def stream_infer(
        self, request: Any, timeout_s: float, connect_timeout_s: float, trace: str | None = None
    ) -> PodStream:
        """Open a ModelStreamInfer call carrying ``request`` alone (a decoupled model's; see
        ``gateway.backends.stream_call``), once the channel is connected (UNAVAILABLE within
        ``connect_timeout_s`` else: nothing was sent); ``timeout_s`` bounds the whole call."""
        await self._connected(min(connect_timeout_s, timeout_s))
        metadata = None if trace is None else (("traceparent", trace),)
        call = self._stub.ModelStreamInfer(iter((request,)), timeout=timeout_s, metadata=metadata)
        return PodStream(call, self.address)

    async def _connected(self, timeout_s: float) -> None:
        """Wait, up to ``timeout_s``, for the channel to be READY; UNAVAILABLE as soon as a
        connection attempt fails (or when the time is up)."""
        ready, failed = grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        state = self._channel.get_state(try_to_connect=True)
        while state is not ready:
            if state in (failed, grpc.ChannelConnectivity.SHUTDOWN):
                raise InferError(Code.UNAVAILABLE, f"pod {self.address}: cannot connect")
            try:
                await asyncio.wait_for(
                    self._channel.wait_for_state_change(state), max(0.0, end - loop.time())
                )
            except TimeoutError:
                raise InferError(
                    Code.UNAVAILABLE, f"pod {self.address}: not connected within {timeout_s:.3f} s"
                ) from None
            state = self._channel.get_state()

    async def reconnected(self) -> None:
        """Return once the channel has lost its connection and made a new one: the pod may have
        restarted (with another model), however briefly it was gone. While the channel is idle
        it is asked to connect, so a restart is seen with no call in flight."""
        channel, ready = self._channel, grpc.ChannelConnectivity.READY
        state = channel.get_state(try_to_connect=True)
        was_ready = state is ready
        while True:
            await channel.wait_for_state_change(state)
            state = channel.get_state()
            if state is grpc.ChannelConnectivity.SHUTDOWN:
                await asyncio.Event().wait()  # closed: never again (the watcher is cancelled)
            if state is ready and was_ready:
                return  # every change out of READY that ends in READY is a new connection
            if state is grpc.ChannelConnectivity.IDLE:
                state = channel.get_state(try_to_connect=True)
            was_ready = was_ready or state is ready

    async def model_ready(self, timeout_s: float) -> bool:
        """ModelReady for this pod's model; False when the pod cannot be reached."""
        try:
            reply = await self._stub.ModelReady(
                pb.ModelReadyRequest(name=self.model), timeout=timeout_s
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.ready)

    async def model_config(self, timeout_s: float) -> Any | None:
        """The pod's ModelConfig, or None when it does not implement the Triton extension."""
        try:
            reply = await self._stub.ModelConfig(
                pb.ModelConfigRequest(name=self.model), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND):
                return None
            raise
        return reply.config if reply.HasField("config") else None

    async def model_statistics(self, timeout_s: float) -> Any | None:
        """The pod's ModelStatistics of this model; None when it does not keep them."""
        try:
            reply = await self._stub.ModelStatistics(
                pb.ModelStatisticsRequest(name=self.model), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND):
                return None
            raise
        return reply.model_stats[0] if reply.model_stats else None

    async def model_metadata(self, timeout_s: float) -> Any:
        """The pod's ModelMetadata."""
        return await self._stub.ModelMetadata(
            pb.ModelMetadataRequest(name=self.model), timeout=timeout_s
        )

    async def close(self) -> None:
        await self._channel.close()
