"""Pods that describe no signature, and pods that come back with another one."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from loadtest.probes.metrics import parse_metrics
from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.infer import InferRequestBody
from protos.tensors import from_numpy, to_numpy


def http_infer(gw: GatewayProc, data: list[Any], shape: list[int], dtype: str = "FP32") -> Any:
    """POST a JSON request; (status, body)."""
    doc = {"inputs": [{"name": "INPUT0", "datatype": dtype, "shape": shape, "data": data}]}
    req = urllib.request.Request(
        f"{gw.http_url}/v2/models/sim/infer",
        json.dumps(doc).encode(),
        {"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


async def grpc_infer(gw: GatewayProc, data: np.ndarray, dtype: str = "FP32") -> np.ndarray:
    async with grpc.aio.insecure_channel(gw.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        body = InferRequestBody([from_numpy("INPUT0", dtype, data)], None, "r", {})
        reply = await stub.ModelInfer(v2_grpc.encode_request("sim", body), timeout=10)
        return to_numpy(v2_grpc.decode_response(reply).outputs[0])


def wait_not_ready(gw: GatewayProc, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(gw.metrics_url, timeout=5) as resp:
            if not parse_metrics(resp.read().decode()).total("gateway_pod_ready"):
                return
        assert time.monotonic() < deadline, "the gateway still routes to the stopped pod"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def bare_pod() -> Iterator[PodProc]:
    p = start_pod(["--no-signature", "--fixed-ms", "1", "--per-row-ms", "0"])
    yield p
    p.stop()


@pytest.fixture(params=[None, 8], ids=["no-batching", "max-batch-8"])
def bare_gateway(request: pytest.FixtureRequest, bare_pod: PodProc) -> Iterator[GatewayProc]:
    model: dict[str, Any] = {"name": "sim", "endpoints": [bare_pod.grpc_address]}
    if request.param is not None:
        model["max_batch_size"] = request.param
    gw = start_gateway([model])
    yield gw
    gw.stop()


async def test_a_pod_without_signature_is_served(bare_gateway: GatewayProc) -> None:
    meta = get_json(f"{bare_gateway.http_url}/v2/models/sim")
    assert meta.get("inputs", []) == []
    status, out = http_infer(bare_gateway, [1.0, 2.0, 3.0, 4.0], [2, 2])
    assert status == 200, out
    assert out["outputs"][0]["data"] == [2.0, 4.0, 6.0, 8.0]
    assert out["outputs"][0]["shape"] == [2, 2]
    data = np.arange(5, dtype=np.float32).reshape(1, 5)
    assert np.array_equal(await grpc_infer(bare_gateway, data), 2 * data)


async def test_the_pods_own_error_comes_back(bare_gateway: GatewayProc) -> None:
    status, out = http_infer(bare_gateway, [1, 2], [1, 2], dtype="INT32")
    assert status == 400, out
    assert "datatype INT32" in out["error"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await grpc_infer(bare_gateway, np.ones((1, 2), dtype=np.int32), dtype="INT32")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "datatype INT32" in (err.value.details() or "")


def restart_with_rows_of_8(gw: GatewayProc, pod: PodProc) -> PodProc:
    """The pod, started again on its ports with rows of 8 values; returns once the gateway
    serves rows of 8 (a bound on a hang, not a timing check)."""
    pod = start_pod(
        ["--row-size", "8", "--fixed-ms", "1"], grpc_port=pod.grpc_port, http_port=pod.http_port
    )
    deadline = time.monotonic() + 30
    while (status := http_infer(gw, [0.5] * 8, [1, 8])[0]) != 200:
        assert time.monotonic() < deadline, f"still {status}: the restart was not learnt"
        time.sleep(0.2)
    return pod


async def test_a_restarted_pod_is_relearnt() -> None:
    pod = start_pod(["--row-size", "16", "--fixed-ms", "1"])
    gw = start_gateway([{"name": "sim", "endpoints": [pod.grpc_address]}])
    try:
        assert http_infer(gw, [0.5] * 16, [1, 16])[0] == 200
        assert http_infer(gw, [0.5] * 8, [1, 8])[0] == 400  # the gateway refuses it
        pod.stop()
        wait_not_ready(gw)  # the gateway sees the pod go (a restart outlasts a probe interval)
        pod = restart_with_rows_of_8(gw, pod)
        data = np.ones((2, 8), dtype=np.float32)
        assert np.array_equal(await grpc_infer(gw, data), 2 * data)
        meta = get_json(f"{gw.http_url}/v2/models/sim")
        assert meta["inputs"][0]["shape"] == [-1, 8]
        with urllib.request.urlopen(gw.metrics_url, timeout=5) as resp:
            assert parse_metrics(resp.read().decode()).total("gateway_model_signatures") == 1
    finally:
        gw.stop()
        pod.stop()


async def test_a_pod_restarted_between_two_probes_is_relearnt() -> None:
    """Probes 10 minutes apart never see the restart: the lost connection does."""
    pod = start_pod(["--row-size", "16", "--fixed-ms", "1"])
    gw = start_gateway(
        [{"name": "sim", "endpoints": [pod.grpc_address]}],
        extra={"server": {"probe_interval_ms": 600_000}},
    )
    try:
        assert http_infer(gw, [0.5] * 16, [1, 16])[0] == 200
        pod.stop()
        pod = restart_with_rows_of_8(gw, pod)
        assert get_json(f"{gw.http_url}/v2/models/sim")["inputs"][0]["shape"] == [-1, 8]
    finally:
        gw.stop()
        pod.stop()
