"""Learning a model from its pods: one pod's description, and which description is in force.

Each pod is described (ModelMetadata, then ModelConfig) every time it becomes ready, and again
whenever its connection is lost and made anew (a restart quicker than a probe interval). The rule
for the spec in force: the first description is taken as it comes; after that, a different
description replaces it once every ready pod that has described itself agrees on it (a pod
restarted with a new signature, or the last old pod of a rolling update gone). While the
ready pods disagree the spec in force stays, a warning names both signatures, and the gauge
``gateway_model_signatures`` counts the distinct ones.
"""

from __future__ import annotations

import logging

from gateway.config import ModelSettings
from gateway.models.spec import ModelSpec, TensorSpec
from gateway.routing.pod_set import Pod

__all__ = ["Descriptions", "describe_pod", "signature_text"]

log = logging.getLogger(__name__)


async def describe_pod(pod: Pod, name: str, settings: ModelSettings) -> ModelSpec:
    """The model as ``pod`` describes it: from its ModelConfig, else its ModelMetadata."""
    timeout = settings.connect_timeout_ms / 1000
    metadata = await pod.client.model_metadata(timeout)
    config = await pod.client.model_config(timeout)
    if config is not None:
        return ModelSpec.from_config(
            name, config, settings.max_batch_size, tuple(metadata.versions)
        )
    return ModelSpec.from_metadata(name, metadata, settings.max_batch_size)


def signature_text(spec: ModelSpec) -> str:
    """A spec's signature for a log line: max_batch_size, inputs and outputs (and whether the
    model is stateful, whose requests the gateway refuses, or decoupled, whose requests it
    passes through unbatched on ModelStreamInfer only)."""
    if not spec.described:
        return f"max_batch_size {spec.max_batch_size}, no declared signature"

    def side(tensors: dict[str, TensorSpec]) -> str:
        return ", ".join(f"{t.name} {t.datatype} {spec.shape_of(t)}" for t in tensors.values())

    text = (
        f"max_batch_size {spec.max_batch_size}, inputs [{side(spec.inputs)}], "
        f"outputs [{side(spec.outputs)}]"
    )
    if spec.stateful:
        text += ", stateful"
    if spec.decoupled:
        text += ", decoupled"
    return text


class Descriptions:
    """The latest description of each pod since it last became ready."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._by_pod: dict[str, ModelSpec] = {}

    def forget(self, address: str) -> None:
        """Drop a pod's description (it is being described again)."""
        self._by_pod.pop(address, None)

    def record(self, address: str, spec: ModelSpec) -> None:
        self._by_pod[address] = spec

    def distinct(self, ready: set[str]) -> list[ModelSpec]:
        """The distinct descriptions among the ``ready`` pods, oldest first."""
        out: list[ModelSpec] = []
        for address, spec in self._by_pod.items():
            if address in ready and spec not in out:
                out.append(spec)
        return out

    def choose(self, current: ModelSpec | None, newest: ModelSpec, ready: set[str]) -> ModelSpec:
        """The spec in force after ``newest`` (or a change of the ready pods, ``newest`` then
        being the current spec): see the module's rule."""
        if current is None:
            return newest
        specs = self.distinct(ready)
        if len(specs) == 1 and specs[0] != current:
            log.warning(
                "model %s: the ready pods now describe %s (was %s); serving the new signature",
                self.model,
                signature_text(specs[0]),
                signature_text(current),
            )
            return specs[0]
        if newest != current:
            log.warning(
                "model %s: pods disagree on the signature: %s and %s; serving %s until every "
                "ready pod agrees",
                self.model,
                signature_text(newest),
                signature_text(current),
                "the latter",
            )
        return current
