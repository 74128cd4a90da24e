"""Load-generator clients: one interface, ``await client.infer()``, over any wire.

A client sends the same pre-encoded ``sim`` request every time (so the generator spends as
little as possible per request), raises ``InferError`` on any failure, and checks the answer
(twice the input) on a sample of responses. ``open_client(spec)`` builds one from a picklable
``ClientSpec``, so worker processes can build their own.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Protocol

from loadtest.clients.payload import AnswerError, SimPayload
from protos.infer import InferResponseBody
from protos.tensors import CodecError

__all__ = [
    "CLIENT_KINDS",
    "STANDARD_KINDS",
    "ClientSpec",
    "InferClient",
    "InferError",
    "SampledClient",
    "Sampler",
    "error_kind",
    "is_grpc",
    "open_client",
]

CLIENT_KINDS = ("http-json", "http-binary", "grpc", "grpc-stream")
STANDARD_KINDS = ("http-json", "http-binary", "grpc")  # what the benchmarks run by default
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)


def is_grpc(kind: str) -> bool:
    """Whether ``kind`` speaks gRPC (its target is ``host:port``, not a URL)."""
    return kind.startswith("grpc")


class InferError(Exception):
    """A failed request; ``kind`` is a short label reports count errors by."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def error_kind(exc: BaseException) -> str:
    """The label an error is counted under."""
    if isinstance(exc, InferError):
        return exc.kind
    if isinstance(exc, AnswerError):
        return "wrong answer"
    if isinstance(exc, CodecError):
        return "undecodable response"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """What a client sends and where.

    ``target`` is a base URL (``http://host:port``) for the HTTP kinds and ``host:port`` for gRPC.
    ``verify_every`` checks one answer in N (the first one always); 0 checks none.
    ``headers`` go with every request: as HTTP headers, or as gRPC metadata (keys lower-cased,
    as gRPC requires), e.g. ``(("Authorization", "Bearer KEY"),)``.
    """

    kind: str
    target: str
    payload: SimPayload = field(default_factory=SimPayload)
    verify_every: int = 16
    timeout_s: float = 30.0
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in CLIENT_KINDS:
            raise ValueError(f"unknown client kind '{self.kind}'; expected one of {CLIENT_KINDS}")
        if self.verify_every < 0:
            raise ValueError("verify_every must be >= 0")
        for name, value in self.headers:
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"header name {name!r} is not an HTTP token")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {name!r} has a line break or NUL in its value")

    def grpc_metadata(self) -> tuple[tuple[str, str], ...] | None:
        """``headers`` as gRPC metadata (lower-case keys); None when there are none."""
        return tuple((name.lower(), value) for name, value in self.headers) or None


class Sampler:
    """Decides which responses to check: the first, then one in ``every`` (never when 0)."""

    def __init__(self, every: int) -> None:
        self._every = every
        self._n = 0
        self.verified = 0

    def due(self) -> bool:
        n, self._n = self._n, self._n + 1
        return self._every > 0 and n % self._every == 0


class SampledClient:
    """What the clients share: the payload, and a sample of the answers checked against it."""

    def __init__(self, spec: ClientSpec) -> None:
        self._payload = spec.payload
        self._sampler = Sampler(spec.verify_every)

    @property
    def verified(self) -> int:
        """Responses checked (and found right) so far."""
        return self._sampler.verified

    def _verify(self, response: InferResponseBody) -> None:
        """Check ``response`` against the payload (raising when wrong) and count it."""
        self._payload.check(response)
        self._sampler.verified += 1


class InferClient(Protocol):
    """What a generator needs from a client."""

    @property
    def verified(self) -> int:
        """Responses checked (and found right) so far."""
        ...

    async def infer(self) -> None:
        """Send one request; raise on any error, including a wrong answer."""
        ...

    async def aclose(self) -> None: ...


def open_client(spec: ClientSpec) -> InferClient:
    """A client for ``spec``; call it inside the event loop that will use it."""
    if spec.kind == "grpc":
        from loadtest.clients.grpc_unary import GrpcClient

        return GrpcClient(spec)
    if spec.kind == "grpc-stream":
        from loadtest.clients.grpc_stream import GrpcStreamClient

        return GrpcStreamClient(spec)
    from loadtest.clients.aiohttp_http import HttpClient

    return HttpClient(spec, binary=spec.kind == "http-binary")
