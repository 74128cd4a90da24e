"""The gRPC inference messages on any input: bytes that are no ModelInferRequest, and requests
and pod answers whose contents are wrong, give a decoded body or a CodecError (for a pod's
answer, an INTERNAL error naming the pod), nothing else."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.backends.batch_call import answer_of
from gateway.errors import Code, InferError
from protos import grpc_service_pb2 as pb
from protos import v2_grpc
from protos.infer import InferRequestBody, InferResponseBody, RequestedOutput
from protos.tensors import CodecError
from tests.fuzz.budget import fuzz
from tests.fuzz.strategies import (
    assert_consistent,
    gateway_decode,
    mutated,
    often,
    outcome,
    proto_requests,
    proto_responses,
    tensors,
    valid_requests,
)


def grpc_decode(msg: Any) -> InferRequestBody | CodecError:
    return gateway_decode(v2_grpc.parse_request, msg)


def from_bytes(raw: bytes) -> InferRequestBody | CodecError:
    msg = outcome(v2_grpc.request_from_bytes, raw)
    if isinstance(msg, CodecError):
        assert "ModelInferRequest" in str(msg)
        return msg
    assert isinstance(msg, pb.ModelInferRequest)
    return grpc_decode(msg)


@st.composite
def serialized_requests(draw: st.DrawFn) -> bytes:
    """A valid request's wire bytes, or a wrong one's, mutated."""
    if draw(st.booleans()):
        msg = v2_grpc.encode_request("m", draw(valid_requests()))
    else:
        msg = draw(proto_requests())
    return draw(mutated(msg.SerializeToString()))


@fuzz(examples=600)
@example(b"\xff\xff\xff")  # a truncated varint: grpcio's own deserializer raised DecodeError
@example(b"\x0a\x05abc")  # a string field running past the end
@given(st.binary(max_size=96) | serialized_requests())
def test_any_bytes_parse_as_a_request_or_are_refused(raw: bytes) -> None:
    from_bytes(raw)


@fuzz(examples=1200)
@given(proto_requests())
def test_a_request_with_wrong_contents_decodes_or_is_refused(msg: Any) -> None:
    grpc_decode(msg)


@fuzz(examples=400)
@given(valid_requests())
def test_a_valid_request_decodes_to_itself_in_raw_and_in_typed_contents(
    request: InferRequestBody,
) -> None:
    msg = v2_grpc.encode_request("m", request)
    decoded = v2_grpc.request_from_bytes(msg.SerializeToString())
    body = grpc_decode(decoded)
    assert isinstance(body, InferRequestBody), body
    assert body.inputs == request.inputs
    assert [o.name for o in body.outputs or ()] == [o.name for o in request.outputs or ()]


def test_raw_contents_beside_typed_contents_are_refused_as_triton_does() -> None:
    msg = pb.ModelInferRequest(model_name="m")
    spec = msg.inputs.add(name="x", datatype="INT32", shape=[1])
    spec.contents.int_contents.append(1)
    msg.raw_input_contents.append(b"\x01\x00\x00\x00")
    refused = grpc_decode(msg)
    assert isinstance(refused, CodecError)
    assert "contents field must not be specified" in str(refused)


@st.composite
def pod_answers(draw: st.DrawFn) -> tuple[Any, list[int], bool, list[RequestedOutput] | None]:
    """A pod's answer to a batch of ``rows``: right for the batch, or wrong in any way."""
    batched = draw(st.booleans())  # a model that does not batch sends each request alone
    rows = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)) if batched else [1]
    if not draw(often(st.just(True), st.just(False))):
        msg = draw(proto_responses())
    else:
        names = draw(st.lists(st.text(min_size=1, max_size=3), min_size=1, max_size=2))
        total = draw(often(st.just(sum(rows)), st.none()))  # shaped for the batch, or not
        outputs = [draw(tensors(name, total)) for name in names]
        msg = v2_grpc.encode_response(InferResponseBody("m", outputs))
    requested = None
    if draw(st.booleans()):
        requested = [RequestedOutput(n) for n in draw(st.lists(st.text(max_size=3), max_size=2))]
    return draw(often(st.just(msg), st.none())), rows, batched, requested


@fuzz(examples=1000)
@given(pod_answers())
def test_a_pod_answer_splits_among_its_callers_or_is_an_internal_error(
    case: tuple[Any, list[int], bool, list[RequestedOutput] | None],
) -> None:
    reply, rows, batched, requested = case
    try:
        answers = answer_of(reply, rows, batched, requested, "10.0.0.1:8001")
    except InferError as exc:
        assert exc.code is Code.INTERNAL and "10.0.0.1:8001" in exc.message, exc
        return
    assert len(answers) == len(rows)
    for outputs, n in zip(answers, rows, strict=True):
        for tensor in outputs:
            assert_consistent(tensor)
            if batched:
                assert tensor.shape[0] == n


@fuzz(examples=400)
@given(proto_responses() | st.binary(max_size=64))
def test_any_pod_answer_decodes_or_is_refused(reply: Any) -> None:
    if isinstance(reply, bytes):
        try:
            reply = pb.ModelInferResponse.FromString(reply)
        except DecodeError:  # grpcio hands the gateway None for an answer that does not parse
            reply = None
    if reply is not None:
        decoded = outcome(v2_grpc.decode_response, reply)
        for tensor in getattr(decoded, "outputs", ()):
            assert_consistent(tensor)
