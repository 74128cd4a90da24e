"""The ``sim`` request the generators send, its answer check, and the response sampler."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.clients.base import ClientSpec, InferError, Sampler, error_kind
from loadtest.clients.payload import AnswerError, SimPayload
from protos import v2_http
from protos.infer import InferResponseBody
from protos.tensors import CodecError, Tensor


def _answer(payload: SimPayload, data: bytes | None = None) -> InferResponseBody:
    data = payload.expected() if data is None else data
    return InferResponseBody("sim", [Tensor("OUTPUT0", "FP32", (payload.rows, 16), data)])


def test_the_request_is_rows_of_16_fp32() -> None:
    tensor = SimPayload(rows=3).tensor()
    assert (tensor.name, tensor.datatype, tensor.shape) == ("INPUT0", "FP32", (3, 16))
    assert len(tensor.data) == 3 * 16 * 4


def test_the_values_survive_json_exactly() -> None:
    payload = SimPayload(rows=2, seed=5)
    body, length = v2_http.encode_request(payload.request(), binary=False)
    assert length is None
    decoded = v2_http.decode_request(body, None)
    assert decoded.inputs[0].data == payload.tensor().data


def test_binary_request_asks_for_binary_outputs() -> None:
    body, length = v2_http.encode_request(SimPayload().request(binary_output=True), binary=True)
    assert length is not None
    decoded = v2_http.decode_request(body, length)
    assert v2_http.wants_binary(decoded, "OUTPUT0")


def test_twice_the_input_passes_the_check() -> None:
    payload = SimPayload(rows=2)
    payload.check(_answer(payload))


def test_a_wrong_answer_fails_the_check() -> None:
    payload = SimPayload()
    wrong = (payload.array() * np.float32(3)).astype("<f4").tobytes()
    with pytest.raises(AnswerError):
        payload.check(_answer(payload, wrong))


def test_a_wrong_shape_fails_the_check() -> None:
    payload = SimPayload(rows=2)
    with pytest.raises(AnswerError):
        payload.check(_answer(SimPayload(rows=1)))


def test_the_sampler_checks_the_first_then_one_in_n() -> None:
    sampler = Sampler(4)
    assert [sampler.due() for _ in range(9)] == [True, False, False, False] * 2 + [True]


def test_a_sampler_of_zero_checks_nothing() -> None:
    sampler = Sampler(0)
    assert not any(sampler.due() for _ in range(5))


def test_errors_are_counted_by_kind() -> None:
    assert error_kind(InferError("http 503", "busy")) == "http 503"
    assert error_kind(AnswerError("no")) == "wrong answer"
    assert error_kind(CodecError("bad")) == "undecodable response"
    assert error_kind(TimeoutError()) == "timeout"
    assert error_kind(KeyError("x")) == "KeyError"


def test_a_client_spec_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown client kind"):
        ClientSpec("smtp", "http://127.0.0.1:1")


def test_a_stream_request_id_is_appended_to_the_serialized_request() -> None:
    from loadtest.clients.grpc_stream import with_id
    from protos import grpc_service_pb2 as pb

    base = pb.ModelInferRequest(model_name="sim", id="old").SerializeToString()
    for request_id in ("0", "12345", "x" * 300):  # a length over 127 takes a 2-byte varint
        parsed = pb.ModelInferRequest.FromString(with_id(base, request_id))
        assert (parsed.model_name, parsed.id) == ("sim", request_id)
