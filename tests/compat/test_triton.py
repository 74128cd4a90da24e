"""The gateway in front of a real Triton (``tritonserver`` from the nvidia-pytriton wheel).

One Triton per module serves the project's model repository (tests/triton/models: ``sim``, a
simulated device in Triton's Python backend, and ``identity_<datatype>``), with Triton's own
dynamic batcher off; one gateway in front of it batches, and the tests marked so run again
through a second one whose batches go to Triton's REST API with binary tensors
(``backend_protocol: http``, the cheaper hop). The official clients must get the same answers
through the gateway as from Triton directly. Skips when Triton is not installed
(``make test`` installs it into ``.venv-triton``).
"""

from __future__ import annotations

import asyncio
import json
import queue
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc
from _compat import CLIENT_KINDS, V2, Target, assert_error, raw_http
from _data import DATATYPES, decode_bytes_array, sample

from loadtest.stack import procs
from loadtest.stack.triton import TritonProc, start_triton, triton_problem

# as_numpy() in Triton's Python backend refuses BF16: the repository has no identity_bf16.
TRITON_DATATYPES = [dt for dt in DATATYPES if dt != "BF16"]
IDENTITY_MODELS = [f"identity_{dt.lower()}" for dt in TRITON_DATATYPES]
GATEWAY_BATCHING = {"max_queue_delay_microseconds": 5000}
BURST = 64


@pytest.fixture(scope="module")
def triton() -> Iterator[TritonProc]:
    problem = triton_problem()
    if problem is not None:
        pytest.skip(f"no real Triton to test against: {problem}")
    proc = start_triton()
    yield proc
    proc.stop()


def _gateway(endpoint: str, **model: Any) -> Iterator[procs.GatewayProc]:
    models: list[dict[str, Any]] = [
        {"name": name, "endpoints": [endpoint], "dynamic_batching": GATEWAY_BATCHING, **model}
        for name in ["sim", *IDENTITY_MODELS]
    ]
    gw = procs.start_gateway(models)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def triton_gateway(triton: TritonProc) -> Iterator[procs.GatewayProc]:
    """The gateway in front of ``triton``, batching every model itself."""
    yield from _gateway(triton.grpc_address)


@pytest.fixture(scope="module")
def triton_http_gateway(triton: TritonProc) -> Iterator[procs.GatewayProc]:
    """The same, its batches to Triton's REST API (binary tensors) instead of its gRPC."""
    yield from _gateway(triton.http_url.removeprefix("http://"), backend_protocol="http")


@pytest.fixture(scope="module")
def direct(triton: TritonProc) -> Target:
    return Target("triton", triton.http_url.removeprefix("http://"), triton.grpc_address)


def _target(name: str, gw: procs.GatewayProc) -> Target:
    return Target(name, gw.http_url.removeprefix("http://"), gw.grpc_address)


@pytest.fixture(scope="module")
def via_gateway(triton_gateway: procs.GatewayProc) -> Target:
    return _target("gateway", triton_gateway)


@pytest.fixture(scope="module", params=["grpc", "http"], ids=["backend-grpc", "backend-http"])
def via_backend(request: pytest.FixtureRequest) -> Target:
    """The gateway whose batches go to Triton over gRPC, then the one over its REST API."""
    backend = str(request.param)
    fixture = "triton_gateway" if backend == "grpc" else "triton_http_gateway"
    return _target(f"gateway ({backend} to Triton)", request.getfixturevalue(fixture))


@pytest.fixture(params=CLIENT_KINDS)
async def clients(
    request: pytest.FixtureRequest, direct: Target, via_backend: Target
) -> AsyncIterator[tuple[V2, V2]]:
    """One official client (each of the four in turn) to Triton directly and to the gateway
    (over each backend)."""
    pair = (V2(str(request.param), direct), V2(str(request.param), via_backend))
    yield pair
    for c in pair:
        await c.close()


async def test_sim_through_gateway_equals_direct(clients: tuple[V2, V2]) -> None:
    to_triton, to_gateway = clients
    x = np.random.default_rng(18).standard_normal((7, 16)).astype(np.float32)
    want = (await to_triton.infer("sim", [("INPUT0", x, "FP32")])).as_numpy("OUTPUT0")
    np.testing.assert_array_equal(want, 2 * x)
    got = (await to_gateway.infer("sim", [("INPUT0", x, "FP32")])).as_numpy("OUTPUT0")
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kind", ["http", "grpc"])
@pytest.mark.parametrize("dt", TRITON_DATATYPES)
async def test_identity_through_gateway(kind: str, dt: str, via_backend: Target) -> None:
    """Every datatype bit-exact (edge values, NaN payloads, non-UTF-8 BYTES) through the gateway
    (over each backend) and Triton's Python backend."""
    x = sample(dt, (4, 5), np.random.default_rng(zlib.crc32(dt.encode())), json_safe=False)
    client = V2(kind, via_backend)
    try:
        result = await client.infer(
            f"identity_{dt.lower()}", [("INPUT0", x, dt)], outputs=["OUTPUT0"]
        )
    finally:
        await client.close()
    got = result.as_numpy("OUTPUT0")
    assert tuple(got.shape) == x.shape
    if dt == "BYTES":
        assert decode_bytes_array(got) == decode_bytes_array(x)
    else:
        assert got.dtype == x.dtype
        assert got.tobytes() == x.tobytes()


@pytest.mark.parametrize("kind", ["http", "grpc"])
async def test_gateway_learnt_triton_config(kind: str, direct: Target, via_backend: Target) -> None:
    """max_batch_size 32 is Triton's (the gateway's config sets none), and a 33-row batch is
    refused by the gateway for it."""
    triton_client, gateway_client = V2(kind, direct), V2(kind, via_backend)
    try:
        theirs = await triton_client.model_config("sim")
        ours = await gateway_client.model_config("sim")
        x = np.zeros((33, 16), dtype=np.float32)
        exc = await gateway_client.infer_error("sim", [("INPUT0", x, "FP32")])
    finally:
        await triton_client.close()
        await gateway_client.close()
    assert theirs["max_batch_size"] == ours["max_batch_size"] == 32
    assert ours["input"] == theirs["input"] and ours["output"] == theirs["output"]
    assert_error(exc, kind, "INVALID_ARGUMENT", "batch")


NON_FINITE_JSON = b"[NaN, Infinity, -Infinity, Inf, -Inf, -NaN, 1.5]"


def test_non_finite_json_is_read_and_written_as_triton_does(
    direct: Target, via_backend: Target
) -> None:
    """JSON tokens for NaN and infinities, every spelling RapidJSON reads, in and out: the
    gateway's answer is Triton's, byte for byte in its data."""
    body = (
        b'{"inputs":[{"name":"INPUT0","datatype":"FP64","shape":[1,7],"data":%s}]}'
        % NON_FINITE_JSON
    )
    answers = []
    for target in (direct, via_backend):
        url = f"http://{target.http}/v2/models/identity_fp64/infer"
        status, _, out = raw_http("POST", url, body, {"Content-Type": "application/json"})
        assert status == 200, (target.name, out)
        start = out.index(b'"data":') + len(b'"data":')
        answers.append(out[start : out.index(b"]", start) + 1])
    assert answers[1] == answers[0], answers
    assert answers[0].replace(b" ", b"") == b"[NaN,Infinity,-Infinity,Infinity,-Infinity,NaN,1.5]"


def test_http_config_shows_the_gateways_batching(via_gateway: Target, direct: Target) -> None:
    """GET /v2/models/sim/config: Triton's own batcher is off; the gateway's, in force, shows."""
    status, _, body = raw_http("GET", f"http://{direct.http}/v2/models/sim/config")
    assert status == 200, body
    assert "dynamic_batching" not in json.loads(body)
    status, _, body = raw_http("GET", f"http://{via_gateway.http}/v2/models/sim/config")
    assert status == 200, body
    config = json.loads(body)
    assert config["max_batch_size"] == 32
    delay = config["dynamic_batching"]["max_queue_delay_microseconds"]
    assert int(delay) == GATEWAY_BATCHING["max_queue_delay_microseconds"]


async def test_burst_is_batched_on_triton(direct: Target, via_backend: Target) -> None:
    """BURST concurrent 1-row requests through the gateway (over each backend) reach Triton in
    fewer executions (Triton's own statistics: inference_count vs execution_count)."""
    stats_client, client = V2("grpc", direct), V2("grpc_aio", via_backend)
    try:
        before = await stats_client.stats("sim")
        xs = [np.full((1, 16), i, dtype=np.float32) for i in range(BURST)]
        results = await asyncio.gather(*(client.infer("sim", [("INPUT0", x, "FP32")]) for x in xs))
        after = await stats_client.stats("sim")
    finally:
        await stats_client.close()
        await client.close()
    for x, result in zip(xs, results, strict=True):
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), 2 * x)
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    assert inferences == BURST, (before, after)
    assert 0 < executions < BURST, f"{BURST} requests ran in {executions} Triton executions"


def test_stream_through_gateway(via_gateway: Target) -> None:
    """ModelStreamInfer through the gateway to Triton: sim and identity_int64 in one stream."""
    rng = np.random.default_rng(5)
    reqs: list[tuple[str, str, np.ndarray, str]] = []
    for i in range(12):
        if i % 3 == 2:
            x = rng.integers(-(2**40), 2**40, (int(rng.integers(1, 5)), 3), dtype=np.int64)
            reqs.append((f"s{i}", "identity_int64", x, "INT64"))
        else:
            x = rng.standard_normal((int(rng.integers(1, 9)), 16)).astype(np.float32)
            reqs.append((f"s{i}", "sim", x, "FP32"))
    got: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client = tritonclient.grpc.InferenceServerClient(via_gateway.grpc)
    try:
        client.start_stream(callback=lambda result, error: got.put((result, error)))
        for rid, model, x, dt in reqs:
            inp = tritonclient.grpc.InferInput("INPUT0", list(x.shape), dt)
            inp.set_data_from_numpy(x)
            client.async_stream_infer(model, [inp], request_id=rid)
        out = [got.get(timeout=30) for _ in reqs]
        client.stop_stream()
    finally:
        client.close()
    errors = [e for _, e in out if e is not None]
    assert not errors, errors
    results = {r.get_response().id: r for r, _ in out}
    for rid, model, x, _ in reqs:
        want = 2 * x if model == "sim" else x
        np.testing.assert_array_equal(results[rid].as_numpy("OUTPUT0"), want)
