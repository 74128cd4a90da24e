"""``simpod`` as a real process, driven with the project's protos over grpc.aio and aiohttp."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from loadtest.simpod.engine import CRASH_EXIT_CODE
from loadtest.stack.procs import PodProc, start_pod
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc, v2_http
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import DATATYPES, Tensor, from_numpy, to_numpy

FAST = ["--fixed-ms", "1", "--per-row-ms", "0.01", "--max-batch", "32"]
MAX_MESSAGE = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


@pytest.fixture(scope="module")
def pod() -> Iterator[PodProc]:
    proc = start_pod([*FAST, "--identity-models", "--devices", "2"])
    yield proc
    assert proc.stop() == 0


@pytest.fixture
async def stub(pod: PodProc) -> AsyncIterator[pb_grpc.GRPCInferenceServiceStub]:
    async with grpc.aio.insecure_channel(pod.grpc_address, options=MAX_MESSAGE) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def sim_request(rows: int, seed: int = 0) -> tuple[InferRequestBody, np.ndarray]:
    data = np.random.default_rng(seed).standard_normal((rows, 16), dtype=np.float32)
    return InferRequestBody([from_numpy("INPUT0", "FP32", data)], id=f"r{seed}"), data


def sample(datatype: str, rows: int = 3, cols: int = 5) -> Tensor:
    """Random data of ``datatype``, [rows, cols]."""
    rng = np.random.default_rng(len(datatype))
    if datatype == "BYTES":
        values = [
            bytes(rng.integers(0, 256, int(rng.integers(0, 9)), dtype=np.uint8))
            for _ in range(rows * cols)
        ]
        values[0] = "é€".encode()
        values[1] = b""
        return from_numpy("INPUT0", "BYTES", np.array(values, dtype=object).reshape(rows, cols))
    if datatype == "BOOL":
        return from_numpy("INPUT0", "BOOL", rng.integers(0, 2, (rows, cols)).astype(bool))
    if datatype == "BF16":  # upper halves of FP32 values
        bits = rng.standard_normal((rows, cols), dtype=np.float32).view(np.uint32) >> 16
        return from_numpy("INPUT0", "BF16", bits.astype(np.uint16))
    dtype = DATATYPES[datatype].numpy
    assert dtype is not None
    if dtype.kind == "f":
        array = rng.standard_normal((rows, cols)) * 100
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, (rows, cols), dtype=dtype, endpoint=True)
    return from_numpy("INPUT0", datatype, array.astype(dtype))


async def grpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def http_infer(
    session: aiohttp.ClientSession, url: str, request: InferRequestBody, binary: bool
) -> tuple[int, bytes, dict[str, str]]:
    body, json_length = v2_http.encode_request(request, binary)
    headers = {} if json_length is None else {v2_http.HEADER_LENGTH: str(json_length)}
    async with session.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


def decode_http(body: bytes, headers: dict[str, str]) -> Any:
    length = headers.get(v2_http.HEADER_LENGTH)
    return v2_http.decode_response(body, None if length is None else int(length))


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    """Poll ``check`` until it holds (a condition to reach, not a timing measurement)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def metric(session: aiohttp.ClientSession, pod: PodProc, line_start: str) -> float:
    async with session.get(f"{pod.http_url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in /metrics")


# --- gRPC -------------------------------------------------------------------------------------


async def test_grpc_server_and_model_metadata(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    assert (await stub.ServerLive(pb.ServerLiveRequest())).live
    assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="sim"))).ready
    assert not (await stub.ModelReady(pb.ModelReadyRequest(name="nope"))).ready
    meta = await stub.ServerMetadata(pb.ServerMetadataRequest())
    assert meta.name == "simpod"
    assert set(meta.extensions) >= {"binary_tensor_data", "statistics", "model_configuration"}
    model = await stub.ModelMetadata(pb.ModelMetadataRequest(name="sim"))
    assert model.platform == "simulated"
    assert [(t.name, t.datatype, list(t.shape)) for t in model.inputs] == [
        ("INPUT0", "FP32", [-1, 16])
    ]
    config = (await stub.ModelConfig(pb.ModelConfigRequest(name="sim"))).config
    assert config.max_batch_size == 32
    assert config.HasField("dynamic_batching")
    assert config.instance_group[0].count == 2
    err = await grpc_error(stub.ModelMetadata(pb.ModelMetadataRequest(name="nope")))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_grpc_health_is_serving(pod: PodProc) -> None:
    async with grpc.aio.insecure_channel(pod.grpc_address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_grpc_infer_doubles_the_input(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    request, data = sim_request(7, seed=1)
    msg = v2_grpc.encode_request("sim", request)
    reply = await stub.ModelInfer(msg)
    assert reply.model_name == "sim" and reply.id == "r1"
    assert len(reply.raw_output_contents) == 1
    (out,) = v2_grpc.decode_response(reply).outputs
    assert out.name == "OUTPUT0" and out.shape == (7, 16)
    assert np.array_equal(to_numpy(out), data * 2)


async def test_grpc_infer_accepts_typed_contents(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    values = [float(i) / 4 for i in range(32)]
    msg = pb.ModelInferRequest(model_name="sim")
    tensor = msg.inputs.add(name="INPUT0", datatype="FP32", shape=[2, 16])
    tensor.contents.fp32_contents.extend(values)
    (out,) = v2_grpc.decode_response(await stub.ModelInfer(msg)).outputs
    assert to_numpy(out).ravel().tolist() == [2 * v for v in values]


async def test_grpc_stream_infer(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    requests = [sim_request(i + 1, seed=i) for i in range(5)]
    bad = InferRequestBody([Tensor("INPUT0", "FP32", (33, 16), bytes(33 * 64))], id="bad")

    async def messages() -> AsyncIterator[pb.ModelInferRequest]:
        for request, _ in requests:
            yield v2_grpc.encode_request("sim", request)
        yield v2_grpc.encode_request("sim", bad)

    answers: dict[str, Any] = {}
    errors: list[str] = []
    async for reply in stub.ModelStreamInfer(messages()):
        if reply.error_message:
            errors.append(reply.error_message)
        else:
            answers[reply.infer_response.id] = reply.infer_response
    assert len(errors) == 1 and "max_batch_size 32" in errors[0]
    assert sorted(answers) == sorted(r.id for r, _ in requests)
    for request, data in requests:
        (out,) = v2_grpc.decode_response(answers[request.id]).outputs
        assert np.array_equal(to_numpy(out), data * 2)


@pytest.mark.parametrize(
    ("tensor", "outputs", "needle"),
    [
        (Tensor("INPUT0", "FP32", (33, 16), bytes(33 * 64)), None, "max_batch_size 32"),
        (Tensor("INPUT9", "FP32", (1, 16), bytes(64)), None, "INPUT9"),
        (Tensor("INPUT0", "INT32", (1, 16), bytes(64)), None, "INT32"),
        (Tensor("INPUT0", "FP32", (1, 8), bytes(32)), None, "shape [1, 8]"),
        (Tensor("INPUT0", "FP32", (1, 16), bytes(64)), [RequestedOutput("OUT")], "'OUT'"),
        (Tensor("INPUT0", "FP32", (1, 16), bytes(60)), None, "raw data is 60 bytes"),
    ],
)
async def test_grpc_invalid_requests(
    stub: pb_grpc.GRPCInferenceServiceStub,
    tensor: Tensor,
    outputs: list[RequestedOutput] | None,
    needle: str,
) -> None:
    msg = v2_grpc.encode_request("sim", InferRequestBody([tensor], outputs))
    err = await grpc_error(stub.ModelInfer(msg))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in (err.details() or "")


async def test_grpc_unknown_model(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    request, _ = sim_request(1)
    err = await grpc_error(stub.ModelInfer(v2_grpc.encode_request("nope", request)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await grpc_error(stub.ModelInfer(v2_grpc.encode_request("sim", request, "7")))
    assert err.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("datatype", list(DATATYPES))
async def test_identity_grpc_every_datatype(
    stub: pb_grpc.GRPCInferenceServiceStub, datatype: str
) -> None:
    tensor = sample(datatype)
    model = f"identity_{datatype.lower()}"
    reply = await stub.ModelInfer(v2_grpc.encode_request(model, InferRequestBody([tensor])))
    (out,) = v2_grpc.decode_response(reply).outputs
    assert (out.name, out.datatype, out.shape) == ("OUTPUT0", datatype, tensor.shape)
    assert out.data == tensor.data


async def test_grpc_statistics_grow(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    async def stats() -> Any:
        reply = await stub.ModelStatistics(pb.ModelStatisticsRequest(name="identity_int16"))
        (model_stats,) = reply.model_stats
        return model_stats

    before = await stats()
    for rows in (1, 3, 3):
        msg = v2_grpc.encode_request("identity_int16", InferRequestBody([sample("INT16", rows)]))
        await stub.ModelInfer(msg)
    after = await stats()
    assert after.inference_count - before.inference_count == 7
    assert after.execution_count - before.execution_count == 3
    success = after.inference_stats.success
    assert success.count - before.inference_stats.success.count == 3
    assert after.inference_stats.compute_infer.ns > before.inference_stats.compute_infer.ns
    sizes = {b.batch_size: b.compute_infer.count for b in after.batch_stats}
    assert sizes[3] >= 2
    every = await stub.ModelStatistics(pb.ModelStatisticsRequest())
    assert len(every.model_stats) == 1 + len(DATATYPES)


# --- HTTP -------------------------------------------------------------------------------------


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
    assert doc["instance_group"] == [{"name": "sim", "count": 2, "kind": "KIND_GPU", "gpus": []}]


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


@pytest.mark.parametrize("datatype", list(DATATYPES))
async def test_identity_http_binary_every_datatype(
    pod: PodProc, http: aiohttp.ClientSession, datatype: str
) -> None:
    tensor = sample(datatype)
    request = InferRequestBody([tensor], [RequestedOutput("OUTPUT0", True)])
    url = f"{pod.http_url}/v2/models/identity_{datatype.lower()}/infer"
    status, body, headers = await http_infer(http, url, request, binary=True)
    assert status == 200, body
    (out,) = decode_http(body, headers).outputs
    assert (out.datatype, out.shape, out.data) == (datatype, tensor.shape, tensor.data)


@pytest.mark.parametrize("datatype", [d for d, t in DATATYPES.items() if t.json_ok])
async def test_identity_http_json_every_json_datatype(
    pod: PodProc, http: aiohttp.ClientSession, datatype: str
) -> None:
    tensor = sample(datatype)
    if datatype == "BYTES":  # JSON carries text
        tensor = from_numpy("INPUT0", "BYTES", np.array([["a", "bé"], ["", "z"]], dtype=object))
    url = f"{pod.http_url}/v2/models/identity_{datatype.lower()}/infer"
    status, body, headers = await http_infer(http, url, InferRequestBody([tensor]), binary=False)
    assert status == 200, body
    (out,) = decode_http(body, headers).outputs
    assert (out.datatype, out.shape, out.data) == (datatype, tensor.shape, tensor.data)


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
    before = await metric(http, pod, 'nv_inference_count{model="identity_fp64"}')
    url = f"{pod.http_url}/v2/models/identity_fp64/infer"
    await http_infer(http, url, InferRequestBody([sample("FP64", 6)]), binary=True)
    assert await metric(http, pod, 'nv_inference_count{model="identity_fp64"}') == before + 6
    for name in (
        'nv_inference_request_success{model="identity_fp64"}',
        'nv_inference_exec_count{model="identity_fp64"}',
        'nv_inference_pending_request_count{model="sim"}',
        'nv_inference_request_failure{model="sim",reason="REJECTED"}',
        'nv_inference_queue_duration_us{model="sim"}',
        'simpod_batch_size_count{model="identity_fp64"}',
        'simpod_device_busy_seconds_total{device="1"}',
    ):
        await metric(http, pod, name)
    assert await metric(http, pod, 'simpod_batch_size_count{model="identity_fp64"}') >= 1


# --- start-up, failures, shutdown (own pods) --------------------------------------------------


async def test_startup_delay(http: aiohttp.ClientSession) -> None:
    pod = start_pod([*FAST, "--startup-s", "1.5"], wait_ready=False)
    try:
        async with http.get(f"{pod.http_url}/v2/health/ready") as resp:
            assert resp.status == 400
        async with grpc.aio.insecure_channel(pod.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert not (await stub.ServerReady(pb.ServerReadyRequest())).ready
            assert (await stub.ServerLive(pb.ServerLiveRequest())).live
            request, _ = sim_request(1)
            err = await grpc_error(stub.ModelInfer(v2_grpc.encode_request("sim", request)))
            assert err.code() == grpc.StatusCode.UNAVAILABLE

            async def ready() -> bool:
                async with http.get(f"{pod.http_url}/v2/health/ready") as resp:
                    return resp.status == 200

            await until(ready)
            assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
            assert (await stub.ModelInfer(v2_grpc.encode_request("sim", request))).outputs
    finally:
        assert pod.stop() == 0


async def test_error_rate_one_gives_internal(http: aiohttp.ClientSession) -> None:
    pod = start_pod([*FAST, "--error-rate", "1.0"])
    try:
        request, _ = sim_request(2)
        async with grpc.aio.insecure_channel(pod.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            err = await grpc_error(stub.ModelInfer(v2_grpc.encode_request("sim", request)))
        assert err.code() == grpc.StatusCode.INTERNAL
        url = f"{pod.http_url}/v2/models/sim/infer"
        status, body, _ = await http_infer(http, url, request, binary=False)
        assert status == 500 and b"error" in body
        failures = await metric(
            http, pod, 'nv_inference_request_failure{model="sim",reason="BACKEND"}'
        )
        assert failures == 2
    finally:
        assert pod.stop() == 0


async def test_stalled_request_ends_at_the_deadline(http: aiohttp.ClientSession) -> None:
    pod = start_pod([*FAST, "--stall-rate", "1.0"])
    pending = 'nv_inference_pending_request_count{model="sim"}'
    try:
        request, _ = sim_request(1)
        async with grpc.aio.insecure_channel(pod.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            msg = v2_grpc.encode_request("sim", request)
            err = await grpc_error(stub.ModelInfer(msg, timeout=0.5))
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        async def cleared() -> bool:
            return await metric(http, pod, pending) == 0

        await until(cleared)
        canceled = 'nv_inference_request_failure{model="sim",reason="CANCELED"}'
        assert await metric(http, pod, canceled) == 1
    finally:
        assert pod.stop() == 0


async def test_crash_rate_one_exits_mid_batch() -> None:
    pod = start_pod([*FAST, "--crash-rate", "1.0"])
    try:
        request, _ = sim_request(1)
        async with grpc.aio.insecure_channel(pod.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            err = await grpc_error(stub.ModelInfer(v2_grpc.encode_request("sim", request)))
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert await asyncio.to_thread(pod.popen.wait, 10) == CRASH_EXIT_CODE
    finally:
        pod.stop()


async def test_sigterm_finishes_in_flight_batches_and_exits_0(
    http: aiohttp.ClientSession,
) -> None:
    pod = start_pod(["--fixed-ms", "1000", "--per-row-ms", "0"])
    running = 'simpod_running_batches{model="sim"}'
    try:
        request, data = sim_request(3)
        async with grpc.aio.insecure_channel(pod.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            call = asyncio.ensure_future(stub.ModelInfer(v2_grpc.encode_request("sim", request)))

            async def started() -> bool:
                return await metric(http, pod, running) == 1

            await until(started)
            pod.kill(signal.SIGTERM)
            (out,) = v2_grpc.decode_response(await call).outputs
            assert np.array_equal(to_numpy(out), data * 2)
        assert await asyncio.to_thread(pod.popen.wait, 10) == 0
    finally:
        pod.stop()
