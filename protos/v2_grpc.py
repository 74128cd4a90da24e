"""The v2 gRPC inference messages to and from decoded requests and responses (raw contents)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from google.protobuf.message import DecodeError, Message

from protos import grpc_service_pb2 as pb
from protos.heads import RequestHead, TensorHead
from protos.infer import InferRequestBody, InferResponseBody, requested_output
from protos.tensors import (
    CodecError,
    DataType,
    check_bytes_count,
    check_bytes_room,
    check_contents,
    contents_to_raw,
    datatype,
    element_count,
)

__all__ = [
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "message_from_bytes",
    "params_from_proto",
    "params_to_proto",
    "parse_request",
    "request_from_bytes",
]


def params_from_proto(params: Any) -> dict[str, Any]:
    """A map<string, InferParameter> as plain Python values."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        choice = value.WhichOneof("parameter_choice")
        out[key] = None if choice is None else getattr(value, choice)
    return out


def params_to_proto(target: Any, params: dict[str, Any]) -> None:
    """Fill a map<string, InferParameter> from plain Python values."""
    for key, value in params.items():
        slot = target[key]
        if isinstance(value, bool):
            slot.bool_param = value
        elif isinstance(value, int):
            if value >= 2**63:
                slot.uint64_param = value
            else:
                slot.int64_param = value
        elif isinstance(value, float):
            slot.double_param = value
        else:
            slot.string_param = str(value)


def _heads(specs: Any, raw: Any, kind: str, what_raw: str, model: str = "") -> list[TensorHead]:
    """Each tensor's head, checked as far as it can be without decoding its data."""
    if raw and len(raw) != len(specs):
        raise CodecError(f"{what_raw} has {len(raw)} entries for {len(specs)} {kind}s")
    out: list[TensorHead] = []
    for i, spec in enumerate(specs):
        if not spec.name:
            raise CodecError(f"{kind}s[{i}].name must be a non-empty string")
        what = f"{kind} '{spec.name}'"
        dt = datatype(spec.datatype, what)
        if any(d < 0 for d in spec.shape):
            raise CodecError(f"{what}: shape must be non-negative, got {list(spec.shape)}")
        shape = tuple(spec.shape)
        if raw and spec.HasField("contents"):  # Triton refuses both, with this message
            raise CodecError(
                f"contents field must not be specified when using {what_raw} for {what}"
                + (f" for model '{model}'" if model else "")
            )
        data = raw[i] if raw else None
        decode, work = _decoder(dt, shape, data, spec, what)
        if decode is None:
            raise CodecError(f"{what} has no data: set {what_raw} or contents")
        items = element_count(shape) if dt.is_bytes else 0
        out.append(TensorHead(spec.name, dt.name, shape, decode, work, items))
    return out


def _decoder(
    dt: DataType, shape: tuple[int, ...], raw: bytes | None, spec: Any, what: str
) -> tuple[Callable[[], bytes] | None, int]:
    """How to decode one tensor's data (raw, typed contents, or nothing for no elements), its
    sizes checked, and the elements that decoding works through one by one; None for a tensor
    with elements and no data."""
    count = element_count(shape)
    if raw is not None:
        if dt.is_bytes:
            check_bytes_room(len(raw), count, what)
            return partial(_bytes_data, raw, count, what), count
        if len(raw) != count * dt.itemsize:
            raise CodecError(
                f"{what}: raw data is {len(raw)} bytes, shape {list(shape)} of {dt.name} "
                f"needs {count * dt.itemsize}"
            )
        return partial(bytes, raw), 0
    if spec.HasField("contents"):
        check_contents(dt, spec.contents, count, what)
        return partial(contents_to_raw, dt, spec.contents, count, what), count
    return (bytes if count == 0 else None), 0


def _bytes_data(data: bytes, count: int, what: str) -> bytes:
    check_bytes_count(data, count, what)
    return data


def message_from_bytes(raw: bytes, message_type: type[Message]) -> Any:
    """A ``message_type`` message from its wire bytes, or a CodecError naming the type and
    saying why they are not one."""
    try:
        return message_type.FromString(raw)
    except DecodeError as exc:  # "Error parsing message with type '…': <the reason>"
        reason = str(exc).rpartition(": ")[2] or "not protobuf"
        name = message_type.DESCRIPTOR.name
        raise CodecError(f"the message does not parse as a {name}: {reason}") from None


def request_from_bytes(raw: bytes) -> Any:
    """A ModelInferRequest from its wire bytes, or a CodecError saying they are not one."""
    return message_from_bytes(raw, pb.ModelInferRequest)


def parse_request(msg: Any) -> RequestHead:
    """A ModelInferRequest's head: the checks that read no data, no tensor decoded."""
    if not msg.inputs:
        raise CodecError("the request has no inputs")
    raw = msg.raw_input_contents
    inputs = _heads(msg.inputs, raw, "input", "raw_input_contents", msg.model_name)
    outputs = [
        requested_output(o.name, params_from_proto(o.parameters), f"outputs[{i}]")
        for i, o in enumerate(msg.outputs)
    ] or None
    return RequestHead(inputs, outputs, msg.id, params_from_proto(msg.parameters))


def decode_request(msg: Any) -> InferRequestBody:
    """A ModelInferRequest as a decoded request (typed contents converted to raw once)."""
    return parse_request(msg).decode()


def encode_response(response: InferResponseBody) -> Any:
    """A ModelInferResponse with every output in raw_output_contents."""
    msg = pb.ModelInferResponse(
        model_name=response.model_name, model_version=response.model_version, id=response.id
    )
    for tensor in response.outputs:
        msg.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
    msg.raw_output_contents.extend(t.data for t in response.outputs)
    if response.parameters:
        params_to_proto(msg.parameters, response.parameters)
    return msg


def encode_request(model: str, request: InferRequestBody, version: str = "") -> Any:
    """A ModelInferRequest with every input in raw_input_contents."""
    msg = pb.ModelInferRequest(model_name=model, model_version=version, id=request.id)
    for tensor in request.inputs:
        msg.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
    msg.raw_input_contents.extend(t.data for t in request.inputs)
    if request.outputs is not None:
        for wanted in request.outputs:
            msg.outputs.add(name=wanted.name)
    if request.parameters:
        params_to_proto(msg.parameters, request.parameters)
    return msg


def decode_response(msg: Any) -> InferResponseBody:
    """A ModelInferResponse (raw or typed contents) as a decoded response."""
    heads = _heads(msg.outputs, msg.raw_output_contents, "output", "raw_output_contents")
    return InferResponseBody(
        msg.model_name,
        [head.tensor() for head in heads],
        msg.model_version,
        msg.id,
        params_from_proto(msg.parameters),
    )
