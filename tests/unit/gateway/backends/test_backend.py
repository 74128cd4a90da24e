"""A model's ``backend_protocol``: the client each of its pods gets, validated in the config, and
switched on a live reload."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.backends.backend import client_factory
from gateway.backends.http_pod import HttpPodClient
from gateway.backends.pod_client import PodClient
from gateway.config import ModelSettings
from gateway.metrics import GatewayMetrics
from gateway.models.runtime import ModelRuntime


async def test_each_protocol_has_its_client() -> None:
    grpc_client = client_factory("grpc")("10.0.0.1:8001", "m")
    http_client = client_factory("http")("10.0.0.1:8000", "m")
    try:
        assert isinstance(grpc_client, PodClient) and isinstance(http_client, HttpPodClient)
        assert (http_client.address, http_client.model) == ("10.0.0.1:8000", "m")
    finally:
        await grpc_client.close()
        await http_client.close()


def test_an_unknown_protocol_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="grpc"):
        client_factory("quic")
    with pytest.raises(ValidationError, match="backend_protocol"):
        ModelSettings(name="m", backend_protocol="quic")  # type: ignore[arg-type]


def test_grpc_is_the_default() -> None:
    assert ModelSettings(name="m").backend_protocol == "grpc"


async def test_a_reload_to_the_other_protocol_gives_every_pod_a_client_of_it() -> None:
    endpoints = ["10.0.0.1:8000", "10.0.0.2:8000"]
    settings = ModelSettings(name="m", endpoints=endpoints)
    runtime = ModelRuntime(settings, metrics=GatewayMetrics(), probe_interval_s=10)
    try:
        assert all(isinstance(p.client, PodClient) for p in runtime.pods.pods)
        old = runtime.pods.pods
        runtime.update(settings.model_copy(update={"backend_protocol": "http"}))
        pods = runtime.pods.pods
        assert sorted(p.address for p in pods) == endpoints
        assert all(isinstance(p.client, HttpPodClient) for p in pods)
        assert not any(p in old for p in pods)  # new pods, probed before they get a batch
        assert not any(p.ready for p in pods)
    finally:
        await runtime.stop()
