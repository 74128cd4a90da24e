"""Tenants reloaded on a real gateway process: its config file rewritten while it runs (the same
models and server section, other tenants) puts a new key, a narrower models list and a quota in
force within a bound, and a file with a bad tenant is rejected while the tenants in force keep
being served."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import yaml

from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from tests.integration.tenants.calls import grpc_infer, post

BOUND_S = 15.0  # an upper bound to fail on, never a measured time
INTERVAL_S = 0.2  # the gateway's --reload-interval-s
KEY_A = "key-of-a"
REJECTED = b"rejected, keeping the config in force"
_markers = itertools.count(1)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tenant(name: str, key: str, **fields: Any) -> dict[str, Any]:
    """A tenant as the config file lists it."""
    return {"name": name, "api_key_sha256": [digest(key)], **fields}


TEAM_A = tenant("team-a", KEY_A, models=["sim"])


@dataclass
class Stack:
    gateway: GatewayProc
    pod: PodProc
    log: Path  # the gateway's stdout and stderr
    base: dict[str, Any]  # the config file as start_gateway wrote it

    def rejections(self) -> int:
        """Reloads the gateway has rejected so far, from its log."""
        return self.log.read_bytes().count(REJECTED)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log = tmp_path_factory.mktemp("reload") / "gateway.log"
    pod = start_pod(["--fixed-ms", "2", "--per-row-ms", "0.05"])
    extra = {"tenants": [TEAM_A], "auth": {"required": True}}
    settings = {"name": "sim", "endpoints": [pod.grpc_address]}
    try:
        with log.open("wb") as out:
            gw = start_gateway(
                [settings], extra=extra, args=["--reload-interval-s", str(INTERVAL_S)], stdout=out
            )
    except BaseException:
        pod.stop()
        raise
    try:
        base = yaml.safe_load(gw.config_path.read_text())
        yield Stack(gw, pod, log, base)
    finally:
        gw.stop()
        pod.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def write_config(stack: Stack, tenants: list[dict[str, Any]]) -> None:
    """The gateway's config file as first written, with ``tenants``, replaced atomically."""
    config = copy.deepcopy(stack.base)
    config["tenants"] = tenants
    path = stack.gateway.config_path
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(config, fh)
    os.replace(name, path)


async def until_status(
    session: aiohttp.ClientSession, stack: Stack, key: str, status: int, what: str
) -> None:
    """Poll until ``key``'s call answers ``status``; fail after BOUND_S."""
    end = time.monotonic() + BOUND_S
    while (await post(session, stack.gateway, key))[0] != status:
        assert time.monotonic() < end, f"{what} not in force after {BOUND_S} s"
        await asyncio.sleep(0.05)


async def apply(session: aiohttp.ClientSession, stack: Stack, tenants: list[dict[str, Any]]) -> str:
    """Write ``tenants`` plus a marker tenant of a new key, and return the marker's key once
    it is served: the whole file is then in force."""
    n = next(_markers)
    key = f"marker-key-{n}"
    write_config(stack, [*tenants, tenant(f"marker-{n}", key)])
    await until_status(session, stack, key, 200, f"config {n}")
    return key


async def test_a_tenant_added_to_the_file_is_served_with_its_new_key(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    await apply(session, stack, [TEAM_A])  # the start's tenants, whatever ran before
    assert (await post(session, stack.gateway, "key-of-b"))[0] == 401
    write_config(stack, [TEAM_A, tenant("team-b", "key-of-b")])
    await until_status(session, stack, "key-of-b", 200, "team-b's key")
    assert await grpc_infer(stack.gateway, "key-of-b") is grpc.StatusCode.OK
    status, _, text = await post(session, stack.gateway, KEY_A)
    assert status == 200, text  # the first tenant is served as before


async def test_a_model_taken_off_a_tenants_list_is_403_for_it(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    await apply(session, stack, [TEAM_A])
    assert (await post(session, stack.gateway, KEY_A))[0] == 200
    marker = await apply(session, stack, [{**TEAM_A, "models": ["other"]}])
    status, _, text = await post(session, stack.gateway, KEY_A)
    assert status == 403 and "team-a" in text and "sim" in text, text
    assert await grpc_infer(stack.gateway, KEY_A) is grpc.StatusCode.PERMISSION_DENIED
    assert (await post(session, stack.gateway, marker))[0] == 200  # a "*" tenant still calls it


async def test_a_quota_given_in_the_file_refuses_the_second_request_with_retry_after(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    limited = tenant("team-q", "key-of-q", max_rows_per_s=0.001, burst_rows=1)
    await apply(session, stack, [TEAM_A, tenant("team-q", "key-of-q")])
    for _ in range(3):  # no quota yet
        assert (await post(session, stack.gateway, "key-of-q"))[0] == 200
    await apply(session, stack, [TEAM_A, limited])
    assert (await post(session, stack.gateway, "key-of-q"))[0] == 200  # a new quota starts full
    status, headers, text = await post(session, stack.gateway, "key-of-q")
    assert status == 429, text
    assert int(headers["Retry-After"]) >= 1 and "team-q" in text and "rows/s" in text
    assert await grpc_infer(stack.gateway, "key-of-q") is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (await post(session, stack.gateway, KEY_A))[0] == 200  # another tenant is unaffected


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"name": "team-a", "api_key_sha256": [digest("key-of-x")]}, b"appears more than once"),
        (tenant("team-x", "key-of-x", api_keys_file="/nonexistent/keys"), b"team-x"),
    ],
    ids=["duplicate-name", "unreadable-key-file"],
)
async def test_a_file_with_a_bad_tenant_is_rejected_and_the_tenants_in_force_stay(
    stack: Stack, session: aiohttp.ClientSession, bad: dict[str, Any], reason: bytes
) -> None:
    marker = await apply(session, stack, [TEAM_A])
    before = stack.rejections()
    write_config(stack, [TEAM_A, bad, tenant("team-y", "key-of-y")])
    end = time.monotonic() + BOUND_S
    while stack.rejections() == before:
        assert time.monotonic() < end, "the bad file was not rejected"
        await asyncio.sleep(0.05)
    why = stack.log.read_bytes().rsplit(REJECTED, 1)[1]
    assert reason in why, why
    await asyncio.sleep(3 * INTERVAL_S)  # a few more looks at the file: it stays rejected
    for key in (KEY_A, marker):
        status, _, text = await post(session, stack.gateway, key)
        assert status == 200, text
    assert await grpc_infer(stack.gateway, KEY_A) is grpc.StatusCode.OK
    for key in ("key-of-x", "key-of-y"):  # nothing of the rejected file is in force
        assert (await post(session, stack.gateway, key))[0] == 401
    assert stack.rejections() == before + 1  # read once, not again until it changes
    await apply(session, stack, [TEAM_A])  # a good file after it is taken
