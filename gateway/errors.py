"""One error type for every failure a caller sees, with its HTTP status and gRPC status code."""

from __future__ import annotations

import enum

import grpc

__all__ = ["Code", "InferError", "as_infer_error"]


class Code(enum.Enum):
    """Failure kinds, each with the HTTP status and gRPC code Triton uses for it."""

    INVALID_ARGUMENT = (400, grpc.StatusCode.INVALID_ARGUMENT)
    UNAUTHENTICATED = (401, grpc.StatusCode.UNAUTHENTICATED)
    PERMISSION_DENIED = (403, grpc.StatusCode.PERMISSION_DENIED)
    NOT_FOUND = (404, grpc.StatusCode.NOT_FOUND)
    PAYLOAD_TOO_LARGE = (413, grpc.StatusCode.RESOURCE_EXHAUSTED)
    RESOURCE_EXHAUSTED = (429, grpc.StatusCode.RESOURCE_EXHAUSTED)
    CANCELLED = (499, grpc.StatusCode.CANCELLED)
    INTERNAL = (500, grpc.StatusCode.INTERNAL)
    UNIMPLEMENTED = (501, grpc.StatusCode.UNIMPLEMENTED)
    UNAVAILABLE = (503, grpc.StatusCode.UNAVAILABLE)
    DEADLINE_EXCEEDED = (504, grpc.StatusCode.DEADLINE_EXCEEDED)

    @property
    def http_status(self) -> int:
        return self.value[0]

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return self.value[1]

    @property
    def reason(self) -> str:
        """The label metrics use for this failure."""
        return self.name.lower()

    @property
    def triton_reason(self) -> str:
        """Triton's failure reason for it (``nv_inference_request_failure``'s ``reason``):
        REJECTED by the scheduler (queue full, overloaded, timed out), CANCELED by the caller,
        BACKEND (a pod failed or was unreachable), OTHER (bad input, unknown model ...)."""
        return _TRITON_REASONS.get(self, "OTHER")

    @classmethod
    def from_grpc(cls, code: grpc.StatusCode) -> Code:
        """The kind for a status a pod answered with (unknown codes count as INTERNAL)."""
        return _FROM_GRPC.get(code, Code.INTERNAL)


_FROM_GRPC = {c.grpc_code: c for c in Code if c is not Code.PAYLOAD_TOO_LARGE}
_FROM_GRPC[grpc.StatusCode.UNKNOWN] = Code.INTERNAL
# A pod refusing the gateway's own credentials is the gateway's fault, never the caller's key.
_FROM_GRPC[grpc.StatusCode.UNAUTHENTICATED] = Code.INTERNAL
_FROM_GRPC[grpc.StatusCode.PERMISSION_DENIED] = Code.INTERNAL
_FROM_GRPC[grpc.StatusCode.FAILED_PRECONDITION] = Code.INVALID_ARGUMENT
_FROM_GRPC[grpc.StatusCode.OUT_OF_RANGE] = Code.INVALID_ARGUMENT


_TRITON_REASONS = {
    Code.RESOURCE_EXHAUSTED: "REJECTED",
    Code.DEADLINE_EXCEEDED: "REJECTED",
    Code.CANCELLED: "CANCELED",
    Code.INTERNAL: "BACKEND",
    Code.UNAVAILABLE: "BACKEND",
}


class InferError(Exception):
    """A failure to answer a request; ``message`` is what the caller reads."""

    def __init__(
        self,
        code: Code,
        message: str,
        *,
        retry_after_s: float | None = None,
        reason: str = "",
        unsent: bool = False,
        lost: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s
        self.reason = reason or code.reason  # the metrics' label: e.g. quota, queue_full
        self.unsent = unsent  # the request never left: no connection to its target
        self.lost = lost  # its connection broke before the answer: the target is gone

    def __repr__(self) -> str:
        return f"InferError({self.code.name}, {self.message!r})"


def as_infer_error(exc: Exception) -> InferError:
    """``exc`` as the caller's error: an InferError as it is, anything else (input that does
    not decode: a CodecError) INVALID_ARGUMENT with its message."""
    if isinstance(exc, InferError):
        return exc
    return InferError(Code.INVALID_ARGUMENT, str(exc))
