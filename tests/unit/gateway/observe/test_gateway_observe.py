"""An in-process gateway over fake pods: a request's ``RequestInfo`` is filled in on its way,
its batch's span context reaches the pod as ``traceparent``, and a live reload takes the new
access-log settings and the tracing ratio (the rest of ``tracing:`` needs a restart)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from gateway.config import GatewayConfig, parse_config
from gateway.core import Gateway
from gateway.errors import Code
from gateway.observe.access_log import ACCESS_LOGGER
from gateway.observe.request import RequestInfo
from protos.infer import InferRequestBody
from protos.logs import extra_fields
from protos.tensors import from_numpy, to_numpy
from tests.fakes.gateway_pods import fake_pods
from tests.fakes.pod_client import FakePods
from tests.fakes.reports import until

POD = "10.0.0.1:8001"
PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{PARENT_TRACE}-00f067aa0ba902b7-01"
SPAN = "POST /v2/models/{model}/infer"


def config(sample: float = 0.0, ratio: float = 0.0, endpoint: str | None = None) -> GatewayConfig:
    tracing: dict[str, Any] = {"sample_ratio": ratio}
    if endpoint is not None:
        tracing["otlp_endpoint"] = endpoint
    return parse_config(
        {
            "server": {"probe_interval_ms": 50},  # a pod a failed try set unready is back soon
            "access_log": {"sample": sample},
            "tracing": tracing,
            "models": [{"name": "sim", "endpoints": [POD]}],
        }
    )


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> FakePods:
    """Every pod the gateway makes is a fake, and describes the model as ``model_spec``."""
    return fake_pods(monkeypatch)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def gateway(
    fakes: FakePods, exporter: InMemorySpanExporter, request: pytest.FixtureRequest
) -> AsyncIterator[Gateway]:
    """A started gateway of ``config(**param)`` whose spans go to ``exporter``."""
    settings = config(**getattr(request, "param", {}))
    gw = Gateway(settings, span_processor=SimpleSpanProcessor(exporter))
    await gw.start()
    try:
        await until(lambda: gw.models["sim"].ready)
        yield gw
    finally:
        await gw.stop()


async def infer(gw: Gateway, value: float, traceparent: str | None = None) -> RequestInfo:
    """One 1-row request through the observer, as a front-end sends it."""
    observer = gw.request_observer
    info = observer.begin("http", SPAN, traceparent, None, {})
    body = InferRequestBody([from_numpy("INPUT0", "FP32", np.full((1, 4), value, np.float32))])
    reply = await gw.infer("http", "sim", "", body, None, info)
    observer.end(info)
    assert (to_numpy(reply.outputs[0]) == 2 * value).all()
    return info


async def test_the_request_info_is_filled_in_on_its_way(gateway: Gateway, fakes: FakePods) -> None:
    info = await infer(gateway, 3.0)
    assert (info.model, info.rows, info.pod, info.batch_rows, info.tries) == ("sim", 1, POD, 1, 1)
    assert isinstance(info.queue_ns, int) and info.queue_ns >= 0
    assert fakes[POD].calls == 1


async def test_a_sampled_parent_s_batch_span_goes_to_the_pod(
    gateway: Gateway, fakes: FakePods, exporter: InMemorySpanExporter
) -> None:
    await infer(gateway, 1.0, PARENT)
    (sent,) = fakes[POD].traceparents
    assert sent is not None
    await until(lambda: any(s.name == "batch" for s in exporter.get_finished_spans()))
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    assert set(by_name) == {SPAN, "queue", "batch"}
    batch, server = by_name["batch"], by_name[SPAN]
    assert batch.context is not None and server.context is not None
    _, trace_id, span_id, flags = sent.split("-")
    assert (trace_id, span_id, flags) == (PARENT_TRACE, f"{batch.context.span_id:016x}", "01")
    assert batch.parent is not None and batch.parent.span_id == server.context.span_id
    assert server.attributes is not None
    assert (server.attributes["inference.model"], server.attributes["inference.pod"]) == (
        "sim",
        POD,
    )


async def test_with_no_parent_and_ratio_0_nothing_is_traced(
    gateway: Gateway, fakes: FakePods, exporter: InMemorySpanExporter
) -> None:
    for i in range(5):
        await infer(gateway, float(i))
    assert fakes[POD].traceparents == [None] * 5
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize("gateway", [{"ratio": 1.0}], indirect=True)
async def test_with_ratio_1_a_request_with_no_parent_is_a_new_trace(
    gateway: Gateway, fakes: FakePods, exporter: InMemorySpanExporter
) -> None:
    await infer(gateway, 1.0)
    (sent,) = fakes[POD].traceparents
    assert sent is not None and PARENT_TRACE not in sent
    await until(lambda: any(s.name == "batch" for s in exporter.get_finished_spans()))
    (server,) = [s for s in exporter.get_finished_spans() if s.name == SPAN]
    assert server.parent is None


async def test_a_reload_applies_the_access_log_s_sample(gateway: Gateway) -> None:
    sampler = gateway.request_observer.access.sampler
    assert sampler.settings.sample == 0.0
    changes = await gateway.apply(config(sample=0.5))
    assert sampler.settings.sample == 0.5
    assert gateway.request_observer.access.sampler is sampler  # updated in place
    assert any("sample" in c for c in changes)
    assert gateway.config.access_log.sample == 0.5


async def test_a_reload_applies_the_tracing_ratio_at_once(
    gateway: Gateway, fakes: FakePods
) -> None:
    changes = await gateway.apply(config(ratio=1.0))
    assert changes and not any("restart" in c for c in changes)
    assert gateway.tracing.settings.sample_ratio == 1.0
    await infer(gateway, 1.0)
    assert fakes[POD].traceparents[-1] is not None


async def test_a_reload_of_the_otlp_endpoint_is_reported_and_not_applied(
    gateway: Gateway,
) -> None:
    before = gateway.tracing.settings.otlp_endpoint
    changes = await gateway.apply(config(ratio=0.5, endpoint="collector.elsewhere:4317"))
    assert any("tracing" in c and "restart" in c for c in changes)
    assert gateway.tracing.settings.otlp_endpoint == before
    assert gateway.config.tracing.otlp_endpoint == before
    assert gateway.tracing.settings.sample_ratio == 0.5  # the ratio still taken


async def test_a_retried_request_counts_its_tries_and_each_try_has_its_batch_span(
    gateway: Gateway, fakes: FakePods, exporter: InMemorySpanExporter
) -> None:
    pod = fakes[POD]
    pod.error, pod.fail_times = Code.UNAVAILABLE, 1  # the first try fails; then it answers
    info = await infer(gateway, 1.0, PARENT)
    assert (info.tries, info.pod, pod.calls) == (2, POD, 2)
    first, second = pod.traceparents
    assert first is not None and second is not None and first != second
    await until(lambda: sum(s.name == "batch" for s in exporter.get_finished_spans()) == 2)
    batches = [s for s in exporter.get_finished_spans() if s.name == "batch"]
    by_id = {f"{s.context.span_id:016x}": s for s in batches if s.context is not None}
    failed, answered = by_id[first.split("-")[2]], by_id[second.split("-")[2]]
    assert failed.status.status_code is StatusCode.ERROR
    assert answered.status.status_code is StatusCode.UNSET


async def test_the_access_line_says_where_the_request_went(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    await gateway.apply(config(sample=1.0))
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    info = await infer(gateway, 1.0)
    (record,) = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    line = extra_fields(record)
    assert line["request_id"] == info.request_id
    assert (line["model"], line["pod"], line["tries"], line["status"]) == ("sim", POD, 1, "OK")
    assert (line["rows"], line["batch_rows"], line["http_status"]) == (1, 1, 200)
