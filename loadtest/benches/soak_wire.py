"""The soak's odd requests on the wire: bad requests, and clients that leave mid-request.

Each HTTP one goes on a connection of its own (opened, used once, closed), as a misbehaving
client's would; the gRPC ones share one channel of their own, each its own call (or stream).
A bad request gives the kind of error its answer was (``http 400``, ``grpc INVALID_ARGUMENT``
...; None for a success); a disconnect sends a good request, waits ``cut_s`` and leaves: it
closes the connection or cancels the call (or stream), unless the answer came first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import urlsplit

import grpc
import numpy as np

from loadtest.benches.soak_mix import Lane
from loadtest.clients.base import error_kind
from loadtest.clients.grpc_stream import MODEL_STREAM_INFER, with_id
from loadtest.clients.grpc_unary import CHANNEL_OPTIONS, MODEL_INFER
from loadtest.clients.payload import SimPayload
from loadtest.clients.raw_http import build_request, parse_head
from protos.infer import InferRequestBody
from protos.tensors import from_numpy
from protos.v2_grpc import encode_request as grpc_request
from protos.v2_http import encode_request as http_request

__all__ = ["UNKNOWN_INPUT", "OddRequests", "bad_request"]

UNKNOWN_INPUT = "NO_SUCH_INPUT"


def bad_request(variant: str, payload: SimPayload) -> InferRequestBody:
    """The request of a bad ``variant`` (``unknown-input``, ``wrong-datatype``): ``payload``'s,
    with an input name the model lacks, or INT32 data where it takes FP32."""
    if variant == "unknown-input":
        return replace(payload, input_name=UNKNOWN_INPUT).request()
    if variant == "wrong-datatype":
        data = payload.array().astype(np.int32)
        return InferRequestBody([from_numpy(payload.input_name, "INT32", data)])
    raise ValueError(f"no request body for bad variant {variant!r}")


def _http_body(variant: str, payload: SimPayload) -> bytes:
    """A bad variant's JSON body; ``malformed-json`` is the good body cut in half."""
    if variant == "malformed-json":
        body, _ = http_request(payload.request(), False)
        return body[: len(body) // 2]
    body, _ = http_request(bad_request(variant, payload), False)
    return body


class OddRequests:
    """Sends the bad requests and the disconnects of one generator process.

    ``http_url`` is the HTTP base URL and ``grpc_target`` the gRPC ``host:port`` (None when the
    mix has no lane on that wire); every wait is bounded by ``timeout_s``.
    """

    def __init__(
        self,
        http_url: str | None,
        grpc_target: str | None,
        payload: SimPayload,
        timeout_s: float,
    ) -> None:
        self._timeout = timeout_s
        self._http: dict[str, bytes] = {}
        self._grpc: dict[str, bytes] = {}
        self._host, self._port = "", 0
        if http_url is not None:
            url = urlsplit(http_url)
            if url.hostname is None:
                raise ValueError(f"not an http://host:port URL: {http_url}")
            self._host, self._port = url.hostname, url.port or 80
            path = f"{url.path.rstrip('/')}/v2/models/{payload.model}/infer"
            host = f"{self._host}:{self._port}"
            good, _ = http_request(payload.request(), False)
            self._http["good"] = build_request(host, path, good, None)
            for variant in ("unknown-input", "wrong-datatype", "malformed-json"):
                self._http[variant] = build_request(host, path, _http_body(variant, payload), None)
        self._channel: grpc.aio.Channel | None = None
        if grpc_target is not None:
            self._channel = grpc.aio.insecure_channel(grpc_target, options=CHANNEL_OPTIONS)
            self._unary = self._channel.unary_unary(MODEL_INFER)
            self._stream = self._channel.stream_stream(MODEL_STREAM_INFER)
            model = payload.model
            self._grpc["good"] = grpc_request(model, payload.request()).SerializeToString()
            for variant in ("unknown-input", "wrong-datatype"):
                body = grpc_request(model, bad_request(variant, payload))
                self._grpc[variant] = body.SerializeToString()

    async def bad(self, lane: Lane) -> str | None:
        """Send bad ``lane``'s request; the kind of error it was answered with (None: 200/OK).
        A request with no answer gives the kind of that failure (``timeout`` ...)."""
        try:
            if lane.wire.startswith("grpc"):
                try:
                    await self._unary(self._grpc[lane.variant], timeout=self._timeout)
                except grpc.aio.AioRpcError as exc:
                    return f"grpc {exc.code().name}"
                return None
            status = await asyncio.wait_for(self._exchange(self._http[lane.variant]), self._timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            return f"http {type(exc).__name__}"
        except TimeoutError as exc:
            return error_kind(exc)
        return None if status == 200 else f"http {status}"

    async def _exchange(self, request: bytes) -> int:
        """One request on a fresh connection, its whole answer read; the answer's status."""
        reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, _, _ = parse_head(head[:-4])
            await reader.readexactly(length)
            return status
        finally:
            writer.close()

    async def disconnect(self, lane: Lane, cut_s: float) -> str:
        """Send a good request on ``lane``'s wire and leave after ``cut_s``: ``cut``, or
        ``answered_first`` when its answer beat the cut, or ``error`` if it could not send."""
        try:
            if lane.wire == "grpc":
                return await self._cut_unary(cut_s)
            if lane.wire == "grpc-stream":
                return await self._cut_stream(cut_s)
            return await asyncio.wait_for(self._cut_http(cut_s), self._timeout + cut_s)
        except (OSError, TimeoutError, grpc.aio.AioRpcError):
            return "error"

    async def _cut_http(self, cut_s: float) -> str:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            writer.write(self._http["good"])
            await writer.drain()
            try:
                first = await asyncio.wait_for(reader.read(1), cut_s)
            except TimeoutError:
                return "cut"
            return "answered_first" if first else "error"  # b"": the server closed first
        finally:
            writer.close()

    async def _cut_unary(self, cut_s: float) -> str:
        call = self._unary(self._grpc["good"], timeout=self._timeout)
        await asyncio.sleep(cut_s)
        if call.done():
            return "answered_first"
        call.cancel()
        return "cut"

    async def _cut_stream(self, cut_s: float) -> str:
        body = with_id(self._grpc["good"], "cut")

        async def one_then_hold() -> AsyncIterator[bytes]:
            yield body
            await asyncio.Event().wait()  # never half-closes: the cancel ends it

        call = self._stream(one_then_hold())
        try:
            await asyncio.wait_for(call.read(), cut_s)
        except TimeoutError:
            return "cut"  # the wait's cancel of the read has cancelled the call
        finally:
            call.cancel()
        return "answered_first"

    async def aclose(self) -> None:
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
