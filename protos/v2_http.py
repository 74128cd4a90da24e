"""The v2 REST inference body: JSON with the binary tensor data extension, both directions."""

from __future__ import annotations

import json
import math
import re
from functools import partial
from typing import Any

import numpy as np
import orjson

from protos.heads import RequestHead, TensorHead
from protos.infer import InferRequestBody, InferResponseBody, RequestedOutput, requested_output
from protos.tensors import (
    CodecError,
    DataType,
    Tensor,
    check_bytes_count,
    check_bytes_room,
    check_json_extent,
    datatype,
    element_count,
    json_to_raw,
    json_work,
    raw_to_json,
)

__all__ = [
    "HEADER_LENGTH",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "parse_request",
    "wants_binary",
]

HEADER_LENGTH = "Inference-Header-Content-Length"
# A JSON string (kept whole, so a token inside one is left alone) or one of RapidJSON's
# non-finite tokens: NaN, Inf and Infinity, each with an optional minus (-NaN is NaN).
_NON_FINITE = re.compile(rb'"(?:[^"\\]|\\.)*"|-?NaN|-?Inf(?:inity)?')
_CANONICAL = {b"-NaN": b"NaN", b"Inf": b"Infinity", b"-Inf": b"-Infinity"}  # others as they are
_UNSUPPORTED_PARAMS = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CodecError(f"{what} must be a JSON object")
    return value


def _params(obj: dict[str, Any], what: str) -> dict[str, Any]:
    params = obj.get("parameters")
    if params is None:
        return {}
    return _object(params, f"{what}.parameters")


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise CodecError(f"{what}.shape must be a list of non-negative integers")
    return tuple(value)


def _str_field(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise CodecError(f"{what}.{key} must be a non-empty string")
    return value


def _parse_tensor(
    obj: Any, index: int, kind: str, body: memoryview, pos: int
) -> tuple[TensorHead, int]:
    """One input (or output) object's head, its binary data found in ``body`` at ``pos``: the
    checks that read no data, and how to decode it."""
    what = f"{kind}s[{index}]"
    obj = _object(obj, what)
    name = _str_field(obj, "name", what)
    what = f"{kind} '{name}'"
    dt = datatype(_str_field(obj, "datatype", what), what)
    shape = _shape(obj.get("shape"), what)
    count = element_count(shape)
    items = count if dt.is_bytes else 0
    params = _params(obj, what)
    for key in _UNSUPPORTED_PARAMS:
        if key in params:
            raise CodecError(f"{what}: shared memory is not supported by this server ({key})")
    size = params.get("binary_data_size")
    if size is None:
        if "data" not in obj:
            raise CodecError(f"{what} has neither 'data' nor a binary_data_size parameter")
        if not dt.json_ok:
            raise CodecError(f"{what}: {dt.name} data must be sent as binary, not JSON")
        decode = partial(_json_data, dt, obj["data"], shape, what)
        return TensorHead(name, dt.name, shape, decode, json_work(shape), items), pos
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise CodecError(f"{what}: binary_data_size must be a non-negative integer")
    if pos + size > len(body):
        raise CodecError(
            f"{what}: binary_data_size {size} runs past the end of the body "
            f"({len(body) - pos} bytes left)"
        )
    raw = body[pos : pos + size]
    if dt.is_bytes:
        check_bytes_room(size, count, what)
        decode = partial(_bytes_data, raw, count, what)
        return TensorHead(name, dt.name, shape, decode, count, count), pos + size
    if size != count * dt.itemsize:
        raise CodecError(
            f"{what}: binary_data_size is {size} bytes, shape {list(shape)} of {dt.name} "
            f"needs {count * dt.itemsize}"
        )
    return TensorHead(name, dt.name, shape, raw.tobytes), pos + size


def _json_data(dt: DataType, data: Any, shape: tuple[int, ...], what: str) -> bytes:
    check_json_extent(data, shape, what)  # list lengths first: no array for the wrong count
    return json_to_raw(dt, data, element_count(shape), what)


def _bytes_data(raw: memoryview, count: int, what: str) -> bytes:
    check_bytes_count(raw, count, what)
    return raw.tobytes()


def _split(body: bytes, header_length: int | None) -> tuple[dict[str, Any], memoryview]:
    if header_length is None:
        header_length = len(body)
    if header_length < 0 or header_length > len(body):
        raise CodecError(f"{HEADER_LENGTH} is {header_length}, but the body has {len(body)} bytes")
    head = memoryview(body)[:header_length]
    try:
        doc = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        text = bytes(head)
        if b"NaN" not in text and b"Inf" not in text:
            raise CodecError(f"the body is not valid JSON: {exc}") from None
        doc = _loads_non_finite(text)
    return _object(doc, "the body"), memoryview(body)[header_length:]


def _loads_non_finite(text: bytes) -> Any:
    """JSON that may hold the tokens NaN, Inf and Infinity (each also with a minus) in tensor
    data, as Triton reads them (RapidJSON's kParseNanAndInfFlag): the slow path, for a body
    orjson refuses. Anything else orjson refuses is refused here too, each with a CodecError."""
    deep = "the body is not valid JSON: it nests too deeply"
    text = _NON_FINITE.sub(lambda m: _CANONICAL.get(m[0], m[0]), text)  # as json reads them
    try:
        doc = json.loads(text.decode(), parse_int=_json_int, parse_float=_json_float)
    except RecursionError:
        raise CodecError(deep) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, _json_float's
        raise CodecError(f"the body is not valid JSON: {exc}") from None
    try:
        orjson.dumps(doc)  # what orjson would not have held: lone surrogates, deep nesting
    except orjson.JSONEncodeError as exc:
        raise CodecError(
            deep if "Recursion" in str(exc) else f"the body is not valid JSON: {exc}"
        ) from None
    if isinstance(doc, dict):
        try:
            json.dumps(_without_data(doc), allow_nan=False)
        except ValueError:
            raise CodecError("NaN and Infinity are allowed in tensor data only") from None
    return doc


def _json_int(text: str) -> int | float:
    """A JSON integer as orjson reads it: a float beyond int64 and uint64."""
    if len(text) <= 20:  # the digits of any 64-bit integer, and its sign
        value = int(text)
        if -(2**63) <= value < 2**64:
            return value
    return _json_float(text)


def _json_float(text: str) -> float:
    """A JSON number as orjson reads it: refused where it overflows a double."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number is infinity when parsed as double: {text[:20]}")
    return value


def _without_data(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without its tensors' data, the one place NaN and Infinity may be."""
    out = dict(doc)
    for key in ("inputs", "outputs"):
        tensors = doc.get(key)
        if isinstance(tensors, list):
            out[key] = [
                {k: v for k, v in t.items() if k != "data"} if isinstance(t, dict) else t
                for t in tensors
            ]
    return out


def _finish(binary: memoryview, pos: int) -> None:
    if pos != len(binary):
        raise CodecError(
            f"the body has {len(binary) - pos} bytes of binary data that no tensor claims"
        )


def parse_request(body: bytes, header_length: int | None) -> RequestHead:
    """A REST inference request's head (JSON, then binary tensors if ``header_length`` is set):
    the JSON parsed, no tensor decoded."""
    doc, binary = _split(body, header_length)
    inputs_doc = doc.get("inputs")
    if not isinstance(inputs_doc, list) or not inputs_doc:
        raise CodecError("'inputs' must be a non-empty list")
    pos = 0
    inputs: list[TensorHead] = []
    for i, obj in enumerate(inputs_doc):
        head, pos = _parse_tensor(obj, i, "input", binary, pos)
        inputs.append(head)
    _finish(binary, pos)
    request_params = _params(doc, "the request")  # checked here, before the request queues
    binary_default = request_params.get("binary_data_output")
    if binary_default is not None and not isinstance(binary_default, bool):
        raise CodecError("parameters.binary_data_output must be a boolean")
    outputs: list[RequestedOutput] | None = None
    if doc.get("outputs") is not None:
        if not isinstance(doc["outputs"], list):
            raise CodecError("'outputs' must be a list")
        outputs = []
        for i, obj in enumerate(doc["outputs"]):
            what = f"outputs[{i}]"
            obj = _object(obj, what)
            params = _params(obj, what)
            binary_flag = params.get("binary_data")
            if binary_flag is not None and not isinstance(binary_flag, bool):
                raise CodecError(f"{what}.parameters.binary_data must be a boolean")
            name = _str_field(obj, "name", what)
            outputs.append(requested_output(name, params, what, binary_flag))
    request_id = doc.get("id", "")
    if not isinstance(request_id, str):
        raise CodecError("'id' must be a string")
    return RequestHead(inputs, outputs, request_id, request_params)


def decode_request(body: bytes, header_length: int | None) -> InferRequestBody:
    """A REST inference request body, decoded (for pods and tests: the gateway checks the
    head against the model between ``parse_request`` and decoding)."""
    return parse_request(body, header_length).decode()


def wants_binary(request: InferRequestBody, output: str) -> bool:
    """Whether the caller wants ``output`` as binary data (per output, else request default)."""
    if request.outputs is not None:
        for wanted in request.outputs:
            if wanted.name == output and wanted.binary is not None:
                return wanted.binary
    return bool(request.parameters.get("binary_data_output", False))


def _json_data_out(dt: DataType, raw: bytes) -> Any:
    """A tensor's JSON data; NaN and ±inf written as Triton writes them (RapidJSON's
    kWriteNanAndInfFlag: NaN, Infinity, -Infinity), where orjson would write null."""
    data = raw_to_json(dt, raw)
    if not isinstance(data, np.ndarray) or data.dtype.kind != "f":
        return data
    if np.count_nonzero(np.isfinite(data)) == data.size:  # isfinite().all() costs 1 µs more
        return data
    written = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)  # flat: no "," inside
    items = np.array(written[1:-1].split(b","), dtype=object)
    items[np.isnan(data)] = b"NaN"
    items[data == np.inf] = b"Infinity"
    items[data == -np.inf] = b"-Infinity"
    return orjson.Fragment(b"[" + b",".join(items.tolist()) + b"]")


def _encode(
    doc: dict[str, Any], tensors: list[Tensor], binary: list[bool], key: str
) -> tuple[bytes, int | None]:
    blobs: list[bytes] = []
    objs: list[dict[str, Any]] = []
    for tensor, as_binary in zip(tensors, binary, strict=True):
        obj: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if as_binary:
            obj["parameters"] = {"binary_data_size": len(tensor.data)}
            blobs.append(tensor.data)
        else:
            obj["data"] = _json_data_out(datatype(tensor.datatype, tensor.name), tensor.data)
        objs.append(obj)
    doc[key] = objs
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)


def encode_response(response: InferResponseBody, binary: list[bool]) -> tuple[bytes, int | None]:
    """A REST inference response body and, when binary data follows the JSON, its length."""
    doc: dict[str, Any] = {"model_name": response.model_name, "id": response.id}
    if response.model_version:
        doc["model_version"] = response.model_version
    if response.parameters:
        doc["parameters"] = response.parameters
    return _encode(doc, response.outputs, binary, "outputs")


def encode_request(request: InferRequestBody, binary: bool) -> tuple[bytes, int | None]:
    """A REST inference request body (for clients: load generators, tests)."""
    doc: dict[str, Any] = {}
    if request.id:
        doc["id"] = request.id
    if request.parameters:
        doc["parameters"] = request.parameters
    if request.outputs is not None:
        doc["outputs"] = [
            {"name": o.name, "parameters": {"binary_data": bool(o.binary)}} for o in request.outputs
        ]
    return _encode(doc, request.inputs, [binary] * len(request.inputs), "inputs")


def decode_response(body: bytes, header_length: int | None) -> InferResponseBody:
    """A REST inference response body (for clients: load generators, tests)."""
    doc, binary = _split(body, header_length)
    outputs_doc = doc.get("outputs")
    if not isinstance(outputs_doc, list):
        raise CodecError("'outputs' must be a list")
    pos = 0
    heads: list[TensorHead] = []
    for i, obj in enumerate(outputs_doc):
        head, pos = _parse_tensor(obj, i, "output", binary, pos)
        heads.append(head)
    _finish(binary, pos)
    outputs = [head.tensor() for head in heads]
    return InferResponseBody(
        str(doc.get("model_name", "")),
        outputs,
        str(doc.get("model_version", "")),
        str(doc.get("id", "")),
        _params(doc, "the response"),
    )
