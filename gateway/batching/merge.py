"""Requests into one batch and the batch's answer back into per-request answers: bytes only.

Batching along dim 0 is concatenation of each input's raw bytes (BYTES elements are
length-prefixed, so their concatenation is the batch's data too); splitting is slicing by row
counts. Inputs are ordered by name so requests listing them in any order batch together.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable, Sequence
from typing import Any

from protos import grpc_service_pb2 as pb
from protos.infer import InferRequestBody
from protos.tensors import CodecError, Tensor, element_count

__all__ = ["batch_key", "merge_requests", "merged_inputs", "split_response"]

_LEN = struct.Struct("<I")


def batch_key(request: InferRequestBody, batching: bool) -> Hashable:
    """Requests batch together only when their keys are equal: same input names, datatypes and
    non-batch dims, same requested outputs. Without batching every request is its own batch."""
    if not batching:
        return object()
    inputs = tuple(sorted((t.name, t.datatype, t.shape[1:]) for t in request.inputs))
    outputs = None if request.outputs is None else tuple(sorted(o.name for o in request.outputs))
    return inputs, outputs


def merged_inputs(requests: Sequence[InferRequestBody], rows: Sequence[int]) -> list[Tensor]:
    """The batch's inputs: a lone request's as they are, else each input's data concatenated
    over the requests (in order), dim 0 their rows, inputs ordered by name."""
    if len(requests) == 1:
        return requests[0].inputs
    total = sum(rows)
    by_name = [{t.name: t for t in r.inputs} for r in requests]
    first = by_name[0]
    return [
        Tensor(
            name,
            first[name].datatype,
            (total, *first[name].shape[1:]),
            b"".join(r[name].data for r in by_name),
        )
        for name in sorted(first)
    ]


def merge_requests(
    model: str, version: str, requests: Sequence[InferRequestBody], rows: Sequence[int]
) -> Any:
    """One ModelInferRequest whose dim 0 is the requests' rows, in order."""
    first = requests[0]
    msg = pb.ModelInferRequest(model_name=model, model_version=version)
    if len(requests) == 1:
        msg.id = first.id
    inputs = merged_inputs(requests, rows)
    for t in inputs:
        msg.inputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
    msg.raw_input_contents.extend(t.data for t in inputs)
    if first.outputs is not None:
        for wanted in first.outputs:
            msg.outputs.add(name=wanted.name)
    return msg


def _bytes_offsets(data: bytes, per_row: int, rows: Sequence[int]) -> list[int]:
    """Byte offsets where each request's BYTES elements start and the last one ends."""
    offsets = [0]
    pos = 0
    view = memoryview(data)
    for n in rows:
        for _ in range(n * per_row):
            if pos + 4 > len(view):
                raise CodecError("BYTES output ends inside an element's length prefix")
            pos += 4 + _LEN.unpack_from(view, pos)[0]
        offsets.append(pos)
    if pos != len(view):
        raise CodecError("BYTES output has more elements than its shape")
    return offsets


def split_response(
    outputs: Sequence[Tensor], rows: Sequence[int], batched: bool = True
) -> list[list[Tensor]]:
    """Each request's outputs, sliced from the batch's outputs by its rows.

    Every output of a model that batches must have the batch's rows as dim 0, else a
    CodecError names it; a lone request of a model that does not batch gets them as they are.
    """
    total = sum(rows)
    for out in outputs:
        if batched and (not out.shape or out.shape[0] != total):
            raise CodecError(
                f"output '{out.name}' has shape {list(out.shape)}, the batch has {total} rows"
            )
    if len(rows) == 1:
        return [list(outputs)]
    per_request: list[list[Tensor]] = [[] for _ in rows]
    for out in outputs:
        shape, data = out.shape, out.data
        per_row = element_count(shape[1:])
        if out.datatype == "BYTES":
            offsets = _bytes_offsets(data, per_row, rows)
        else:
            if len(data) % total:
                raise CodecError(f"output '{out.name}' bytes do not divide into {total} rows")
            row_bytes = len(data) // total
            offsets = [0]
            for n in rows:
                offsets.append(offsets[-1] + n * row_bytes)
        for i, n in enumerate(rows):
            piece = data[offsets[i] : offsets[i + 1]]
            per_request[i].append(Tensor(out.name, out.datatype, (n, *shape[1:]), piece))
    return per_request
