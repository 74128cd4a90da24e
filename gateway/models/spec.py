"""What a model takes and returns, learnt from its pods, and the edge validation against it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.errors import Code, InferError
from protos import grpc_service_pb2 as pb
from protos import model_config_pb2 as mc
from protos.infer import RequestedOutput

__all__ = [
    "STREAM",
    "ModelSpec",
    "SignedRequest",
    "TensorSpec",
    "config_type",
    "decoupled_refusal",
    "v2_type",
]


class _SignedTensor(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def datatype(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...


class SignedRequest(Protocol):
    """What validation reads of a request: its inputs' names, datatypes and shapes and the
    outputs it asks for; a decoded request or a head whose data is not decoded yet."""

    @property
    def inputs(self) -> Sequence[_SignedTensor]: ...
    @property
    def outputs(self) -> Sequence[RequestedOutput] | None: ...


def v2_type(config_type: int) -> str:
    """A model_config DataType enum value as the v2 datatype name (TYPE_STRING is BYTES)."""
    name = mc.DataType.Name(config_type).removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


def config_type(datatype: str) -> int:
    """A v2 datatype name as the model_config DataType enum value."""
    return int(mc.DataType.Value("TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"))


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output: datatype and dims without the batch dimension (-1 = any)."""

    name: str
    datatype: str
    dims: tuple[int, ...]
    optional: bool = False

    def accepts(self, dims: tuple[int, ...]) -> bool:
        return len(dims) == len(self.dims) and all(
            want in (-1, got) for want, got in zip(self.dims, dims, strict=True)
        )


def _bad(message: str) -> InferError:
    return InferError(Code.INVALID_ARGUMENT, message)


# Triton's answers (2.51) to a decoupled model's request on an endpoint of one response each.
_ONE_RESPONSE_ENDPOINTS = {
    "http": "HTTP end point doesn't support models with decoupled transaction policy",
    "grpc": "ModelInfer RPC doesn't support models with decoupled transaction policy",
}
STREAM = "stream"  # the endpoint that takes a decoupled model's requests: gRPC ModelStreamInfer


def decoupled_refusal(endpoint: str) -> InferError:
    """Triton's refusal of a decoupled model's request on ``endpoint`` ("http": HTTP infer,
    "grpc": ModelInfer): UNSUPPORTED, HTTP 501 / gRPC UNIMPLEMENTED, before the request is
    read. Only ModelStreamInfer relays 0..n responses per request."""
    return InferError(Code.UNIMPLEMENTED, _ONE_RESPONSE_ENDPOINTS[endpoint])


# The pod's scheduling choices the gateway's dynamic_batching never replaces in the config it
# serves: a stateful model's (not batched here) and an ensemble's steps (a oneof holds one).
_POD_SCHEDULING = ("sequence_batching", "ensemble_scheduling")


@dataclass(frozen=True)
class ModelSpec:
    """A model as the gateway serves it; immutable, replaced when the pods report a new one."""

    name: str
    platform: str
    max_batch_size: int
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    versions: tuple[str, ...] = ()
    pod_config: Any = field(default=None, compare=False)  # the pod's ModelConfig, if it had one
    described: bool = True  # False: the pod declares no signature; names and types pass through
    stateful: bool = False  # its config has sequence_batching: requests carry a sequence's state
    decoupled: bool = False  # model_transaction_policy.decoupled: 0..n responses per request

    @classmethod
    def from_config(
        cls,
        name: str,
        config: Any,
        max_batch_size: int | None = None,
        versions: tuple[str, ...] = (),
    ) -> ModelSpec:
        """From a pod's ModelConfig (``max_batch_size`` may lower the pod's) and the versions
        its metadata lists."""
        return cls(
            name=name,
            platform=config.platform or config.backend,
            max_batch_size=(
                config.max_batch_size
                if max_batch_size is None
                else min(config.max_batch_size, max_batch_size)
            ),
            inputs={
                t.name: TensorSpec(t.name, v2_type(t.data_type), tuple(t.dims), t.optional)
                for t in config.input
            },
            outputs={
                t.name: TensorSpec(t.name, v2_type(t.data_type), tuple(t.dims))
                for t in config.output
            },
            versions=versions or ("1",),
            pod_config=config,
            stateful=config.WhichOneof("scheduling_choice") == "sequence_batching",
            decoupled=config.model_transaction_policy.decoupled,
        )

    @classmethod
    def from_metadata(cls, name: str, metadata: Any, max_batch_size: int | None) -> ModelSpec:
        """From a pod's ModelMetadata, for pods that do not answer ModelConfig.

        Metadata does not say whether dim 0 is a batch dimension: with ``max_batch_size`` set
        (config), a leading -1 is taken as the batch dimension; without, no batching. Metadata
        that declares no inputs (MLServer's default) gives an undescribed spec: requests pass
        through with their own names and datatypes, dim 0 is the batch dimension only with
        ``max_batch_size`` set, and the pod judges the rest.
        """
        batch = max_batch_size or 0
        described = len(metadata.inputs) > 0
        if batch and described and not all(t.shape and t.shape[0] == -1 for t in metadata.inputs):
            batch = 0

        def spec(t: Any) -> TensorSpec:
            dims = tuple(t.shape[1:] if batch else t.shape)
            return TensorSpec(t.name, t.datatype, dims)

        return cls(
            name=name,
            platform=metadata.platform,
            max_batch_size=batch,
            inputs={t.name: spec(t) for t in metadata.inputs},
            outputs={t.name: spec(t) for t in metadata.outputs},
            versions=tuple(metadata.versions) or ("1",),
            described=described,
        )

    def shape_of(self, tensor: TensorSpec) -> list[int]:
        """The shape metadata shows: [-1] + dims when the model batches."""
        return [-1, *tensor.dims] if self.max_batch_size > 0 else list(tensor.dims)

    def metadata(self) -> Any:
        """This model as a v2 ModelMetadataResponse."""
        msg = pb.ModelMetadataResponse(
            name=self.name, versions=list(self.versions), platform=self.platform
        )
        for t in self.inputs.values():
            msg.inputs.add(name=t.name, datatype=t.datatype, shape=self.shape_of(t))
        for t in self.outputs.values():
            msg.outputs.add(name=t.name, datatype=t.datatype, shape=self.shape_of(t))
        return msg

    def config(self, batching: Any = None) -> Any:
        """This model as a Triton ModelConfig: the pod's, every field kept, renamed, with the
        max_batch_size in force and ``batching`` (DynamicBatchingSettings: the gateway's) as
        its dynamic_batching (the pod's own batcher is not what a request meets); a pod's
        sequence_batching or ensemble_scheduling stays (see _POD_SCHEDULING), and so does a
        decoupled model's batching (the gateway passes its requests through unbatched). Without
        a pod config,
        one built from the metadata."""
        out = mc.ModelConfig()
        if self.pod_config is not None:
            out.CopyFrom(self.pod_config)
        else:
            out.platform = self.platform
            for t in self.inputs.values():
                out.input.add(name=t.name, data_type=config_type(t.datatype), dims=t.dims)
            for t in self.outputs.values():
                out.output.add(name=t.name, data_type=config_type(t.datatype), dims=t.dims)
        out.name = self.name
        out.max_batch_size = self.max_batch_size
        if self.decoupled or out.WhichOneof("scheduling_choice") in _POD_SCHEDULING:
            return out
        out.ClearField("dynamic_batching")
        if batching is not None:
            _fill_batching(out.dynamic_batching, batching)
        return out

    def validate(self, request: SignedRequest, endpoint: str = "http") -> int:
        """Check a request that came on ``endpoint`` ("http", "grpc" or ``STREAM``) against the
        model; return its row count (1 without batching)."""
        self._check_served(endpoint)
        if not self.described:
            return self._validate_undescribed(request)
        rows = -1
        seen: set[str] = set()
        for tensor in request.inputs:
            spec = self.inputs.get(tensor.name)
            if spec is None:
                raise _bad(
                    f"unexpected input '{tensor.name}' for model '{self.name}'; "
                    f"it takes {sorted(self.inputs)}"
                )
            if tensor.name in seen:
                raise _bad(f"input '{tensor.name}' is given more than once")
            seen.add(tensor.name)
            if tensor.datatype != spec.datatype:
                raise _bad(
                    f"input '{tensor.name}' has datatype {tensor.datatype}, "
                    f"model '{self.name}' expects {spec.datatype}"
                )
            dims = tensor.shape
            if self.max_batch_size > 0:
                rows = self._batch_rows(tensor.name, dims, rows)
                dims = dims[1:]
            if not spec.accepts(dims):
                raise _bad(
                    f"input '{tensor.name}' has shape {list(tensor.shape)}, model "
                    f"'{self.name}' expects {self.shape_of(spec)}"
                )
        missing = [n for n, s in self.inputs.items() if n not in seen and not s.optional]
        if missing:
            raise _bad(f"model '{self.name}' needs input(s) {missing}, missing from the request")
        self._check_outputs(request)
        for wanted in request.outputs or ():
            if wanted.name not in self.outputs:
                raise _bad(
                    f"unknown output '{wanted.name}' requested; model '{self.name}' has "
                    f"{sorted(self.outputs)}"
                )
        return max(rows, 1) if self.max_batch_size > 0 else 1

    @staticmethod
    def _check_outputs(request: SignedRequest) -> None:
        """Each output asked for once (as Triton refuses a repeat: the pod would answer it
        twice), and none for classes: the gateway does not serve Triton's classification
        extension, so it refuses it rather than answer the raw tensor in its place."""
        asked: set[str] = set()
        for wanted in request.outputs or ():
            if wanted.name in asked:
                raise _bad(f"output '{wanted.name}' is requested more than once")
            asked.add(wanted.name)
            if wanted.classification:
                raise _bad(
                    f"output '{wanted.name}' asks for classification (the top "
                    f"{wanted.classification} classes): the gateway does not support Triton's "
                    "classification extension; ask for the raw output"
                )

    def _check_served(self, endpoint: str) -> None:
        """Refuse every request of a model the gateway cannot serve: a stateful one (a
        sequence's requests would need one pod, alone, in order; batched across pods they mix
        sequences, and the gateway does not forward sequence parameters), and a decoupled
        one's on an endpoint of one response per request (as Triton refuses it: only
        ModelStreamInfer takes them). Sequence parameters to any other model pass, as Triton
        takes them (and, like the other request parameters, are not sent on)."""
        if self.stateful:
            raise _bad(
                f"model '{self.name}' is stateful (sequence_batching): stateful models are not "
                "served through the gateway yet: send to the pod directly"
            )
        if self.decoupled and endpoint != STREAM:
            raise decoupled_refusal(endpoint)

    def _validate_undescribed(self, request: SignedRequest) -> int:
        """A model without a signature: only unique names, no classification and, when it
        batches, a batch dimension within max_batch_size that the inputs agree on."""
        seen: set[str] = set()
        rows = -1
        for tensor in request.inputs:
            if tensor.name in seen:
                raise _bad(f"input '{tensor.name}' is given more than once")
            seen.add(tensor.name)
            if self.max_batch_size > 0:
                rows = self._batch_rows(tensor.name, tensor.shape, rows)
        self._check_outputs(request)
        return max(rows, 1) if self.max_batch_size > 0 else 1

    def _batch_rows(self, name: str, shape: tuple[int, ...], rows: int) -> int:
        if not shape:
            raise _bad(f"input '{name}' has no batch dimension")
        n = shape[0]
        if n < 1:
            raise _bad(f"input '{name}' has batch size {n}; it must be at least 1")
        if n > self.max_batch_size:
            raise _bad(
                f"input '{name}' has batch size {n}, more than model "
                f"'{self.name}' max_batch_size {self.max_batch_size}"
            )
        if rows not in (-1, n):
            raise _bad(f"inputs disagree on the batch size ({rows} and {n})")
        return n


def _fill_queue_policy(target: Any, policy: Any) -> None:
    target.max_queue_size = policy.max_queue_size
    target.default_timeout_microseconds = policy.default_timeout_microseconds
    target.allow_timeout_override = policy.allow_timeout_override
    target.timeout_action = mc.ModelQueuePolicy.TimeoutAction.Value(policy.timeout_action)


def _fill_batching(target: Any, batching: Any) -> None:
    target.SetInParent()
    target.preferred_batch_size.extend(batching.preferred_batch_size)
    target.max_queue_delay_microseconds = batching.max_queue_delay_microseconds
    target.priority_levels = batching.priority_levels
    target.default_priority_level = batching.default_priority_level
    _fill_queue_policy(target.default_queue_policy, batching.default_queue_policy)
    for level, policy in batching.priority_queue_policy.items():
        _fill_queue_policy(target.priority_queue_policy[level], policy)
