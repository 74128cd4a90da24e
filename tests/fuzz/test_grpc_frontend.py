"""A real gateway over gRPC on any request body: bytes that are not the RPC's request are
INVALID_ARGUMENT naming it, on every RPC (grpcio's own deserializer answered UNKNOWN and logged a
traceback), and every body gets a clear status, never UNKNOWN or INTERNAL, its message cut to
fit the client's metadata limit; the gateway logs no traceback."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import grpc
import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import example, given
from hypothesis import strategies as st

from loadtest.stack.procs import GatewayProc, start_gateway, start_pod
from protos import grpc_service_pb2 as pb
from protos import v2_grpc
from protos.infer import InferRequestBody
from protos.tensors import from_numpy
from tests.fuzz.budget import fuzz
from tests.fuzz.strategies import mutated, proto_requests

SERVICE = "/inference.GRPCInferenceService"
# What a caller may be told; UNKNOWN and INTERNAL would be the gateway failing, not the input.
CLEAR = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class Served:
    """The gateway under test, a channel to it, and its log."""

    def __init__(self, gw: GatewayProc, log: IO[bytes]) -> None:
        self.gw, self.log = gw, Path(log.name)
        self.channel = grpc.insecure_channel(gw.grpc_address)
        # Identity serializers: the body goes on the wire exactly as given.
        self.infer = self.channel.unary_unary(f"{SERVICE}/ModelInfer")
        self.stream = self.channel.stream_stream(f"{SERVICE}/ModelStreamInfer")

    def tracebacks(self) -> int:
        return self.log.read_text(errors="replace").count("Traceback")


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    pod = start_pod(["--fixed-ms", "1", "--per-row-ms", "0"])
    try:
        with tempfile.NamedTemporaryFile(prefix="gateway-", suffix=".log") as log:
            gw = start_gateway([{"name": "sim", "endpoints": [pod.grpc_address]}], stdout=log)
            served = Served(gw, log)
            try:
                yield served
                assert served.tracebacks() == 0, served.log.read_text(errors="replace")[-4000:]
            finally:
                served.channel.close()
                gw.stop()
    finally:
        pod.stop()


def good_request(request_id: str = "") -> Any:
    x = from_numpy("INPUT0", "FP32", np.ones((1, 16), np.float32))
    return v2_grpc.encode_request("sim", InferRequestBody([x], None, request_id))


def unary(served: Served, body: bytes, rpc: str = "ModelInfer") -> tuple[grpc.StatusCode, str]:
    call = served.infer if rpc == "ModelInfer" else served.channel.unary_unary(f"{SERVICE}/{rpc}")
    try:
        call(body, timeout=30)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def parses(body: bytes) -> bool:
    try:
        pb.ModelInferRequest.FromString(body)
    except DecodeError:
        return False
    return True


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Request bodies: random bytes, a right or wrong request for the served model, mutated."""
    kind = draw(st.sampled_from(["bytes", "request", "mutated"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    msg = draw(proto_requests())
    msg.model_name = draw(st.sampled_from(["sim", "sim", msg.model_name]))
    if draw(st.booleans()):
        msg = good_request(msg.id)
    raw = bytes(msg.SerializeToString())
    return draw(mutated(raw)) if kind == "mutated" else raw


@fuzz(examples=300)
@example(b"\xff\xff\xff")  # a truncated varint
@example(b"\x0a\x02\xff\xfe")  # a model name that is not UTF-8
@given(bodies())
def test_every_body_gets_a_clear_status(served: Served, body: bytes) -> None:
    code, details = unary(served, body)
    assert code in CLEAR, (code, details)
    if not parses(body):
        assert code is grpc.StatusCode.INVALID_ARGUMENT, (code, details)
        assert "ModelInferRequest" in details, details


def test_a_body_that_is_no_request_is_invalid_argument_and_logs_nothing(served: Served) -> None:
    before = served.tracebacks()
    code, details = unary(served, b"\xff\xff\xff")
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details == "the message does not parse as a ModelInferRequest: Wire format was corrupt"
    assert served.tracebacks() == before
    assert unary(served, good_request().SerializeToString())[0] is grpc.StatusCode.OK


@fuzz(examples=80)
@given(st.lists(bodies(), min_size=1, max_size=4))
def test_each_body_of_a_stream_is_answered_and_the_stream_goes_on(
    served: Served, sent: list[bytes]
) -> None:
    last = good_request("the-last-one").SerializeToString()
    answers = [
        pb.ModelStreamInferResponse.FromString(raw)
        for raw in served.stream(iter([*sent, last]), timeout=30)
    ]
    assert len(answers) == len(sent) + 1
    assert sum(a.infer_response.id == "the-last-one" and not a.error_message for a in answers) == 1
    bad = sum(not parses(body) for body in sent)
    named = sum("does not parse as a ModelInferRequest" in a.error_message for a in answers)
    assert named == bad


OTHER_UNARY = [
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelConfig",
    "ModelStatistics",
]


@pytest.mark.parametrize("rpc", OTHER_UNARY)
def test_a_body_that_is_not_the_rpcs_request_is_invalid_argument_on_every_rpc(
    served: Served, rpc: str
) -> None:
    before = served.tracebacks()
    code, details = unary(served, b"\xff\xff\xff", rpc)
    assert code is grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert details == f"the message does not parse as a {rpc}Request: Wire format was corrupt"
    assert served.tracebacks() == before
    assert unary(served, b"", rpc)[0] is not grpc.StatusCode.INVALID_ARGUMENT  # empty parses


LONG_NAME = "m" * 20_000  # echoed whole, the message would pass the client's 16 KiB limit


def assert_cut(details: str, start: str) -> None:
    assert details.startswith(start) and details.endswith(" characters cut)"), details[-100:]
    assert len(details.encode()) <= 4096


@pytest.mark.parametrize("rpc", ["ModelInfer", "ModelMetadata"])
def test_a_model_name_too_long_to_echo_whole_is_not_found_with_the_name_cut(
    served: Served, rpc: str
) -> None:
    if rpc == "ModelInfer":
        request = good_request()
        request.model_name = LONG_NAME
    else:
        request = pb.ModelMetadataRequest(name=LONG_NAME)
    code, details = unary(served, request.SerializeToString(), rpc)
    assert code is grpc.StatusCode.NOT_FOUND, (code, details[:200])
    assert_cut(details, "unknown model 'mmm")


def test_an_input_name_too_long_to_echo_whole_is_invalid_argument_with_the_name_cut(
    served: Served,
) -> None:
    request = good_request()
    request.inputs[0].name = "I" * 20_000
    code, details = unary(served, request.SerializeToString())
    assert code is grpc.StatusCode.INVALID_ARGUMENT, (code, details[:200])
    assert_cut(details, "unexpected input 'III")
    request.id = "long-input-name"
    (answer,) = served.stream(iter([request.SerializeToString()]), timeout=30)
    answer = pb.ModelStreamInferResponse.FromString(answer)
    assert answer.infer_response.id == "long-input-name"
    assert_cut(answer.error_message, "unexpected input 'III")
