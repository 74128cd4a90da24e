"""The gateway as a process in front of real simulated pods, driven with the project's protos."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import numpy as np
import pytest

from loadtest.stack.procs import GatewayProc, PodProc, free_port, start_gateway, start_pod
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc, v2_http
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import from_numpy, to_numpy

FAST = ["--fixed-ms", "1", "--per-row-ms", "0.05"]


@pytest.fixture(scope="module")
def pods() -> Iterator[list[PodProc]]:
    started = [start_pod(FAST), start_pod(FAST)]
    yield started
    for pod in started:
        pod.stop()


@pytest.fixture(scope="module")
def gateway(pods: list[PodProc]) -> Iterator[GatewayProc]:
    gw = start_gateway(
        [
            {"name": "sim", "endpoints": [p.grpc_address for p in pods]},
            {"name": "sim-b", "pod_model": "sim", "endpoints": [pods[1].grpc_address]},
        ]
    )
    yield gw
    assert gw.stop() == 0


def sim_request(rows: int, seed: int) -> tuple[InferRequestBody, np.ndarray]:
    data = np.random.default_rng(seed).standard_normal((rows, 16), dtype=np.float32)
    return InferRequestBody([from_numpy("INPUT0", "FP32", data)], id=f"r{seed}"), data


async def test_concurrent_requests_to_two_models_each_get_their_own_answer(
    gateway: GatewayProc,
) -> None:
    import asyncio

    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        async def one(i: int) -> None:
            body, data = sim_request(1 + i % 7, i)
            model = "sim" if i % 2 else "sim-b"
            reply = await stub.ModelInfer(v2_grpc.encode_request(model, body), timeout=10)
            out = v2_grpc.decode_response(reply)
            assert (reply.model_name, reply.id) == (model, f"r{i}")
            np.testing.assert_array_equal(to_numpy(out.outputs[0]), 2 * data)

        await asyncio.gather(*(one(i) for i in range(60)))


async def test_http_binary_and_json_answers_match(gateway: GatewayProc) -> None:
    body, data = sim_request(3, 99)
    body.outputs = [RequestedOutput("OUTPUT0", True)]
    async with aiohttp.ClientSession() as session:
        for binary in (False, True):
            payload, length = v2_http.encode_request(body, binary)
            headers = {} if length is None else {v2_http.HEADER_LENGTH: str(length)}
            async with session.post(
                f"{gateway.http_url}/v2/models/sim/infer", data=payload, headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()
                raw = await resp.read()
                length_header = resp.headers.get(v2_http.HEADER_LENGTH)
            out = v2_http.decode_response(raw, int(length_header) if length_header else None)
            np.testing.assert_array_equal(to_numpy(out.outputs[0]), 2 * data)


async def test_stream_answers_every_request_and_reports_errors_in_band(
    gateway: GatewayProc,
) -> None:
    requests = []
    for i in range(10):
        body, _ = sim_request(2, i)
        requests.append(v2_grpc.encode_request("sim", body))
    bad = pb.ModelInferRequest(model_name="sim", id="bad")
    bad.inputs.add(name="NOPE", datatype="FP32", shape=[1, 16])
    bad.raw_input_contents.append(b"\0" * 64)
    requests.append(bad)
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        answers = [a async for a in stub.ModelStreamInfer(iter(requests), timeout=10)]
    by_id = {a.infer_response.id: a for a in answers}
    assert set(by_id) == {f"r{i}" for i in range(10)} | {"bad"}
    assert "unexpected input 'NOPE'" in by_id["bad"].error_message
    assert all(not by_id[f"r{i}"].error_message for i in range(10))


async def test_a_version_the_pods_do_not_serve_is_not_found(gateway: GatewayProc) -> None:
    async with aiohttp.ClientSession() as session:
        base = f"{gateway.http_url}/v2/models/sim"
        async with session.get(f"{base}/versions/1") as resp:
            assert resp.status == 200
        async with session.get(f"{base}/versions/7/ready") as resp:
            assert resp.status == 404
            assert "no version '7'" in (await resp.json())["error"]
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        body, _ = sim_request(1, 5)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ModelInfer(v2_grpc.encode_request("sim", body, "7"), timeout=10)
        assert info.value.code() is grpc.StatusCode.NOT_FOUND


async def test_grpc_model_ready_is_false_for_a_version_the_pods_do_not_serve(
    gateway: GatewayProc,
) -> None:
    """As Triton answers (and as HTTP's 404 reads to its clients): ready false, not an error."""
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        async def ready(name: str, version: str = "") -> bool:
            request = pb.ModelReadyRequest(name=name, version=version)
            return (await stub.ModelReady(request, timeout=10)).ready

        assert await ready("sim") and await ready("sim", "1")
        assert not await ready("sim", "7")
        assert not await ready("no-such-model")


def test_metrics_count_requests_and_show_pods(gateway: GatewayProc) -> None:
    with urllib.request.urlopen(gateway.metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    assert 'gateway_requests_total{model="sim",protocol="grpc"}' in text
    assert 'gateway_pod_ready{model="sim",model_server_pod="127.0.0.1:' in text
    assert 'gateway_ready_pods{model="sim"} 2.0' in text
    assert 'gateway_build_info{version="0.1.0"} 1.0' in text
    assert "gateway_request_duration_seconds_bucket" in text


async def test_a_killed_pod_is_routed_around() -> None:
    pods = [start_pod(FAST), start_pod(FAST)]
    gw = start_gateway([{"name": "sim", "endpoints": [p.grpc_address for p in pods]}])
    try:
        pods[0].kill()
        pods[0].popen.wait()
        async with grpc.aio.insecure_channel(gw.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            for i in range(20):
                body, data = sim_request(1, i)
                reply = await stub.ModelInfer(v2_grpc.encode_request("sim", body), timeout=10)
                out = v2_grpc.decode_response(reply)
                np.testing.assert_array_equal(to_numpy(out.outputs[0]), 2 * data)
    finally:
        gw.stop()
        for pod in pods:
            pod.stop()


async def test_no_ready_pod_waits_for_the_deadline_then_is_unavailable() -> None:
    gw = start_gateway(
        [{"name": "sim", "endpoints": [f"127.0.0.1:{free_port()}"], "default_timeout_ms": 300}],
        wait_models=False,
    )
    try:
        async with grpc.aio.insecure_channel(gw.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            body, _ = sim_request(1, 0)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ModelInfer(v2_grpc.encode_request("sim", body), timeout=10)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "no ready pod for model 'sim'" in (info.value.details() or "")
    finally:
        gw.stop()


def test_bad_config_exits_with_the_field_named(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text("models:\n  - name: sim\n    endpoints: [nope]\n")
    gateway_bin = Path(sys.executable).parent / "gateway"
    result = subprocess.run(
        [str(gateway_bin), "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "models.0.endpoints" in result.stderr and "is not host:port" in result.stderr
