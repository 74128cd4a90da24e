"""A tenant's quota and priority ceiling as a model admits its request: the quota takes the rows
first (else RESOURCE_EXHAUSTED, reason quota), then a ``priority`` above the tenant's
``max_priority`` (a smaller level) is served at the ceiling, the model's default level resolved
first; and, through a gateway over a stalled fake pod, the level each request queues at."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from gateway.config import DynamicBatchingSettings, ModelSettings, parse_config
from gateway.core import Gateway
from gateway.errors import Code, InferError
from gateway.metrics import GatewayMetrics
from gateway.models.runtime import ModelRuntime
from gateway.observe.request import RequestInfo
from gateway.tenants.directory import Tenant, TenantDirectory
from gateway.tenants.settings import AuthSettings, TenantSettings
from protos.infer import InferRequestBody
from protos.tensors import from_numpy
from tests.fakes.clock import Clock
from tests.fakes.gateway_pods import fake_pods
from tests.fakes.pod_client import FakePods
from tests.fakes.reports import until

POD = "10.0.0.1:8001"
KEYS = {"capped": "key-capped", "free": "key-free", "quota": "key-quota"}


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tenants(clock: Clock | None = None) -> TenantDirectory:
    """``capped``: max_priority 2; ``free``: no ceiling; ``quota``: 1 row/s, a burst of 2."""
    settings = [
        TenantSettings(name="capped", api_key_sha256=[sha(KEYS["capped"])], max_priority=2),
        TenantSettings(name="free", api_key_sha256=[sha(KEYS["free"])]),
        TenantSettings(
            name="quota",
            api_key_sha256=[sha(KEYS["quota"])],
            max_rows_per_s=1.0,
            burst_rows=2,
            max_priority=2,
        ),
    ]
    return TenantDirectory(settings, AuthSettings(required=True), clock=clock or Clock())


def runtime(directory: TenantDirectory, batching: DynamicBatchingSettings | None) -> ModelRuntime:
    settings = ModelSettings(name="sim", dynamic_batching=batching)
    return ModelRuntime(settings, metrics=GatewayMetrics(), probe_interval_s=1, tenants=directory)


def levels(count: int = 3, default: int = 2) -> DynamicBatchingSettings:
    return DynamicBatchingSettings(priority_levels=count, default_priority_level=default)


def admitted(
    model: ModelRuntime, name: str, parameters: dict[str, Any], rows: int = 1
) -> dict[str, Any]:
    """The request's parameters once ``name``'s request of ``rows`` is admitted."""
    assert model.tenants is not None
    tenant = model.tenants.identify(f"Bearer {KEYS[name]}")
    body = InferRequestBody([], parameters=dict(parameters))
    model._admit_tenant(tenant, body, rows)
    return body.parameters


@pytest.mark.parametrize(
    ("parameters", "served"),
    [
        ({"priority": 1}, 2),  # above the ceiling: served at it
        ({"priority": 2}, 2),
        ({"priority": 3}, 3),  # below it: as asked
        ({}, 2),  # the model's default level, 2, within the ceiling
        ({"priority": 0}, 2),  # 0 is the default level too
    ],
)
def test_a_capped_tenants_priority_is_never_above_its_ceiling(
    parameters: dict[str, Any], served: int
) -> None:
    model = runtime(tenants(), levels(3, 2))
    assert admitted(model, "capped", parameters) == {"priority": served}


@pytest.mark.parametrize(("default", "served"), [(1, 2), (3, 3), (0, 3)])
def test_the_models_default_level_is_resolved_before_the_ceiling(default: int, served: int) -> None:
    """Default 1 is above the ceiling of 2; 3 is below it; 0 (unset) is the lowest, 3."""
    model = runtime(tenants(), levels(3, default))
    assert admitted(model, "capped", {}) == {"priority": served}


@pytest.mark.parametrize("parameters", [{}, {"priority": 1}, {"priority": 3}])
def test_a_tenant_without_a_ceiling_keeps_its_parameters(parameters: dict[str, Any]) -> None:
    model = runtime(tenants(), levels(3, 2))
    assert admitted(model, "free", parameters) == parameters


@pytest.mark.parametrize(
    "batching", [None, DynamicBatchingSettings(), levels(0, 0)], ids=["none", "default", "zero"]
)
@pytest.mark.parametrize("parameters", [{}, {"priority": 1}])
def test_a_model_without_priority_levels_leaves_the_parameters_untouched(
    batching: DynamicBatchingSettings | None, parameters: dict[str, Any]
) -> None:
    model = runtime(tenants(), batching)
    assert admitted(model, "capped", parameters) == parameters


@pytest.mark.parametrize("asked", ["high", True, 1.0, None])
def test_a_priority_that_is_not_an_integer_is_left_for_the_queue_to_refuse(asked: Any) -> None:
    model = runtime(tenants(), levels(3, 2))
    assert admitted(model, "capped", {"priority": asked}) == {"priority": asked}


def test_over_quota_is_resource_exhausted_with_the_wait_and_the_priority_untouched() -> None:
    clock = Clock()
    model = runtime(tenants(clock), levels(3, 2))
    assert admitted(model, "quota", {"priority": 1}, rows=2) == {"priority": 2}
    with pytest.raises(InferError) as caught:
        admitted(model, "quota", {"priority": 1}, rows=1)
    error = caught.value
    assert (error.code, error.reason) == (Code.RESOURCE_EXHAUSTED, "quota")
    assert error.retry_after_s == pytest.approx(1.0)  # the fake clock's: one row at 1 row/s
    assert "quota" in error.message and "1 rows/s (burst 2)" in error.message
    clock.advance(1.0)
    assert admitted(model, "quota", {"priority": 1}) == {"priority": 2}


def test_a_request_over_the_burst_is_refused_with_no_wait() -> None:
    model = runtime(tenants(), levels(3, 2))
    with pytest.raises(InferError) as caught:
        admitted(model, "quota", {}, rows=3)
    error = caught.value
    assert (error.code, error.reason, error.retry_after_s) == (
        Code.RESOURCE_EXHAUSTED,
        "quota",
        None,
    )
    assert "at most 2 rows at once" in error.message


# Through a gateway: where each request queues while the one pod holds the first batch.


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> FakePods:
    """Every pod the gateway makes is a fake, and describes the model as ``model_spec``."""
    return fake_pods(monkeypatch)


@pytest.fixture
async def gateway(fakes: FakePods) -> AsyncIterator[Gateway]:
    """One model of 3 levels (default 2) on one pod of one slot, and the three tenants."""
    config = parse_config(
        {
            "tenants": [
                {"name": "capped", "api_key_sha256": [sha(KEYS["capped"])], "max_priority": 2},
                {"name": "free", "api_key_sha256": [sha(KEYS["free"])]},
            ],
            "auth": {"required": True},
            "models": [
                {
                    "name": "sim",
                    "endpoints": [POD],
                    "max_inflight_per_pod": 1,
                    "dynamic_batching": {"priority_levels": 3, "default_priority_level": 2},
                }
            ],
        }
    )
    gw = Gateway(config)
    await gw.start()
    try:
        await until(lambda: gw.models["sim"].ready)
        yield gw
    finally:
        await gw.stop()


def queued(gw: Gateway) -> dict[int, int]:
    """Requests queued at each priority level (1..3)."""
    state = gw.models["sim"].scheduler.state(time.monotonic())
    return {level: requests for level, requests, _ in state.levels if level > 0}


def joined(gw: Gateway, expected: dict[int, int]) -> Callable[[], bool]:
    """Whether the queue's levels hold ``expected`` requests now."""
    return lambda: queued(gw) == expected


def send(gw: Gateway, key: str, parameters: dict[str, Any]) -> asyncio.Task[Any]:
    """One 1-row request of the tenant of ``key``, as a front-end sends it."""
    tenant: Tenant = gw.tenants.identify(f"Bearer {key}")
    info = RequestInfo("http", time.perf_counter_ns(), tenant=tenant)
    x = np.ones((1, 4), np.float32)
    body = InferRequestBody([from_numpy("INPUT0", "FP32", x)], parameters=dict(parameters))
    return asyncio.ensure_future(gw.infer("http", "sim", "", body, 30.0, info))


async def test_each_request_queues_at_its_level_after_the_ceiling(
    gateway: Gateway, fakes: FakePods
) -> None:
    fakes[POD].stall = True
    tasks = [send(gateway, KEYS["free"], {"priority": 3})]  # the pod's one slot, held
    try:
        await until(lambda: fakes[POD].holding == 1)
        cases = [
            ("capped", {"priority": 1}, 2),
            ("capped", {"priority": 3}, 3),
            ("capped", {}, 2),
            ("free", {"priority": 1}, 1),
            ("free", {}, 2),
        ]
        for name, parameters, level in cases:
            before = queued(gateway)
            tasks.append(send(gateway, KEYS[name], parameters))
            await until(joined(gateway, {**before, level: before[level] + 1}))
        assert queued(gateway) == {1: 1, 2: 3, 3: 1}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize(
    ("parameters", "served"), [({}, 2), ({"priority": 1}, 2), ({"priority": 5}, 5)]
)
def test_a_ceiling_below_the_models_lowest_level_serves_at_the_lowest(
    parameters: dict[str, Any], served: int
) -> None:
    """A tenant capped at 2 (``capped``) calling a model of two levels is served at its lowest
    level, 2; one of max_priority 5 on it too; a level that does not exist stays refused."""
    model = runtime(tenants(), levels(2, 1))
    assert admitted(model, "capped", parameters) == {"priority": served}
    deep = TenantDirectory(
        [TenantSettings(name="deep", api_key_sha256=[sha("deep-key")], max_priority=5)],
        AuthSettings(required=True),
    )
    model = runtime(deep, levels(2, 1))
    tenant = deep.identify("Bearer deep-key")
    body = InferRequestBody([], parameters=dict(parameters))
    model._admit_tenant(tenant, body, 1)
    assert body.parameters == {"priority": served}
