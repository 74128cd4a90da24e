"""Tenants with the official clients: API keys sent as ``headers=`` by all four tritonclient
clients and as ``-H`` by perf_analyzer, against one gateway with ``auth.required``.

gRPC metadata keys must be lower case (grpc refuses ``Authorization`` before sending it), so the
gRPC clients send ``authorization: Bearer KEY``; HTTP sends ``Authorization: Bearer KEY``.
The same over aiohttp/grpcio, with the metrics: tests/integration/tenants/test_auth.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _compat import CLIENT_KINDS, V2, Target, raw_http
from test_perf_analyzer import TIMEOUT_S, Run, _command, kill_unfinished, perf_analyzer
from tritonclient.utils import InferenceServerException

from loadtest.stack import procs

BOUND_S = 15.0  # an upper bound to fail on, never a measured time
FULL_KEY = "key-of-full"  # tenant "full": every model, no quota
NARROW_KEY = "key-of-narrow"  # tenant "narrow": only model "other"
KEPT_FILE_KEY = "file-key-kept"  # in the key file, never revoked
STATUS = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429}
PERF_CONCURRENCY = range(1, 3)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def quota_key(kind: str) -> str:
    return f"key-of-quota-{kind}"


def file_key(kind: str) -> str:
    return f"file-key-{kind}"


class Stack:
    """The gateway with tenants, and its key file (rewritten, as a Secret is, to revoke)."""

    def __init__(self, gw: procs.GatewayProc, key_file: Path) -> None:
        self.gateway = gw
        self.target = Target("gateway", gw.http_url.removeprefix("http://"), gw.grpc_address)
        self.key_file = key_file
        self.file_keys = {KEPT_FILE_KEY, *(file_key(k) for k in CLIENT_KINDS)}
        self.write_keys()

    def write_keys(self) -> None:
        lines = ["# the file tenant's keys", *(digest(k) for k in sorted(self.file_keys))]
        tmp = self.key_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.key_file)

    def revoke(self, key: str) -> None:
        self.file_keys.discard(key)
        self.write_keys()


@pytest.fixture(scope="module")
def stack(sim_pod: procs.PodProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    key_file = tmp_path_factory.mktemp("keys") / "file-tenant.keys"
    key_file.write_text(f"{digest(KEPT_FILE_KEY)}\n")
    tenants: list[dict[str, Any]] = [
        {"name": "full", "api_key_sha256": [digest(FULL_KEY)], "models": ["*"]},
        {"name": "narrow", "api_key_sha256": [digest(NARROW_KEY)], "models": ["other"]},
        {"name": "file", "api_keys_file": str(key_file), "models": ["*"]},
    ]
    # One quota tenant per client kind, so each kind starts with a full bucket of 2 rows
    # (refilled at 0.05 rows/s: one row per 20 s).
    tenants += [
        {
            "name": f"quota-{k}",
            "api_key_sha256": [digest(quota_key(k))],
            "models": ["sim"],
            "max_rows_per_s": 0.05,
            "burst_rows": 2,
        }
        for k in CLIENT_KINDS
    ]
    models = [{"name": "sim", "endpoints": [sim_pod.grpc_address]}]
    extra = {"tenants": tenants, "auth": {"required": True}}
    gw = procs.start_gateway(models, extra=extra, args=["--reload-interval-s", "0.2"])
    try:
        yield Stack(gw, key_file)
    finally:
        gw.stop()


@pytest.fixture
async def tc(kind: str, stack: Stack) -> AsyncIterator[V2]:
    """Each official client against the tenants' gateway."""
    c = V2(kind, stack.target)
    yield c
    await c.close()


def bearer(protocol: str, key: str | None) -> dict[str, str] | None:
    if key is None:
        return None
    return {("Authorization" if protocol == "http" else "authorization"): f"Bearer {key}"}


async def infer(c: V2, key: str | None, model: str = "sim") -> np.ndarray:
    """OUTPUT0 of one random row sent with ``key``, checked to be 2 x INPUT0."""
    x = np.random.default_rng().standard_normal((1, 16)).astype(np.float32)
    inputs = c.make_inputs([("INPUT0", x, "FP32")])
    raw = await c.call("infer", model, inputs, headers=bearer(c.protocol, key))
    out = raw.as_numpy("OUTPUT0")
    assert out is not None, "OUTPUT0 missing from the response"
    np.testing.assert_array_equal(out, 2 * x)
    return np.asarray(out)


async def refused(c: V2, key: str | None, status: str, *words: str, model: str = "sim") -> str:
    """Infer with ``key``; check that it is refused with ``status`` (gRPC name, or its HTTP code)
    and a message naming every one of ``words``. Returns the message."""
    try:
        await infer(c, key, model)
    except InferenceServerException as exc:
        want = str(STATUS[status]) if c.protocol == "http" else f"StatusCode.{status}"
        message = exc.message() or ""
        assert exc.status() == want, f"expected {want}, got {exc.status()}: {message!r}"
        for word in words:
            assert word.lower() in message.lower(), f"{message!r} does not name {word!r}"
        return message
    raise AssertionError(f"expected {status}, the call with key {key!r} was served")


# -- keys ---------------------------------------------------------------------------------------


async def test_the_right_key_is_served(tc: V2) -> None:
    await infer(tc, FULL_KEY)
    await infer(tc, KEPT_FILE_KEY)  # a key from the file


async def test_no_key_is_401_unauthenticated(tc: V2) -> None:
    await refused(tc, None, "UNAUTHENTICATED", "API key")


async def test_a_wrong_key_is_401_unauthenticated_and_not_echoed(tc: V2) -> None:
    message = await refused(tc, "not-a-key", "UNAUTHENTICATED", "API key")
    assert "not-a-key" not in message


async def test_health_and_metadata_are_open_without_a_key(tc: V2) -> None:
    assert await tc.live()
    assert await tc.ready()
    assert await tc.model_ready("sim")
    assert "name" in await tc.server_metadata()
    meta = await tc.model_metadata("sim")
    assert meta["name"] == "sim" and [i["name"] for i in meta["inputs"]] == ["INPUT0"]
    assert (await tc.model_config("sim"))["name"] == "sim"


async def test_statistics_need_a_key(tc: V2) -> None:
    exc = await tc.error("get_inference_statistics", "sim")
    assert exc is not None, "statistics were served without a key"
    want = "401" if tc.protocol == "http" else "StatusCode.UNAUTHENTICATED"
    assert exc.status() == want, exc
    await tc.call("get_inference_statistics", "sim", headers=bearer(tc.protocol, FULL_KEY))


# -- models -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["sim", "no-such-model"])
async def test_a_model_outside_the_tenants_list_is_403(tc: V2, model: str) -> None:
    await refused(tc, NARROW_KEY, "PERMISSION_DENIED", "narrow", model, model=model)


# -- quota --------------------------------------------------------------------------------------


async def test_over_quota_is_429_while_another_tenant_is_served(tc: V2, stack: Stack) -> None:
    key = quota_key(tc.kind)
    await infer(tc, key)  # the burst of 2 rows
    await infer(tc, key)
    await refused(tc, key, "RESOURCE_EXHAUSTED", f"quota-{tc.kind}", "rows/s")
    await infer(tc, FULL_KEY)  # another tenant is unaffected
    if tc.protocol == "http":  # tritonclient hides the headers: Retry-After over plain HTTP
        row = {"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": [1.0] * 16}
        status, headers, _ = raw_http(
            "POST",
            f"{stack.gateway.http_url}/v2/models/sim/infer",
            json.dumps({"inputs": [row]}).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        assert status == 429 and int(headers["Retry-After"]) >= 1, (status, headers)


# -- revocation ---------------------------------------------------------------------------------


async def test_a_key_removed_from_the_file_is_refused_while_the_gateway_runs(
    tc: V2, stack: Stack
) -> None:
    key = file_key(tc.kind)
    await infer(tc, key)
    stack.revoke(key)
    end = time.monotonic() + BOUND_S
    while True:
        try:
            await infer(tc, key)
        except InferenceServerException:
            break
        assert time.monotonic() < end, "the revoked key is still served"
        await asyncio.sleep(0.1)
    await refused(tc, key, "UNAUTHENTICATED", "API key")
    await infer(tc, KEPT_FILE_KEY)  # the file's other keys still are


# -- perf_analyzer ------------------------------------------------------------------------------


def perf_command(exe: str, stack: Stack, protocol: str, key: str | None) -> list[str]:
    url = stack.target.http if protocol == "http" else stack.target.grpc
    cmd = _command(exe, url, protocol, PERF_CONCURRENCY)
    headers = bearer(protocol, key) or {}
    return cmd + [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]


@pytest.fixture(scope="module")
def perf_runs(stack: Stack) -> Iterator[dict[tuple[str, bool], Run]]:
    """perf_analyzer over both protocols, with the key and without, all four started together."""
    exe = perf_analyzer()
    runs = {
        (protocol, with_key): Run(
            perf_command(exe, stack, protocol, FULL_KEY if with_key else None)
        )
        for protocol in ("http", "grpc")
        for with_key in (True, False)
    }
    yield runs
    kill_unfinished(runs.values())


@pytest.mark.timeout(2 * TIMEOUT_S + 30)
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_perf_analyzer_with_the_key_header(
    perf_runs: dict[tuple[str, bool], Run], protocol: str
) -> None:
    problems = perf_runs[protocol, True].problems(PERF_CONCURRENCY)
    assert not problems, f"perf_analyzer -i {protocol} -H: " + "\n".join(problems)


@pytest.mark.timeout(2 * TIMEOUT_S + 30)
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_perf_analyzer_without_a_key_fails(
    perf_runs: dict[tuple[str, bool], Run], protocol: str
) -> None:
    run = perf_runs[protocol, False]
    code, output = run.wait()
    detail = f"command: {' '.join(run.cmd)}\n{output[-3000:]}"
    assert code is not None, f"ran past {TIMEOUT_S} s\n{detail}"
    assert code != 0, f"perf_analyzer succeeded without a key\n{detail}"
    assert "api key" in output.lower(), f"the refusal is not the gateway's 401\n{detail}"
