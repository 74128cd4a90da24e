"""Requests as their headers declare them: checked and capped before any tensor is decoded.

A front-end parses a request's head first (names, datatypes, shapes and byte sizes: the checks
that read no data), checks it against the model and against the per-request caps on decode work,
and only then decodes its tensors: JSON ``data`` and gRPC typed contents become raw bytes, BYTES
length prefixes are walked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import CodecError, Tensor

__all__ = ["DecodeLimits", "RequestHead", "TensorHead"]


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Per-request caps on decode work, summed over a request's inputs.

    ``max_decode_elements`` counts the elements decoded one by one: JSON data, gRPC typed
    contents and BYTES items in any encoding (raw fixed-size data is sliced, not decoded, and
    does not count). ``max_bytes_items`` counts BYTES items alone.
    """

    max_decode_elements: int
    max_bytes_items: int


@dataclass(slots=True)
class TensorHead:
    """An input as its header declares it; ``decode`` converts its data to raw bytes, at the
    cost of ``work`` elements decoded one by one, ``bytes_items`` of them BYTES items."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    decode: Callable[[], bytes] = field(repr=False, compare=False)
    work: int = 0
    bytes_items: int = 0

    def tensor(self) -> Tensor:
        return Tensor(self.name, self.datatype, self.shape, self.decode())


@dataclass(slots=True)
class RequestHead:
    """A parsed inference request whose tensors are not decoded yet."""

    inputs: list[TensorHead]
    outputs: list[RequestedOutput] | None = None  # None: every output
    id: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    def check(self, limits: DecodeLimits) -> None:
        """Raise a CodecError unless decoding fits ``limits``, naming the cap and the input that
        takes the request past it."""
        work = items = 0
        for head in self.inputs:
            work += head.work
            items += head.bytes_items
            what = f"input '{head.name}'"
            if items > limits.max_bytes_items:
                raise CodecError(
                    f"{what}: the request holds {items} BYTES items, more than the server's "
                    f"max_bytes_items {limits.max_bytes_items}"
                )
            if work > limits.max_decode_elements:
                raise CodecError(
                    f"{what}: the request holds {work} elements to decode, more than the "
                    f"server's max_decode_elements {limits.max_decode_elements}"
                )

    def decode(self) -> InferRequestBody:
        """The request with every input decoded to raw bytes (a CodecError for bad data)."""
        inputs = [head.tensor() for head in self.inputs]
        return InferRequestBody(inputs, self.outputs, self.id, self.parameters)
