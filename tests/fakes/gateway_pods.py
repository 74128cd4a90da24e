"""A whole in-process gateway over fake pods: every pod client it makes is a ``FakePodClient``
and every pod describes the model as ``model_spec()`` (FP32 INPUT0 [-1, 4] -> OUTPUT0, batch 8)."""

from __future__ import annotations

import pytest

from gateway.config import ModelSettings
from gateway.models import runtime as runtime_module
from gateway.models.spec import ModelSpec
from gateway.routing.pod_set import Pod
from protos import model_config_pb2 as mc
from tests.fakes.pod_client import FakePods

__all__ = ["fake_pods", "model_spec"]


def model_spec() -> ModelSpec:
    described = mc.ModelConfig(name="sim", platform="simulated", max_batch_size=8)
    described.input.add(name="INPUT0", data_type=mc.TYPE_FP32, dims=[4])
    described.output.add(name="OUTPUT0", data_type=mc.TYPE_FP32, dims=[4])
    return ModelSpec.from_config("sim", described)


def fake_pods(monkeypatch: pytest.MonkeyPatch) -> FakePods:
    """Make every pod the gateway makes a fake (by address), described as ``model_spec``."""
    pods = FakePods()

    async def describe(pod: Pod, name: str, settings: ModelSettings) -> ModelSpec:
        return model_spec()

    monkeypatch.setattr(runtime_module, "client_factory", lambda protocol, tls=None: pods)
    monkeypatch.setattr(runtime_module, "describe_pod", describe)
    return pods
