"""What cannot be batched across pods is refused at the edge, naming why: a stateful model's
requests (sequence_batching) and a decoupled model's but on ModelStreamInfer; sequence
parameters to any other pass."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from gateway.config import DynamicBatchingSettings, ModelSettings
from gateway.errors import Code, InferError
from gateway.metrics import GatewayMetrics
from gateway.models.describe import signature_text
from gateway.models.runtime import ModelRuntime
from gateway.models.spec import STREAM, ModelSpec
from protos import model_config_pb2 as mc
from protos.heads import DecodeLimits
from protos.infer import InferRequestBody
from protos.tensors import Tensor
from protos.v2_http import parse_request

LIMITS = DecodeLimits(1 << 20, 1 << 20)


def config(kind: str = "") -> mc.ModelConfig:
    """A model of INPUT0/OUTPUT0 FP32 [16]: plain, ``stateful`` or ``decoupled``."""
    cfg = mc.ModelConfig(name="m", backend="python", max_batch_size=8)
    cfg.input.add(name="INPUT0", data_type=mc.TYPE_FP32, dims=[16])
    cfg.output.add(name="OUTPUT0", data_type=mc.TYPE_FP32, dims=[16])
    if kind == "stateful":
        cfg.sequence_batching.max_sequence_idle_microseconds = 1_000_000
        cfg.sequence_batching.oldest.max_candidate_sequences = 4
    elif kind == "decoupled":
        cfg.model_transaction_policy.decoupled = True
        cfg.dynamic_batching.SetInParent()
    else:
        cfg.dynamic_batching.SetInParent()
    return cfg


def body(**parameters: Any) -> InferRequestBody:
    return InferRequestBody([Tensor("INPUT0", "FP32", (1, 16), bytes(64))], None, "r", parameters)


def test_the_spec_says_whether_a_model_is_stateful_or_decoupled() -> None:
    plain, stateful, decoupled = (
        ModelSpec.from_config("m", config(k)) for k in ("", "stateful", "decoupled")
    )
    assert (plain.stateful, plain.decoupled) == (False, False)
    assert (stateful.stateful, stateful.decoupled) == (True, False)
    assert (decoupled.stateful, decoupled.decoupled) == (False, True)
    assert signature_text(stateful).endswith("outputs [OUTPUT0 FP32 [-1, 16]], stateful")
    assert signature_text(decoupled).endswith(", decoupled")
    assert plain != stateful != decoupled != plain  # a pod turning stateful: a new signature


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"sequence_id": 7, "sequence_start": True},
        {"sequence_id": "session-a"},
        {"sequence_id": 7, "sequence_end": True},
    ],
)
def test_a_stateful_models_requests_are_refused_naming_why(parameters: dict[str, Any]) -> None:
    spec = ModelSpec.from_config("m", config("stateful"))
    with pytest.raises(InferError) as err:
        spec.validate(body(**parameters))
    assert err.value.code is Code.INVALID_ARGUMENT
    assert err.value.code.http_status == 400
    assert "stateful models are not served through the gateway yet" in err.value.message
    assert "send to the pod directly" in err.value.message


def test_a_decoupled_models_requests_are_refused_as_triton_refuses_unary_calls() -> None:
    """Triton (2.51) answers HTTP infer and ModelInfer to a decoupled model UNSUPPORTED (HTTP
    501, gRPC UNIMPLEMENTED), each in its words; ModelStreamInfer's requests pass (relayed
    unbatched: gateway.models.decoupled)."""
    spec = ModelSpec.from_config("m", config("decoupled"))
    for endpoint, words in (("http", "HTTP end point"), ("grpc", "ModelInfer RPC")):
        with pytest.raises(InferError) as err:
            spec.validate(body(), endpoint)
        assert err.value.message == (
            f"{words} doesn't support models with decoupled transaction policy"
        )
        assert err.value.code is Code.UNIMPLEMENTED
        assert err.value.code.http_status == 501
    assert spec.validate(body(), STREAM) == 1


@pytest.mark.parametrize(
    "parameters",
    [
        {"sequence_id": 3},
        {"sequence_id": "s"},
        {"sequence_start": True},
        {"sequence_id": 3, "sequence_start": True, "sequence_end": True},
        {"sequence_id": 0},
        {"priority": 1, "timeout": 1000},
    ],
)
def test_sequence_parameters_to_a_model_without_sequences_pass_as_triton_takes_them(
    parameters: dict[str, Any],
) -> None:
    """Triton (2.51) answers 200 to a sequence_id sent to a model without sequence_batching."""
    plain = ModelSpec.from_config("m", config())
    undescribed = ModelSpec.from_metadata("m", plain.metadata(), 8)
    assert plain.validate(body(**parameters)) == undescribed.validate(body(**parameters)) == 1


def test_a_decoupled_or_stateful_models_config_keeps_the_pods_scheduling() -> None:
    """The gateway batches neither (it refuses the one's requests, passes the other's through
    unbatched): none of its batching is in force."""
    for kind in ("stateful", "decoupled"):
        pod = config(kind)
        served = ModelSpec.from_config("m", pod).config(DynamicBatchingSettings())
        assert served == pod


def runtime_with(spec: ModelSpec) -> ModelRuntime:
    model = ModelRuntime(ModelSettings(name="m"), metrics=GatewayMetrics(), probe_interval_s=1)
    model.spec = spec
    return model


def test_a_refused_request_is_refused_before_its_tensors_are_decoded() -> None:
    """At decode: the head is refused, its data never converted."""
    doc = {
        "parameters": {"sequence_id": 42, "sequence_start": True},
        "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "data": [0] * 16}],
    }
    stateful = runtime_with(ModelSpec.from_config("m", config("stateful")))
    with pytest.raises(InferError, match="sequence_batching") as err:
        stateful.decode(parse_request(orjson.dumps(doc), None), LIMITS)
    assert err.value.code is Code.INVALID_ARGUMENT
    assert stateful._checked is None  # nothing decoded for infer to take


async def test_infer_refuses_what_decode_would_have() -> None:
    model = runtime_with(ModelSpec.from_config("m", config("decoupled")))
    with pytest.raises(InferError) as err:
        await model.infer(body(), time.monotonic() + 1)
    assert err.value.code is Code.UNIMPLEMENTED
    assert model.scheduler.queue.requests == 0  # never queued
