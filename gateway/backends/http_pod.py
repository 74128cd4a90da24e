"""The way out to one pod over its v2 REST API with the binary tensor extension
(``backend_protocol: http``): the same calls as ``PodClient`` makes over gRPC.

A batch goes as one POST whose JSON head names the inputs with their ``binary_data_size`` and
asks for every output as binary data; the answer's tensors are sliced from its body, as over
gRPC, with no JSON numbers either way. The control calls (ready, metadata, config, statistics)
read Triton's JSON into the same protobuf messages the gRPC client returns, so the rest of the
gateway cannot tell the wires apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

import orjson
from google.protobuf import json_format

from gateway.backends.batch_call import bad_answer, split_answer
from gateway.backends.http_conn import ConnectionPool, Exchange
from gateway.backends.http_wire import HttpReply, code_of_status, request_head
from gateway.backends.pod_tls import client_context
from gateway.batching.merge import merged_inputs
from gateway.errors import Code, InferError
from gateway.tls_settings import BackendTlsSettings
from protos import grpc_service_pb2 as pb
from protos import model_config_pb2
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import CodecError, Tensor
from protos.v2_http import HEADER_LENGTH, decode_response

__all__ = ["HttpBatch", "HttpPodClient"]

Done = Callable[[Any, InferError | None], None]  # (the answer, or why none)
_BINARY = "Content-Type: application/octet-stream"
_HEADER = HEADER_LENGTH.encode("latin-1")
_NOT_KEPT = (400, 404, 501)  # a pod without the config or statistics extension


@dataclass(frozen=True, slots=True)
class HttpBatch:
    """A batch's request as it goes on the wire: the HTTP head, the JSON head, the tensors'
    bytes, in order."""

    parts: tuple[bytes, ...]


def _traced(parts: tuple[bytes, ...], traceparent: str) -> tuple[bytes, ...]:
    """The request with a ``traceparent`` header line at the end of its HTTP head."""
    head = parts[0][:-2] + b"traceparent: %s\r\n\r\n" % traceparent.encode("ascii")
    return (head, *parts[1:])


def _error_text(reply: HttpReply) -> str:
    """The pod's error message: Triton's ``{"error": "..."}``, else the body's start."""
    try:
        doc = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])
    return reply.body[:500].decode("utf-8", "replace") or f"HTTP {reply.status}"


class HttpPodClient:
    """One pod's v2 REST API on keep-alive connections (``ConnectionPool``), over TLS with
    ``tls``. ``headers``: lines added to every infer POST's head (each ending in CRLF);
    ``parameters``: a lone request's own parameters go with it (a batch never has any)."""

    def __init__(
        self,
        *,
        address: str,
        model: str,
        tls: BackendTlsSettings | None = None,
        headers: bytes = b"",
        parameters: bool = False,
    ) -> None:
        self.address = address
        self.model = model
        self._extra = headers
        self._parameters = parameters
        if tls is None:
            self._pool = ConnectionPool(address)
        else:
            context = client_context(tls)
            self._pool = ConnectionPool(address, ssl=context, server_hostname=tls.server_name)
        self._base = f"/v2/models/{quote(model, safe='')}"
        self._heads: dict[tuple[str, str], bytes] = {}  # (model, version): the POST's head start

    @property
    def connections(self) -> int:
        """Connections to the pod open now."""
        return self._pool.connections

    # -- a batch --------------------------------------------------------------------------

    def encode_batch(
        self, model: str, version: str, requests: Sequence[InferRequestBody], rows: Sequence[int]
    ) -> HttpBatch:
        """The batch of ``requests`` (``rows`` each) as one v2 REST request to ``model``."""
        inputs = merged_inputs(requests, rows)
        doc: dict[str, Any] = {
            "inputs": [
                {
                    "name": t.name,
                    "datatype": t.datatype,
                    "shape": t.shape,
                    "parameters": {"binary_data_size": len(t.data)},
                }
                for t in inputs
            ],
            "parameters": {"binary_data_output": True},
        }
        first = requests[0]
        if self._parameters and len(requests) == 1 and first.parameters:
            doc["parameters"] = {**first.parameters, "binary_data_output": True}
        if len(requests) == 1 and first.id:
            doc["id"] = first.id
        if first.outputs is not None:
            doc["outputs"] = [
                {"name": o.name, "parameters": {"binary_data": True}} for o in first.outputs
            ]
        head = orjson.dumps(doc)
        length = len(head) + sum(len(t.data) for t in inputs)
        lengths = b"%s: %d\r\nContent-Length: %d\r\n\r\n" % (_HEADER, len(head), length)
        return HttpBatch((self._post(model, version) + lengths, head, *(t.data for t in inputs)))

    def _post(self, model: str, version: str) -> bytes:
        """The start of an infer POST's head to ``model`` at ``version``, built once."""
        start = self._heads.get((model, version))
        if start is None:
            path = f"/v2/models/{quote(model, safe='')}"
            if version:
                path += f"/versions/{quote(version, safe='')}"
            lines = f"POST {path}/infer HTTP/1.1\r\nHost: {self.address}\r\n{_BINARY}\r\n"
            start = self._heads[(model, version)] = lines.encode("latin-1") + self._extra
        return start

    def decode_batch(
        self,
        reply: HttpReply,
        rows: Sequence[int],
        batched: bool,
        requested: Sequence[RequestedOutput] | None,
        address: str,
    ) -> list[list[Tensor]]:
        """Each request's outputs from the pod's answer (see ``split_answer``)."""
        try:
            outputs = decode_response(reply.body, reply.header_length).outputs
            return split_answer(outputs, rows, batched, requested)
        except CodecError as exc:
            raise bad_answer(address, exc) from None

    def begin(
        self, request: HttpBatch, timeout_s: float, done: Done, trace: str | None = None
    ) -> Exchange | None:
        """POST one batch at once when a connection is idle: ``done`` gets the answer (or the
        InferError ``infer`` would raise) from the connection's callback, no task involved.
        None when no connection is idle: ``infer`` it."""
        parts = request.parts if trace is None else _traced(request.parts, trace)
        return self._pool.send_now(parts, timeout_s, partial(self._replied, done))

    def _replied(self, done: Done, reply: HttpReply | None, error: InferError | None) -> None:
        if reply is not None and reply.status != 200:
            done(None, self._status_error(reply))
        else:
            done(reply, error)

    async def infer(
        self,
        request: HttpBatch,
        timeout_s: float,
        connect_timeout_s: float | None = None,
        trace: str | None = None,
    ) -> HttpReply:
        """POST one batch; a failure raises InferError with the pod's status (see
        ``ConnectionPool.exchange`` for the connection's)."""
        parts = request.parts if trace is None else _traced(request.parts, trace)
        reply = await self._pool.exchange(parts, timeout_s, connect_timeout_s)
        if reply.status != 200:
            raise self._status_error(reply)
        return reply

    def _status_error(self, reply: HttpReply) -> InferError:
        code = code_of_status(reply.status)
        message = _error_text(reply)
        if code in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.CANCELLED):
            message = f"pod {self.address}: {message}"
        return InferError(code, message)

    # -- the control calls ----------------------------------------------------------------

    async def _get(self, path: str, timeout_s: float) -> HttpReply:
        head = request_head("GET", path, self.address, 0)
        return await self._pool.exchange((head,), timeout_s, timeout_s)

    async def _message(self, path: str, message: Any, timeout_s: float, optional: bool) -> Any:
        reply = await self._get(path, timeout_s)
        if optional and reply.status in _NOT_KEPT:
            return None
        if reply.status != 200:
            raise InferError(code_of_status(reply.status), f"GET {path}: {_error_text(reply)}")
        try:
            return json_format.Parse(reply.body, message, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            what = message.DESCRIPTOR.name
            raise InferError(Code.INTERNAL, f"GET {path}: not a {what}: {exc}") from None

    async def model_ready(self, timeout_s: float) -> bool:
        """v2 model ready for this pod's model; False when the pod cannot be reached."""
        try:
            reply = await self._get(f"{self._base}/ready", timeout_s)
        except InferError:
            return False
        return reply.status == 200

    async def model_metadata(self, timeout_s: float) -> Any:
        """The pod's model metadata, as a ModelMetadataResponse."""
        return await self._message(self._base, pb.ModelMetadataResponse(), timeout_s, False)

    async def model_config(self, timeout_s: float) -> Any | None:
        """The pod's model config (Triton's extension), or None when it has none."""
        path = f"{self._base}/config"
        return await self._message(path, model_config_pb2.ModelConfig(), timeout_s, True)

    async def model_statistics(self, timeout_s: float) -> Any | None:
        """The pod's statistics of this model; None when it does not keep them."""
        path = f"{self._base}/stats"
        reply = await self._message(path, pb.ModelStatisticsResponse(), timeout_s, True)
        return reply.model_stats[0] if reply is not None and reply.model_stats else None

    async def reconnected(self) -> None:
        """Return once the pod is reached on a new connection after losing them all."""
        await self._pool.reconnected()

    async def close(self) -> None:
        await self._pool.close()
