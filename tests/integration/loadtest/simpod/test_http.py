"""simpod over HTTP: health, metadata, config, JSON and binary infer, errors, stats, metrics."""

from __future__ import annotations

from typing import Any

import aiohttp
import numpy as np
import pytest

from loadtest.stack.procs import PodProc
from protos import v2_http
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import DATATYPES, Tensor, to_numpy
from tests.integration.loadtest.simpod.simpod_wire import (
    decode_http,
    http_infer,
    metric,
    sample,
    sim_request,
)


async def test_http_health_and_metadata(pod: PodProc, http: aiohttp.ClientSession) -> None:
    base = pod.http_url
    for path, status in [
        ("/v2/health/live", 200),
        ("/v2/health/ready", 200),
        ("/v2/models/sim/ready", 200),
        ("/v2/models/sim/versions/1/ready", 200),
        ("/v2/models/nope/ready", 400),
    ]:
        async with http.get(base + path) as resp:
            assert resp.status == status, path
            assert await resp.read() == b""
    async with http.get(f"{base}/v2") as resp:
        doc = await resp.json()
    assert doc["name"] == "simpod" and "statistics" in doc["extensions"]
    async with http.get(f"{base}/v2/models/sim/versions/1") as resp:
        doc = await resp.json()
    assert doc["platform"] == "simulated"
    assert doc["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": [-1, 16]}]
    async with http.get(f"{base}/v2/models/nope") as resp:
        assert resp.status == 404
        assert "nope" in (await resp.json())["error"]
    async with http.get(f"{base}/v2/no/such/path") as resp:
        assert resp.status == 404
    async with http.get(f"{base}/v2/models/sim/infer") as resp:
        assert resp.status == 405


async def test_http_config_is_protobuf_json(pod: PodProc, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{pod.http_url}/v2/models/sim/config") as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["name"] == "sim" and doc["max_batch_size"] == 32
    assert doc["input"][0]["data_type"] == "TYPE_FP32"
    assert doc["input"][0]["dims"] == [16]  # int64 as numbers
    assert doc["output"][0]["dims"] == [16]
    assert doc["dynamic_batching"]["max_queue_delay_microseconds"] == 0
    (group,) = doc["instance_group"]  # every field of Triton's ModelInstanceGroup printed
    assert group == {
        "name": "sim",
        "count": 2,
        "kind": "KIND_GPU",
        "gpus": [],
        "secondary_devices": [],
        "profile": [],
        "passive": False,
        "host_policy": "",
    }


async def test_http_json_infer(pod: PodProc, http: aiohttp.ClientSession) -> None:
    request, data = sim_request(4, seed=2)
    status, body, headers = await http_infer(
        http, f"{pod.http_url}/v2/models/sim/infer", request, binary=False
    )
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    assert v2_http.HEADER_LENGTH not in headers
    response = decode_http(body, headers)
    assert response.id == "r2" and response.model_name == "sim"
    (out,) = response.outputs
    assert np.array_equal(to_numpy(out), data * 2)


async def test_http_binary_output_on_request(pod: PodProc, http: aiohttp.ClientSession) -> None:
    request, data = sim_request(2, seed=3)
    url = f"{pod.http_url}/v2/models/sim/infer"
    for asked in (
        InferRequestBody(request.inputs, [RequestedOutput("OUTPUT0", True)]),
        InferRequestBody(request.inputs, parameters={"binary_data_output": True}),
    ):
        status, body, headers = await http_infer(http, url, asked, binary=False)
        assert status == 200, body
        assert headers["Content-Type"] == "application/octet-stream"
        assert int(headers[v2_http.HEADER_LENGTH]) == len(body) - 2 * 16 * 4
        (out,) = decode_http(body, headers).outputs
        assert np.array_equal(to_numpy(out), data * 2)


@pytest.mark.parametrize(
    ("model", "tensor", "status", "needle"),
    [
        ("sim", Tensor("INPUT0", "FP32", (33, 16), bytes(33 * 64)), 400, "max_batch_size 32"),
        ("sim", Tensor("INPUT0", "FP64", (1, 16), bytes(128)), 400, "FP64"),
        ("nope", Tensor("INPUT0", "FP32", (1, 16), bytes(64)), 404, "nope"),
    ],
)
async def test_http_infer_errors(
    pod: PodProc, http: aiohttp.ClientSession, model: str, tensor: Tensor, status: int, needle: str
) -> None:
    url = f"{pod.http_url}/v2/models/{model}/infer"
    got, body, headers = await http_infer(http, url, InferRequestBody([tensor]), binary=True)
    assert got == status
    assert headers["Content-Type"].startswith("application/json")
    assert needle in v2_http.orjson.loads(body)["error"]


async def test_http_malformed_body(pod: PodProc, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{pod.http_url}/v2/models/sim/infer", data=b"{not json") as resp:
        assert resp.status == 400
        assert "JSON" in (await resp.json())["error"]


async def test_http_stats_grow(pod: PodProc, http: aiohttp.ClientSession) -> None:
    url = f"{pod.http_url}/v2/models/identity_uint8/stats"

    async def stats() -> dict[str, Any]:
        async with http.get(url) as resp:
            assert resp.status == 200
            (doc,) = (await resp.json())["model_stats"]
            return dict(doc)

    before = await stats()
    infer_url = f"{pod.http_url}/v2/models/identity_uint8/infer"
    await http_infer(http, infer_url, InferRequestBody([sample("UINT8", 5)]), binary=True)
    after = await stats()
    assert after["inference_count"] == before["inference_count"] + 5
    assert after["execution_count"] == before["execution_count"] + 1
    assert isinstance(after["inference_stats"]["success"]["ns"], int)
    async with http.get(f"{pod.http_url}/v2/models/stats") as resp:
        assert len((await resp.json())["model_stats"]) == 1 + len(DATATYPES)


async def test_metrics_show_the_counters(pod: PodProc, http: aiohttp.ClientSession) -> None:
    before = await metric(http, pod, "nv_inference_count", model="identity_fp64")
    url = f"{pod.http_url}/v2/models/identity_fp64/infer"
    await http_infer(http, url, InferRequestBody([sample("FP64", 6)]), binary=True)
    assert await metric(http, pod, "nv_inference_count", model="identity_fp64") == before + 6
    for name, labels in (
        ("nv_inference_request_success", {"model": "identity_fp64"}),
        ("nv_inference_exec_count", {"model": "identity_fp64"}),
        ("nv_inference_pending_request_count", {"model": "sim"}),
        ("nv_inference_request_failure", {"model": "sim", "reason": "REJECTED"}),
        ("nv_inference_queue_duration_us", {"model": "sim"}),
        ("simpod_batch_size_count", {"model": "identity_fp64"}),
        ("simpod_device_busy_seconds_total", {"device": "1"}),
    ):
        await metric(http, pod, name, **labels)
    assert await metric(http, pod, "simpod_batch_size_count", model="identity_fp64") >= 1
