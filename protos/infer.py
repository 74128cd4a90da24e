"""Inference requests and responses as decoded from either wire (HTTP/JSON+binary or gRPC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protos.tensors import CodecError, Tensor

__all__ = ["InferRequestBody", "InferResponseBody", "RequestedOutput", "requested_output"]


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """An output the caller asked for; ``binary`` is None when the caller left it to defaults."""

    name: str
    binary: bool | None = None
    classification: int = 0  # Triton's classification extension: the top N classes (0: off)


def requested_output(
    name: str, parameters: dict[str, Any], what: str, binary: bool | None = None
) -> RequestedOutput:
    """An output request of either wire, its ``classification`` parameter checked."""
    count = parameters.get("classification", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise CodecError(f"{what}.parameters.classification must be a non-negative integer")
    return RequestedOutput(name, binary, count)


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
