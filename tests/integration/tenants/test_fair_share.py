"""Fair share on real processes: while tenant A floods a slow pod with three times what it can
serve, tenant B, offering a tenth of A's rate at the same weight, is never refused and has its
rows served (its latency belongs in ``loadtest tenants``, not in a test)."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Iterator

import aiohttp
import numpy as np
import pytest

from loadtest.stack.procs import GatewayProc, start_gateway, start_pod
from protos import v2_http
from protos.infer import InferRequestBody
from protos.tensors import from_numpy

# One pod of 20 ms + 2 ms a row, 8 rows a batch: 8 / 36 ms = 222 rows/s.
POD = ["--fixed-ms", "20", "--per-row-ms", "2", "--max-batch", "8"]
CAPACITY = 8 / 0.036
SECONDS = 4.0
KEYS = {"a": "flooding-key", "b": "light-key"}


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProc]:
    pod = start_pod(POD)
    tenants = [
        {"name": name, "api_key_sha256": [hashlib.sha256(key.encode()).hexdigest()]}
        for name, key in KEYS.items()
    ]
    settings = {
        "name": "sim",
        "endpoints": [pod.grpc_address],
        "dynamic_batching": {"max_queue_delay_microseconds": 5000},
    }
    extra = {"tenants": tenants, "auth": {"required": True}, "access_log": {"errors": False}}
    gw = start_gateway([settings], extra=extra)
    try:
        yield gw
    finally:
        gw.stop()
        pod.stop()


def payload() -> bytes:
    x = np.ones((1, 16), dtype=np.float32)
    body, _ = v2_http.encode_request(InferRequestBody([from_numpy("INPUT0", "FP32", x)]), False)
    return body


async def offer(
    session: aiohttp.ClientSession, gw: GatewayProc, key: str, rate: float
) -> Counter[int]:
    """Open loop: ``rate`` requests a second for SECONDS; the statuses they got."""
    url, data = f"{gw.http_url}/v2/models/sim/infer", payload()
    headers = {"Authorization": f"Bearer {key}"}
    statuses: Counter[int] = Counter()

    async def one() -> None:
        async with session.post(url, data=data, headers=headers) as resp:
            await resp.read()
            statuses[resp.status] += 1

    tasks = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(int(rate * SECONDS)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return statuses


async def test_a_light_tenant_is_served_while_another_floods(gateway: GatewayProc) -> None:
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as session:
        flood, light = await asyncio.gather(
            offer(session, gateway, KEYS["a"], 3 * CAPACITY),
            offer(session, gateway, KEYS["b"], 0.3 * CAPACITY),
        )
    assert flood[429] > 0, flood  # the pod was overloaded: A was shed
    offered = sum(light.values())
    assert light[429] == 0, light  # B: never refused
    assert light[200] >= 0.95 * offered, light
