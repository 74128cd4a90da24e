"""What the fuzz tests share: strategies for plain documents, tensors and v2 bodies (REST and
gRPC), valid ones and ones wrong in the ways a hostile or buggy client's are; and the checks
that a body was decoded consistently or refused with a CodecError."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

from protos import grpc_service_pb2 as pb
from protos.heads import DecodeLimits, RequestHead
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import DATATYPES, CodecError, Tensor, bytes_elements, element_count

__all__ = [
    "DATATYPE_NAMES",
    "LIMITS",
    "assert_consistent",
    "bytes_blob",
    "datatypes",
    "documents",
    "gateway_decode",
    "json_bytes",
    "mutated",
    "often",
    "outcome",
    "proto_requests",
    "proto_responses",
    "scalars",
    "shapes",
    "tensors",
    "valid_requests",
]

DATATYPE_NAMES = sorted(DATATYPES)
INT64 = st.integers(-(2**63), 2**63 - 1)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)


def documents(leaves: st.SearchStrategy[Any] = scalars, max_leaves: int = 12) -> Any:
    """Trees of dicts, lists and scalars: any YAML-ish or JSON-ish document."""
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=max_leaves,
    )


def json_bytes(doc: Any) -> bytes:
    """``doc`` as JSON text, big integers and NaN included (orjson refuses those: good input)."""
    return json.dumps(doc).encode()


# Datatypes: real ones mostly, then names no server knows and values that are not names.
datatypes = st.sampled_from(DATATYPE_NAMES) | st.sampled_from(["", "fp32", "FP8", "STRING"])

# Shapes: small real ones, plus the dims a hostile client sends (negative, huge, zero).
dims = st.integers(0, 4) | st.sampled_from([-1, 0, 2**31, 2**62, 2**63 - 1])
shapes = st.lists(dims, max_size=3)


def bytes_blob(count: int) -> st.SearchStrategy[bytes]:
    """BYTES data for ``count`` elements: well-formed, or with prefixes that lie."""
    good = st.lists(st.binary(max_size=6), min_size=count, max_size=count).map(
        lambda items: b"".join(struct.pack("<I", len(e)) + e for e in items)
    )
    lying = st.lists(
        st.tuples(st.integers(0, 2**32 - 1) | st.integers(0, 8), st.binary(max_size=6)),
        max_size=count + 1,
    ).map(lambda items: b"".join(struct.pack("<I", n) + e for n, e in items))
    return good | lying | st.binary(max_size=16)


@st.composite
def tensors(draw: st.DrawFn, name: str = "", rows: int | None = None) -> Tensor:
    """A valid tensor of a small shape (dim 0 ``rows`` if given) and any datatype, its data
    well formed."""
    dt = DATATYPES[draw(st.sampled_from(DATATYPE_NAMES))]
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    if rows is not None:
        shape = (rows, *shape[1:])
    count = element_count(shape)
    if dt.is_bytes:
        items = draw(st.lists(st.binary(max_size=5), min_size=count, max_size=count))
        data = b"".join(struct.pack("<I", len(e)) + e for e in items)
    elif dt.name == "BOOL":  # one byte each, 0 or 1
        data = bytes(draw(st.lists(st.integers(0, 1), min_size=count, max_size=count)))
    else:
        data = draw(st.binary(min_size=count * dt.itemsize, max_size=count * dt.itemsize))
    return Tensor(name or draw(st.text(min_size=1, max_size=5)), dt.name, shape, data)


@st.composite
def valid_requests(draw: st.DrawFn) -> InferRequestBody:
    """A request every codec must carry unchanged: unique names, JSON-safe datatypes."""
    names = draw(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=3, unique=True))
    inputs = [draw(tensors(name)) for name in names]
    outputs = None
    if draw(st.booleans()):
        wanted = draw(st.lists(st.text(min_size=1, max_size=4), max_size=2))
        outputs = [RequestedOutput(n, draw(st.booleans())) for n in wanted]
    return InferRequestBody(inputs, outputs, draw(st.text(max_size=4)))


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` cut short, with bytes flipped, inserted or dropped."""

    @st.composite
    def one(draw: st.DrawFn) -> bytes:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            pos = draw(st.integers(0, len(out)))
            kind = draw(st.sampled_from(["cut", "flip", "insert", "drop"]))
            if kind == "cut":
                del out[pos:]
            elif kind == "insert":
                out[pos:pos] = draw(st.binary(min_size=1, max_size=4))
            elif out and pos < len(out):
                if kind == "flip":
                    out[pos] ^= draw(st.integers(1, 255))
                else:
                    del out[pos]
        return bytes(out)

    return one()


_CONTENT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "bool_contents": st.booleans(),
    "int_contents": st.integers(-(2**31), 2**31 - 1),
    "int64_contents": INT64,
    "uint_contents": st.integers(0, 2**32 - 1),
    "uint64_contents": st.integers(0, 2**64 - 1),
    "fp32_contents": st.floats(width=32),
    "fp64_contents": st.floats(),
    "bytes_contents": st.binary(max_size=4),
}


def often(right: st.SearchStrategy[Any], wrong: st.SearchStrategy[Any]) -> Any:
    """``right`` about three times in four, else ``wrong``: most cases get past the first
    check. (``one_of`` would not do: it favours the simpler branch.)"""
    return st.sampled_from((0, 1, 2, 3)).flatmap(lambda i: wrong if i == 3 else right)


def _fill_contents(draw: st.DrawFn, contents: Any, field: str | None, count: int) -> None:
    """Typed contents: the datatype's field (or another), of ``count`` values (or not)."""
    fields = sorted(_CONTENT_VALUES)
    chosen = draw(often(st.just([field] if field else []), st.lists(st.sampled_from(fields))))
    for name in chosen[:2]:
        size = draw(often(st.just(count), st.sampled_from([max(0, count - 1), count + 1])))
        values = draw(st.lists(_CONTENT_VALUES[name], min_size=size, max_size=size))
        getattr(contents, name).extend(values)


def _proto_tensors(draw: st.DrawFn, specs: Any, raw: Any) -> None:
    """Fill ``specs`` (inputs or outputs) and ``raw`` (their raw contents) with tensors whose
    headers, raw entries and typed contents agree, or do not."""
    n = draw(often(st.integers(1, 3), st.just(0)))
    use_raw = draw(st.sampled_from(["all", "none", "some"]))
    for _ in range(n):
        name = draw(often(st.text(min_size=1, max_size=3), st.just("")))
        dt = draw(often(st.sampled_from(DATATYPE_NAMES), datatypes))
        shape = draw(often(st.lists(st.integers(0, 3), max_size=3), st.lists(dims | INT64)))
        spec = specs.add(name=name, datatype=dt, shape=shape)
        count = element_count(shape) if all(0 <= d <= 64 for d in shape) else 2
        known = DATATYPES.get(dt)
        raw_too = use_raw == "all" or (use_raw == "some" and draw(st.booleans()))
        if not raw_too or not draw(often(st.just(False), st.just(True))):
            _fill_contents(draw, spec.contents, known.contents_field if known else None, count)
        if raw_too:
            itemsize = known.itemsize if known else 4
            exact = st.binary(min_size=count * itemsize, max_size=count * itemsize)
            raw.append(draw(bytes_blob(count) if dt == "BYTES" else often(exact, st.binary())))
    if not draw(often(st.just(True), st.just(False))):  # one entry too many or too few
        if raw and draw(st.booleans()):
            del raw[-1]
        else:
            raw.append(draw(st.binary(max_size=8)))


def _proto_params(draw: st.DrawFn, params: Any) -> None:
    for key in draw(st.lists(st.text(max_size=4), max_size=2)):
        choice = draw(st.sampled_from(["bool", "int64", "uint64", "string", "double", "unset"]))
        if choice == "bool":
            params[key].bool_param = draw(st.booleans())
        elif choice == "int64":
            params[key].int64_param = draw(INT64)
        elif choice == "uint64":
            params[key].uint64_param = draw(st.integers(0, 2**64 - 1))
        elif choice == "double":
            params[key].double_param = draw(st.floats())
        elif choice == "string":
            params[key].string_param = draw(st.text(max_size=4))
        else:
            params[key].SetInParent()


@st.composite
def proto_requests(draw: st.DrawFn) -> Any:
    """A well-formed ModelInferRequest whose contents may be wrong in every way."""
    msg = pb.ModelInferRequest(model_name=draw(st.text(max_size=4)), id=draw(st.text(max_size=4)))
    _proto_tensors(draw, msg.inputs, msg.raw_input_contents)
    for name in draw(st.lists(st.text(max_size=3), max_size=2)):
        msg.outputs.add(name=name)
    _proto_params(draw, msg.parameters)
    return msg


@st.composite
def proto_responses(draw: st.DrawFn) -> Any:
    """A well-formed ModelInferResponse whose contents may be wrong in every way."""
    msg = pb.ModelInferResponse(model_name=draw(st.text(max_size=4)), id=draw(st.text(max_size=4)))
    _proto_tensors(draw, msg.outputs, msg.raw_output_contents)
    _proto_params(draw, msg.parameters)
    return msg


LIMITS = DecodeLimits(max_decode_elements=4096, max_bytes_items=512)


def gateway_decode(parse: Callable[..., Any], *body: Any) -> InferRequestBody | CodecError:
    """What a front-end does with a request body: ``parse`` its head, check the decode caps,
    decode; the body decoded (each tensor what its head declared, its data consistent) or the
    CodecError that refused it. Any other exception fails the test."""
    head = outcome(parse, *body)
    if isinstance(head, CodecError):
        return head
    assert isinstance(head, RequestHead)
    checked = outcome(head.check, LIMITS)
    if isinstance(checked, CodecError):
        return checked
    decoded = outcome(head.decode)
    if isinstance(decoded, InferRequestBody):
        assert [(t.name, t.datatype, t.shape) for t in decoded.inputs] == [
            (h.name, h.datatype, h.shape) for h in head.inputs
        ]
        for tensor in decoded.inputs:
            assert_consistent(tensor)
    return decoded


def outcome(call: Any, *args: Any) -> Any:
    """``call(*args)``, or the CodecError it raised; any other exception fails the test."""
    try:
        return call(*args)
    except CodecError as exc:
        assert str(exc), "a CodecError must say what is wrong"
        return exc


def assert_consistent(tensor: Tensor) -> None:
    """A decoded tensor's data is what its header says: the datatype's size per element, or as
    many well-formed BYTES elements as its shape has."""
    assert tensor.datatype in DATATYPES, tensor
    assert all(d >= 0 for d in tensor.shape), tensor
    dt, count = DATATYPES[tensor.datatype], element_count(tensor.shape)
    if dt.is_bytes:
        assert len(bytes_elements(tensor.data)) == count, tensor
    else:
        assert len(tensor.data) == count * dt.itemsize, tensor
        assert dt.numpy is not None
        np.frombuffer(tensor.data, dtype=dt.numpy)
