"""One request followed through real processes: a gateway logging JSON lines and exporting
spans over OTLP to a loopback collector, in front of a simulated pod that records the trace
context it is sent. A request sent with an ``X-Request-Id`` / ``x-request-id``, a v2 ``id`` or
a ``traceparent`` is found in the gateway's access log and in the exported spans, and its
batch's ``traceparent`` reaches the pod, over either backend wire."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import numpy as np
import pytest

from loadtest.stack.otlp_sink import OtlpSink, SpanDict
from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc, v2_http
from protos.infer import InferRequestBody
from protos.tensors import from_numpy

BOUND_S = 20.0  # an upper bound to fail on, never a measured time


@dataclass
class Traced:
    gateway: GatewayProc
    pod: PodProc
    sink: OtlpSink
    log: Path

    def access_lines(self) -> list[dict[str, Any]]:
        lines = []
        for text in self.log.read_text().splitlines():
            doc = json.loads(text)  # every line the gateway writes is JSON
            if doc["logger"] == "gateway.access":
                lines.append(doc)
        return lines

    def traceparents(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.pod.http_url}/sim/traceparents", timeout=5) as resp:
            records: list[dict[str, Any]] = json.loads(resp.read())["traceparents"]
        return records


async def access_line(stack: Traced, request_id: str) -> dict[str, Any]:
    end = time.monotonic() + BOUND_S
    while time.monotonic() < end:
        found = [d for d in stack.access_lines() if d["request_id"] == request_id]
        if found:
            assert len(found) == 1, found
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no access line for {request_id} within {BOUND_S} s")


@pytest.fixture(params=["grpc", "http"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Traced]:
    """A traced gateway (only requests with a sampled parent: ratio 0) with every request in
    its access log, over the ``backend_protocol`` of the parameter."""
    sink = OtlpSink()
    await sink.start()
    pod = await asyncio.to_thread(start_pod, ["--fixed-ms", "5", "--per-row-ms", "0.1"])
    log = tmp_path / "gateway.log"
    settings = {
        "name": "sim",
        "endpoints": [pod_address(pod, request.param)],
        "backend_protocol": request.param,
        "dynamic_batching": {"max_queue_delay_microseconds": 1000},
    }
    extra = {
        "access_log": {"sample": 1.0},
        "tracing": {
            "enabled": True,
            "sample_ratio": 0.0,
            "otlp_endpoint": sink.endpoint,
            "export_delay_ms": 100,
        },
    }
    with log.open("wb") as out:
        gw = await asyncio.to_thread(
            start_gateway, [settings], extra=extra, args=["--log-format", "json"], stdout=out
        )
    try:
        yield Traced(gw, pod, sink, log)
    finally:
        await asyncio.to_thread(gw.stop)
        await asyncio.to_thread(pod.stop)
        await sink.stop()


def body(request_id: str = "") -> InferRequestBody:
    x = np.ones((1, 16), dtype=np.float32)
    return InferRequestBody([from_numpy("INPUT0", "FP32", x)], id=request_id)


def new_traceparent() -> tuple[str, str, str]:
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


async def http_post(
    stack: Traced, doc: InferRequestBody, headers: dict[str, str]
) -> tuple[int, Mapping[str, str]]:
    payload, _ = v2_http.encode_request(doc, False)
    url = f"{stack.gateway.http_url}/v2/models/sim/infer"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=payload, headers=headers) as resp,
    ):
        await resp.read()
        return resp.status, resp.headers.copy()  # case-insensitive


async def spans_of(stack: Traced, trace_id: str, count: int) -> list[SpanDict]:
    return await stack.sink.wait_for(lambda s: s["trace_id"] == trace_id, BOUND_S, count=count)


def check_trace(spans: list[SpanDict], parent: str, request_id: str, pod: str) -> str:
    """The request's server span under ``parent``, its queue span and its batch span (linked
    to it); returns the batch span's id."""
    by_name = {s["name"]: s for s in spans}
    server = next(s for s in spans if s["kind"] == "server")
    assert server["parent_span_id"] == parent
    assert server["attributes"]["inference.request_id"] == request_id
    assert server["attributes"]["inference.model"] == "sim"
    assert server["attributes"]["inference.pod"] == pod
    queue, batch = by_name["queue"], by_name["batch"]
    assert queue["parent_span_id"] == server["span_id"]
    assert batch["parent_span_id"] == server["span_id"]
    assert batch["kind"] == "client"
    assert (server["trace_id"], server["span_id"]) in [tuple(link) for link in batch["links"]]
    assert batch["resource"]["service.name"] == "inference-gateway"
    return str(batch["span_id"])


def pod_address(pod: PodProc, backend: str) -> str:
    """The pod's address on the ``backend`` wire (the gateway's name for it)."""
    return pod.grpc_address if backend == "grpc" else f"127.0.0.1:{pod.http_port}"


async def test_an_http_request_is_found_in_the_log_the_spans_and_on_the_pod(
    stack: Traced, request: pytest.FixtureRequest
) -> None:
    traceparent, trace_id, parent = new_traceparent()
    headers = {"X-Request-Id": "req-http-1", "traceparent": traceparent}
    status, answer = await http_post(stack, body("body-1"), headers)
    assert status == 200, answer
    assert answer["X-Request-Id"] == "req-http-1", answer  # the caller's id comes back

    line = await access_line(stack, "req-http-1")
    pod = pod_address(stack.pod, request.node.callspec.params["stack"])
    assert line["id"] == "body-1" and line["trace_id"] == trace_id
    assert (line["model"], line["protocol"], line["status"], line["pod"]) == (
        "sim",
        "http",
        "OK",
        pod,
    )
    assert line["rows"] == 1 and line["batch_rows"] >= 1 and line["tries"] == 1
    assert "INPUT0" not in json.dumps(line)  # never a tensor

    batch_span = check_trace(await spans_of(stack, trace_id, 3), parent, "req-http-1", pod)
    sent = [r["traceparent"] for r in stack.traceparents()]
    assert f"00-{trace_id}-{batch_span}-01" in sent  # the pod joins the batch's span


async def test_a_grpc_request_is_found_in_the_log_the_spans_and_on_the_pod(
    stack: Traced, request: pytest.FixtureRequest
) -> None:
    traceparent, trace_id, parent = new_traceparent()
    metadata = (("x-request-id", "req-grpc-1"), ("traceparent", traceparent))
    async with grpc.aio.insecure_channel(stack.gateway.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        call = stub.ModelInfer(v2_grpc.encode_request("sim", body()), metadata=metadata)
        await call
        trailing = dict(await call.trailing_metadata() or ())
    assert trailing["x-request-id"] == "req-grpc-1"

    line = await access_line(stack, "req-grpc-1")
    pod = pod_address(stack.pod, request.node.callspec.params["stack"])
    assert (line["protocol"], line["status"], line["trace_id"]) == ("grpc", "OK", trace_id)
    batch_span = check_trace(await spans_of(stack, trace_id, 3), parent, "req-grpc-1", pod)
    assert f"00-{trace_id}-{batch_span}-01" in [r["traceparent"] for r in stack.traceparents()]


async def test_the_v2_id_is_the_request_id_when_no_header_names_one(stack: Traced) -> None:
    status, answer = await http_post(stack, body("only-the-body-id"), {})
    assert status == 200 and answer["X-Request-Id"] == "only-the-body-id"
    line = await access_line(stack, "only-the-body-id")
    assert "trace_id" not in line  # ratio 0 and no parent: not traced


async def test_a_request_with_no_id_gets_one_made_and_answered(stack: Traced) -> None:
    status, answer = await http_post(stack, body(), {})
    made = answer["X-Request-Id"]
    assert status == 200 and len(made) == 16 and int(made, 16) >= 0
    assert (await access_line(stack, made))["status"] == "OK"


async def test_a_bad_request_id_is_refused_naming_it_and_logged(stack: Traced) -> None:
    status, answer = await http_post(stack, body(), {"X-Request-Id": "x" * 201})
    assert status == 400
    line = await access_line(stack, answer["X-Request-Id"])  # a made id, so it can be found
    assert line["status"] == "INVALID_ARGUMENT" and "X-Request-Id" in line["error"]


async def test_an_unknown_model_is_logged_with_its_id_and_its_span(stack: Traced) -> None:
    traceparent, trace_id, parent = new_traceparent()
    payload, _ = v2_http.encode_request(body(), False)
    url = f"{stack.gateway.http_url}/v2/models/nope/infer"
    headers = {"X-Request-Id": "req-404", "traceparent": traceparent}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=payload, headers=headers) as resp,
    ):
        assert resp.status == 404 and resp.headers["X-Request-Id"] == "req-404"
    line = await access_line(stack, "req-404")
    assert (line["status"], line["model"], line["trace_id"]) == ("NOT_FOUND", "nope", trace_id)
    [span] = await spans_of(stack, trace_id, 1)
    assert span["parent_span_id"] == parent and span["status"] == "error"
