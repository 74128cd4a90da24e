"""What the gateway asks of a pod, whatever the wire: the ``PodBackend`` contract, and the
client for a model's ``backend_protocol``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

from gateway.backends.http_pod import HttpPodClient
from gateway.backends.pod_client import PodClient
from gateway.errors import InferError
from gateway.tls_settings import BackendTlsSettings
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import Tensor

__all__ = [
    "BACKEND_PROTOCOLS",
    "Cancellable",
    "ClientFactory",
    "Done",
    "PodBackend",
    "client_factory",
    "grpc_client",
    "http_client",
]


class Cancellable(Protocol):
    """A call begun with ``PodBackend.begin``."""

    def cancel(self) -> None: ...


Done = Callable[[Any, InferError | None], None]  # (the answer, or why there is none)


class PodBackend(Protocol):
    """One pod of one model (``address``; ``model``: its name on the pod).

    A batch goes out in three steps: ``encode_batch`` builds the wire request, ``infer`` sends
    it (a failure raises ``InferError`` with the pod's status: UNAVAILABLE when the batch
    never reached the pod or its connection broke, DEADLINE_EXCEEDED when ``timeout_s``
    passed), ``decode_batch`` splits the answer per request (INTERNAL naming the pod for an
    answer that does not fit the batch). ``begin`` may send at once instead of ``infer``, with
    no task: ``done(answer, None)`` or ``done(None, error)`` is called when it ends, unless
    the call is cancelled first; None when it cannot (then ``infer``). ``trace``, when given,
    is the batch span's W3C ``traceparent``, sent with the call. The control calls:
    ``model_ready`` (False when the
    pod cannot be reached), ``model_metadata``, ``model_config`` and ``model_statistics``
    (None when the pod does not have them), ``reconnected`` (returns when the pod is reached
    on a new connection after losing it: it may have restarted).
    """

    @property
    def address(self) -> str: ...
    @property
    def model(self) -> str: ...

    def encode_batch(
        self, model: str, version: str, requests: Sequence[InferRequestBody], rows: Sequence[int]
    ) -> Any: ...
    def decode_batch(
        self,
        reply: Any,
        rows: Sequence[int],
        batched: bool,
        requested: Sequence[RequestedOutput] | None,
        address: str,
    ) -> list[list[Tensor]]: ...
    def begin(
        self, request: Any, timeout_s: float, done: Done, trace: str | None = None
    ) -> Cancellable | None: ...
    async def infer(
        self,
        request: Any,
        timeout_s: float,
        connect_timeout_s: float | None = None,
        trace: str | None = None,
    ) -> Any: ...
    async def model_ready(self, timeout_s: float) -> bool: ...
    async def model_metadata(self, timeout_s: float) -> Any: ...
    async def model_config(self, timeout_s: float) -> Any | None: ...
    async def model_statistics(self, timeout_s: float) -> Any | None: ...
    async def reconnected(self) -> None: ...
    async def close(self) -> None: ...


ClientFactory = Callable[[str, str], PodBackend]  # (address, model)
BACKEND_PROTOCOLS = ("grpc", "http")


def grpc_client(address: str, model: str, tls: BackendTlsSettings | None = None) -> PodBackend:
    return PodClient(address=address, model=model, tls=tls)


def http_client(address: str, model: str, tls: BackendTlsSettings | None = None) -> PodBackend:
    return HttpPodClient(address=address, model=model, tls=tls)


def client_factory(protocol: str, tls: BackendTlsSettings | None = None) -> ClientFactory:
    """The pod client for ``backend_protocol``: ``grpc`` (v2 gRPC) or ``http`` (v2 REST with
    binary tensors); over TLS with ``tls`` (the model's ``backend_tls``)."""
    factories = {"grpc": grpc_client, "http": http_client}
    if protocol not in factories:
        raise ValueError(f"backend_protocol must be one of {BACKEND_PROTOCOLS}, got {protocol!r}")
    return factories[protocol] if tls is None else partial(factories[protocol], tls=tls)
