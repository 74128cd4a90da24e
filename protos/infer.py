"""Inference requests and responses as decoded from either wire (HTTP/JSON+binary or gRPC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protos.tensors import Tensor

__all__ = ["InferRequestBody", "InferResponseBody", "RequestedOutput"]


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """An output the caller asked for; ``binary`` is None when the caller left it to defaults."""

    name: str
    binary: bool | None = None


@dataclass(slots=True)
class InferRequestBody:
    """A decoded v2 inference request: tensors as raw bytes, parameters as plain values."""

    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None = None  # None: every output
    id: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class InferResponseBody:
    """A decoded v2 inference response."""

    model_name: str
    outputs: list[Tensor]
    model_version: str = ""
    id: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
