"""Tenants on a real gateway process: API keys (inline digests and a key file revoked while it
runs), the models each tenant may call, quotas, the open paths, and the per-tenant metrics,
over HTTP and gRPC. (The same with the official tritonclient: tests/compat.)"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest

from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from tests.integration.gateway.test_stalled_pod import scrape
from tests.integration.tenants.calls import grpc_infer, post

BOUND_S = 15.0  # an upper bound to fail on, never a measured time
KEYS = {"team-a": "key-of-a", "team-b": "key-of-b", "team-c": "key-of-c"}
FILE_KEY = "key-from-the-file"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Stack:
    gateway: GatewayProc
    pod: PodProc
    key_file: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    key_file = tmp_path_factory.mktemp("keys") / "team-d.keys"
    key_file.write_text(f"# team d's keys\n{digest(FILE_KEY)}\n")
    pod = start_pod(["--fixed-ms", "2", "--per-row-ms", "0.05"])
    tenants = [
        {
            "name": "team-a",
            "api_key_sha256": [digest(KEYS["team-a"])],
            "models": ["sim"],
            "max_rows_per_s": 0.2,
            "burst_rows": 3,
        },
        {"name": "team-b", "api_key_sha256": [digest(KEYS["team-b"]).upper()], "models": ["*"]},
        {"name": "team-c", "api_key_sha256": [digest(KEYS["team-c"])], "models": ["other"]},
        {"name": "team-d", "api_keys_file": str(key_file)},
    ]
    extra = {"tenants": tenants, "auth": {"required": True}}
    settings = {"name": "sim", "endpoints": [pod.grpc_address]}
    gw = start_gateway([settings], extra=extra, args=["--reload-interval-s", "0.2"])
    try:
        yield Stack(gw, pod, key_file)
    finally:
        gw.stop()
        pod.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_a_known_key_is_served_over_both_protocols(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    status, _, text = await post(session, stack.gateway, KEYS["team-b"])
    assert status == 200, text
    assert await grpc_infer(stack.gateway, KEYS["team-b"]) is grpc.StatusCode.OK


async def test_no_key_or_an_unknown_key_is_401_unauthenticated(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    status, headers, text = await post(session, stack.gateway, None)
    assert status == 401 and "API key" in text
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, _, text = await post(session, stack.gateway, "not-a-key")
    assert status == 401 and "not-a-key" not in text  # never echoed
    assert await grpc_infer(stack.gateway, None) is grpc.StatusCode.UNAUTHENTICATED
    assert await grpc_infer(stack.gateway, "not-a-key") is grpc.StatusCode.UNAUTHENTICATED


async def test_a_model_outside_the_tenants_list_is_403_served_or_not(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    for model in ("sim", "no-such-model"):
        status, _, text = await post(session, stack.gateway, KEYS["team-c"], model)
        assert status == 403 and "team-c" in text, text
        assert (
            await grpc_infer(stack.gateway, KEYS["team-c"], model)
            is grpc.StatusCode.PERMISSION_DENIED
        )
    status, _, _ = await post(session, stack.gateway, KEYS["team-b"], "no-such-model")
    assert status == 404  # a "*" tenant learns the model is not served


async def test_over_quota_is_429_with_retry_after_and_another_tenant_is_unaffected(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    statuses = []
    for _ in range(4):  # a burst of 3 rows, refilled at 0.2 rows/s
        status, headers, text = await post(session, stack.gateway, KEYS["team-a"])
        statuses.append(status)
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429, statuses
    assert int(headers["Retry-After"]) >= 1 and "team-a" in text and "rows/s" in text
    assert (await post(session, stack.gateway, KEYS["team-b"]))[0] == 200
    assert await grpc_infer(stack.gateway, KEYS["team-a"]) is grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_key_removed_from_the_file_is_refused_while_the_gateway_runs(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    assert (await post(session, stack.gateway, FILE_KEY))[0] == 200
    stack.key_file.write_text("# revoked\n")
    end = time.monotonic() + BOUND_S
    while (await post(session, stack.gateway, FILE_KEY))[0] != 401:
        assert time.monotonic() < end, "the revoked key is still served"
        await asyncio.sleep(0.1)
    assert await grpc_infer(stack.gateway, FILE_KEY) is grpc.StatusCode.UNAUTHENTICATED


async def test_health_readiness_and_metadata_stay_open(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    base = stack.gateway.http_url
    for path in (
        "/v2/health/live",
        "/v2/health/ready",
        "/v2",
        "/v2/models/sim",
        "/v2/models/sim/ready",
        "/v2/models/sim/config",
    ):
        async with session.get(base + path) as resp:
            assert resp.status == 200, path
    async with session.get(f"{base}/v2/models/sim/stats") as resp:
        assert resp.status == 401  # statistics are not in the open paths
    async with grpc.aio.insecure_channel(stack.gateway.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
        assert (await stub.ModelReady(pb.ModelReadyRequest(name="sim"))).ready
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ModelStatistics(pb.ModelStatisticsRequest(name="sim"))
        assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_the_metrics_count_by_tenant_and_the_metrics_port_takes_no_key(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    assert (await post(session, stack.gateway, KEYS["team-b"]))[0] == 200
    await post(session, stack.gateway, KEYS["team-c"])  # 403
    await post(session, stack.gateway, None)  # 401: counted with no tenant
    metrics = await asyncio.to_thread(scrape, stack.gateway.metrics_url)  # no key asked
    assert (metrics.total("gateway_tenant_requests_total", tenant="team-b") or 0) >= 1
    assert (metrics.total("gateway_tenant_rows_total", tenant="team-b") or 0) >= 1
    forbidden = metrics.total("gateway_tenant_rejections_total", tenant="team-c")
    assert (forbidden or 0) >= 1
    assert (metrics.total("gateway_auth_failures_total", protocol="http") or 0) >= 1
    tenants = set(metrics.by_label("gateway_tenant_requests_total", "tenant"))
    assert tenants <= {"team-a", "team-b", "team-c", "team-d", "anonymous"}  # bounded
