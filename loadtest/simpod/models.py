"""The models the pod serves: the demo model ``sim`` and the optional identity models.

Each model has one input ``INPUT0`` and one output ``OUTPUT0`` and a batch dimension. This
module checks a decoded request against the model (names, datatype, shape, batch size,
requested outputs), runs the computation, and describes the model as v2 metadata and as a
Triton ``ModelConfig``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loadtest.simpod.core import double_fp32, identity
from loadtest.simpod.errors import Code, SimError
from protos import grpc_service_pb2 as pb
from protos import model_config_pb2 as mc
from protos.infer import InferRequestBody
from protos.tensors import DATATYPES, Tensor

__all__ = [
    "PLATFORM",
    "VERSION",
    "Batch",
    "SimModel",
    "build_models",
    "demo_model",
    "identity_models",
]

VERSION = "1"
PLATFORM = "simulated"
INPUT = "INPUT0"
OUTPUT = "OUTPUT0"

_CONFIG_TYPES: dict[str, int] = {
    name: mc.DataType.Value("TYPE_STRING" if name == "BYTES" else f"TYPE_{name}")
    for name in DATATYPES
}


def _shape_text(shape: tuple[int, ...] | list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


@dataclass(frozen=True, slots=True)
class Batch:
    """A request checked against its model: the input, its row count and the outputs to return."""

    tensor: Tensor
    rows: int
    outputs: list[str]


@dataclass(frozen=True, slots=True)
class SimModel:
    """A model with one input and one output of the same datatype and per-row ``dims``."""

    name: str
    datatype: str
    dims: tuple[int, ...]  # per row; -1 = any size
    max_batch: int
    compute: Callable[[bytes], bytes]
    signature: bool = True  # False: metadata declares no inputs/outputs and there is no config

    @property
    def shape(self) -> list[int]:
        """The metadata shape: the batch dimension -1, then ``dims``."""
        return [-1, *self.dims]

    def check(self, request: InferRequestBody) -> Batch:
        """The request as a batch of this model, or an INVALID_ARGUMENT naming what is wrong."""
        where = f"model '{self.name}'"
        if not self.signature:
            return self._check_any(request, where)
        names = [t.name for t in request.inputs]
        for name in names:
            if name != INPUT:
                raise SimError.invalid(f"unexpected input '{name}' for {where}: it has '{INPUT}'")
        if len(names) != 1:
            raise SimError.invalid(f"input '{INPUT}' is given {len(names)} times")
        tensor = request.inputs[0]
        if tensor.datatype != self.datatype:
            raise SimError.invalid(
                f"input '{INPUT}' has datatype {tensor.datatype}, {where} expects {self.datatype}"
            )
        shape = tensor.shape
        if len(shape) != len(self.shape) or any(
            want != -1 and got != want for got, want in zip(shape[1:], self.dims, strict=True)
        ):
            raise SimError.invalid(
                f"input '{INPUT}' has shape {_shape_text(shape)}, {where} expects "
                f"{_shape_text(self.shape)}"
            )
        rows = shape[0]
        if rows < 1:
            raise SimError.invalid(f"input '{INPUT}' has batch size 0; it must be at least 1")
        if rows > self.max_batch:
            raise SimError.invalid(
                f"input '{INPUT}' has batch size {rows}, more than the max_batch_size "
                f"{self.max_batch} of {where}"
            )
        outputs = [OUTPUT] if request.outputs is None else [o.name for o in request.outputs]
        for name in outputs:
            if name != OUTPUT:
                raise SimError.invalid(
                    f"unknown output '{name}' requested from {where}: it has '{OUTPUT}'"
                )
        return Batch(tensor, rows, outputs)

    def _check_any(self, request: InferRequestBody, where: str) -> Batch:
        """Without a signature: INPUT0 of FP32 in any shape (dim 0 the rows, if any)."""
        tensor = next((t for t in request.inputs if t.name == INPUT), None)
        if tensor is None:
            raise SimError.invalid(f"{where} needs input '{INPUT}'")
        if tensor.datatype != self.datatype:
            raise SimError.invalid(
                f"input '{INPUT}' has datatype {tensor.datatype}, {where} computes on "
                f"{self.datatype}"
            )
        rows = tensor.shape[0] if tensor.shape else 1
        outputs = [OUTPUT] if request.outputs is None else [o.name for o in request.outputs]
        return Batch(tensor, max(rows, 1), outputs)

    def run(self, batch: Batch) -> list[Tensor]:
        """The outputs of ``batch``, in the order they were requested."""
        data = self.compute(batch.tensor.data)
        return [Tensor(name, self.datatype, batch.tensor.shape, data) for name in batch.outputs]

    def metadata(self) -> pb.ModelMetadataResponse:
        """The v2 model metadata."""
        meta = pb.ModelMetadataResponse(name=self.name, versions=[VERSION], platform=PLATFORM)
        if not self.signature:
            return meta
        meta.inputs.add(name=INPUT, datatype=self.datatype, shape=self.shape)
        meta.outputs.add(name=OUTPUT, datatype=self.datatype, shape=self.shape)
        return meta

    def config(self, devices: int) -> mc.ModelConfig:
        """The Triton model configuration (what perf_analyzer reads); NOT_FOUND without a
        signature (as MLServer answers for a model whose settings declare none)."""
        if not self.signature:
            raise SimError(Code.NOT_FOUND, f"model '{self.name}' has no model configuration")
        cfg = mc.ModelConfig(name=self.name, platform=PLATFORM, max_batch_size=self.max_batch)
        data_type = _CONFIG_TYPES[self.datatype]
        cfg.input.add(name=INPUT, data_type=data_type, dims=self.dims)  # type: ignore[arg-type]
        cfg.output.add(name=OUTPUT, data_type=data_type, dims=self.dims)  # type: ignore[arg-type]
        cfg.dynamic_batching.SetInParent()
        cfg.instance_group.add(
            name=self.name, count=devices, kind=mc.ModelInstanceGroup.Kind.KIND_GPU
        )
        return cfg


def demo_model(
    max_batch: int, name: str = "sim", row_size: int = 16, signature: bool = True
) -> SimModel:
    """The demo model: INPUT0 FP32 [row_size] per row, OUTPUT0 = 2 * INPUT0; without a
    signature it describes nothing and doubles whatever FP32 INPUT0 it gets."""
    return SimModel(name, "FP32", (row_size,), max_batch, double_fp32, signature)


def identity_models(max_batch: int) -> list[SimModel]:
    """One identity model per v2 datatype, ``identity_<datatype>``, dims [-1]."""
    return [
        SimModel(f"identity_{name.lower()}", name, (-1,), max_batch, identity) for name in DATATYPES
    ]


def build_models(
    name: str,
    max_batch: int,
    with_identity: bool,
    row_size: int = 16,
    signature: bool = True,
) -> dict[str, SimModel]:
    """Every model the pod serves, by name. ``name`` may list several demo models, comma
    separated ("a,b"): alike, they share the pod's devices (a batch of one delays the other's)."""
    models = [demo_model(max_batch, n, row_size, signature) for n in name.split(",")]
    if with_identity:
        models += identity_models(max_batch)
    return {m.name: m for m in models}
