"""Open paths: which REST routes and gRPC calls go without a key."""

from __future__ import annotations

import pytest

from gateway.tenants.directory import TenantDirectory
from gateway.tenants.settings import AuthSettings

DEFAULT = TenantDirectory([], AuthSettings(required=True))


def only(*paths: str) -> TenantDirectory:
    return TenantDirectory([], AuthSettings(required=True, open_paths=list(paths)))


@pytest.mark.parametrize(
    "path",
    [
        "/v2/health/live",
        "/v2/health/ready",
        "/v2",
        "/v2/models/sim",
        "/v2/models/sim/ready",
        "/v2/models/sim/config",
        "/v2/models/sim/versions/3",
        "/v2/models/sim/versions/3/ready",
        "/v2/models/sim/versions/3/config",
        "/v2/models/sim%2Dx/ready",  # percent-decoded per segment, as the router does
        "/v2/health/%6Cive",
        "/v2/health/live?verbose=1",
    ],
)
def test_default_open_paths_are_health_readiness_and_metadata(path: str) -> None:
    assert DEFAULT.is_open("GET", path)
    assert DEFAULT.is_open("HEAD", path)


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/sim/infer",
        "/v2/models/sim/versions/3/infer",
        "/v2/models/sim/stats",
        "/v2/models/stats",  # every model's statistics, a literal route: not a model named stats
        "/v2/repository/index",
        "/v2/",
        "/v2/models//ready",
        "/v2/models/a%2Fb/ready",
        "/v2/models/sim/versions//ready",
        "/v2/health",
        "/v2/health/live/x",
        "/metrics",
        "/",
        "",
    ],
)
def test_other_paths_need_a_key(path: str) -> None:
    assert not DEFAULT.is_open("GET", path)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_only_get_and_head_are_open(method: str) -> None:
    assert not DEFAULT.is_open(method, "/v2/health/ready")


def test_only_the_listed_templates_are_open() -> None:
    d = only("/v2/health/ready", "/v2/models/{model}/stats")
    assert d.is_open("GET", "/v2/health/ready")
    assert d.is_open("GET", "/v2/models/sim/stats")
    assert d.is_open("GET", "/v2/models/sim/versions/1/stats")
    assert not d.is_open("GET", "/v2/health/live")
    assert not d.is_open("GET", "/v2/models/sim")


def test_a_listed_versioned_template_is_open_by_itself() -> None:
    d = only("/v2/models/{model}/versions/{version}/ready")
    assert d.is_open("GET", "/v2/models/sim/versions/1/ready")
    assert not d.is_open("GET", "/v2/models/sim/ready")


def test_a_literal_route_listed_literally_is_open() -> None:
    d = only("/v2/models/stats", "/v2/models/sim")
    assert d.is_open("GET", "/v2/models/stats")
    assert d.is_open("GET", "/v2/models/sim")
    assert d.is_open("GET", "/v2/models/sim/versions/2")
    assert not d.is_open("GET", "/v2/models/other")
    assert not d.is_open("GET", "/v2/models/stats/versions/1")


def test_nothing_is_open_with_an_empty_list() -> None:
    d = only()
    assert not d.is_open("GET", "/v2/health/live")
    assert not d.is_open_rpc("ServerLive")


@pytest.mark.parametrize(
    "rpc",
    [
        "ServerLive",
        "ServerReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelReady",
        "ModelConfig",
        "/inference.GRPCInferenceService/ModelReady",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
    ],
)
def test_default_open_rpcs_mirror_the_open_paths(rpc: str) -> None:
    assert DEFAULT.is_open_rpc(rpc)


@pytest.mark.parametrize(
    "rpc",
    [
        "ModelInfer",
        "ModelStreamInfer",
        "/inference.GRPCInferenceService/ModelInfer",
        "ModelStatistics",
        "RepositoryIndex",
        "/other.Service/ServerLive",
        "",
    ],
)
def test_other_rpcs_need_a_key(rpc: str) -> None:
    assert not DEFAULT.is_open_rpc(rpc)


def test_model_statistics_is_open_when_its_template_is_listed() -> None:
    d = only("/v2/models/{model}/stats")
    assert d.is_open_rpc("ModelStatistics")
    assert not d.is_open_rpc("ServerLive")


def test_inference_is_never_open_even_if_listed() -> None:
    d = only("/v2/models/{model}/infer")
    assert not d.is_open_rpc("ModelInfer")
    assert not d.is_open_rpc("ModelStreamInfer")
    assert not d.is_open("POST", "/v2/models/sim/infer")
