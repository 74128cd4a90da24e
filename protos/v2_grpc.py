"""The v2 gRPC inference messages to and from decoded requests and responses (raw contents)."""

from __future__ import annotations

from typing import Any

from protos import grpc_service_pb2 as pb
from protos.infer import InferRequestBody, InferResponseBody, RequestedOutput
from protos.tensors import (
    CodecError,
    Tensor,
    check_bytes_count,
    contents_to_raw,
    datatype,
    element_count,
)

__all__ = [
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "params_from_proto",
    "params_to_proto",
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


def _tensors(specs: Any, raw: Any, kind: str, what_raw: str) -> list[Tensor]:
    if raw and len(raw) != len(specs):
        raise CodecError(f"{what_raw} has {len(raw)} entries for {len(specs)} {kind}s")
    out: list[Tensor] = []
    for i, spec in enumerate(specs):
        if not spec.name:
            raise CodecError(f"{kind}s[{i}].name must be a non-empty string")
        what = f"{kind} '{spec.name}'"
        dt = datatype(spec.datatype, what)
        if any(d < 0 for d in spec.shape):
            raise CodecError(f"{what}: shape must be non-negative, got {list(spec.shape)}")
        shape = tuple(spec.shape)
        count = element_count(shape)
        if raw:
            data = raw[i]
            if dt.is_bytes:
                check_bytes_count(data, count, what)
            elif len(data) != count * dt.itemsize:
                raise CodecError(
                    f"{what}: raw data is {len(data)} bytes, shape {list(shape)} of {dt.name} "
                    f"needs {count * dt.itemsize}"
                )
        elif spec.HasField("contents"):
            data = contents_to_raw(dt, spec.contents, count, what)
        elif count == 0:
            data = b""
        else:
            raise CodecError(f"{what} has no data: set {what_raw} or contents")
        out.append(Tensor(spec.name, dt.name, shape, data))
    return out


def decode_request(msg: Any) -> InferRequestBody:
    """A ModelInferRequest as a decoded request (typed contents converted to raw once)."""
    if not msg.inputs:
        raise CodecError("the request has no inputs")
    inputs = _tensors(msg.inputs, msg.raw_input_contents, "input", "raw_input_contents")
    outputs = [RequestedOutput(o.name) for o in msg.outputs] if msg.outputs else None
    return InferRequestBody(inputs, outputs, msg.id, params_from_proto(msg.parameters))


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
    outputs = _tensors(msg.outputs, msg.raw_output_contents, "output", "raw_output_contents")
    return InferResponseBody(
        msg.model_name, outputs, msg.model_version, msg.id, params_from_proto(msg.parameters)
    )
