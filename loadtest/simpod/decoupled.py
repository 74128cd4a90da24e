"""The pod's decoupled model ``repeat`` (``--decoupled-models``): 0 or more responses a request.

INPUT0 (INT32 [1]) = n: n responses on ModelStreamInfer, OUTPUT0 = [i] for i = 0 .. n-1, one
every F + c (the device's cost of one row, ``--fixed-ms`` and ``--per-row-ms``: a decoding
step), then the request is done; n < 0 is answered with one error. As Triton does, each
response carries ``triton_final_response`` (false), the end is an empty response with it true
only when the request asked (``triton_enable_empty_final_response``), and a request refused
before it runs is one error without the flag. ModelInfer and HTTP infer refuse it (Triton's
UNSUPPORTED). Its steps sleep on the loop: requests interleave, off the batches' devices.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from loadtest.simpod.core import batch_cost_s, identity
from loadtest.simpod.errors import Code, SimError
from loadtest.simpod.models import PLATFORM, VERSION, SimModel
from protos import grpc_service_pb2 as pb
from protos import model_config_pb2 as mc
from protos.infer import InferRequestBody
from protos.tensors import CodecError
from protos.v2_grpc import decode_request

__all__ = ["REPEAT", "RepeatModel", "answer_repeat", "decoupled_models"]

REPEAT = "repeat"
EMPTY_FINAL = "triton_enable_empty_final_response"
FINAL = "triton_final_response"
_REFUSAL = "ModelInfer RPC doesn't support models with decoupled transaction policy"

Put = Callable[[pb.ModelStreamInferResponse], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RepeatModel(SimModel):
    """``repeat``: INPUT0 INT32 [1] in, OUTPUT0 INT32 [1] out, no batch dimension."""

    def metadata(self) -> pb.ModelMetadataResponse:
        meta = pb.ModelMetadataResponse(name=self.name, versions=[VERSION], platform=PLATFORM)
        meta.inputs.add(name="INPUT0", datatype="INT32", shape=[1])
        meta.outputs.add(name="OUTPUT0", datatype="INT32", shape=[1])
        return meta

    def config(self, devices: int) -> mc.ModelConfig:
        cfg = mc.ModelConfig(name=self.name, platform=PLATFORM, max_batch_size=0)
        cfg.input.add(name="INPUT0", data_type=mc.TYPE_INT32, dims=[1])
        cfg.output.add(name="OUTPUT0", data_type=mc.TYPE_INT32, dims=[1])
        cfg.model_transaction_policy.decoupled = True
        cfg.instance_group.add(name=self.name, count=devices, kind=mc.ModelInstanceGroup.KIND_GPU)
        return cfg

    def check(self, request: InferRequestBody) -> Any:
        """Every request of one response is refused, as Triton refuses a decoupled model's."""
        raise SimError(Code.UNIMPLEMENTED, _REFUSAL)

    def count(self, request: InferRequestBody) -> int:
        """The responses a stream request asks for, or INVALID_ARGUMENT."""
        where = f"model '{self.name}'"
        if [t.name for t in request.inputs] != ["INPUT0"]:
            raise SimError.invalid(f"{where} takes one input, 'INPUT0'")
        tensor = request.inputs[0]
        if tensor.datatype != "INT32" or tensor.shape != (1,):
            raise SimError.invalid(
                f"input 'INPUT0' is {tensor.datatype} {list(tensor.shape)}; {where} expects "
                "INT32 [1]"
            )
        return int.from_bytes(tensor.data, "little", signed=True)


def decoupled_models(enabled: bool) -> dict[str, SimModel]:
    """The decoupled models to serve beside the others: ``repeat`` when ``enabled``."""
    return {REPEAT: RepeatModel(REPEAT, "INT32", (1,), 0, identity)} if enabled else {}


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _response(request: Any, final: bool | None, error: str = "") -> pb.ModelStreamInferResponse:
    out = pb.ModelStreamInferResponse(error_message=error)
    answer = out.infer_response
    answer.model_name, answer.id = request.model_name, request.id
    if final is not None:
        answer.parameters[FINAL].bool_param = final
    return out


async def answer_repeat(engine: Any, model: RepeatModel, request: Any, put: Put) -> None:
    """Answer one stream request of ``model`` through ``put``, response by response."""
    name = model.name
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        if not engine.ready:
            raise SimError(Code.UNAVAILABLE, f"model '{name}' is not ready")
        try:
            count = model.count(decode_request(request))
        except CodecError as exc:
            raise SimError.invalid(str(exc)) from None
    except SimError as exc:
        engine.stats[name].record_failure(loop.time() - started, _wall_ms())
        await put(_response(request, None, exc.message))
        return
    if count < 0:
        engine.stats[name].record_failure(loop.time() - started, _wall_ms())
        await put(_response(request, True, f"count must be non-negative, got {count}"))
        return
    step_s = batch_cost_s(1, engine.fixed_ms, engine.per_row_ms)
    for i in range(count):
        await asyncio.sleep(step_s)
        out = _response(request, False)
        answer = out.infer_response
        answer.model_version = VERSION
        answer.outputs.add(name="OUTPUT0", datatype="INT32", shape=[1])
        answer.raw_output_contents.append(i.to_bytes(4, "little", signed=True))
        await put(out)
    total = loop.time() - started
    engine.stats[name].record_success(max(count, 1), 0.0, total, total, _wall_ms())
    params = request.parameters
    if EMPTY_FINAL in params and params[EMPTY_FINAL].bool_param:
        await put(_response(request, True))
