"""Errors the pod answers with, and how each maps to a gRPC status and an HTTP status."""

from __future__ import annotations

import enum

import grpc

__all__ = ["Code", "SimError"]


class Code(enum.Enum):
    """Triton's error kinds, each with its gRPC status code and HTTP status (Triton's mapping)."""

    INVALID_ARGUMENT = (grpc.StatusCode.INVALID_ARGUMENT, 400)
    NOT_FOUND = (grpc.StatusCode.NOT_FOUND, 404)
    UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, 503)
    INTERNAL = (grpc.StatusCode.INTERNAL, 500)
    CANCELLED = (grpc.StatusCode.CANCELLED, 400)
    UNIMPLEMENTED = (grpc.StatusCode.UNIMPLEMENTED, 501)  # Triton's UNSUPPORTED

    @property
    def grpc(self) -> grpc.StatusCode:
        return self.value[0]

    @property
    def http(self) -> int:
        return int(self.value[1])


class SimError(Exception):
    """A request the pod refuses or fails; ``message`` is what the client sees."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def invalid(cls, message: str) -> SimError:
        return cls(Code.INVALID_ARGUMENT, message)
