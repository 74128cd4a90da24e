"""KEDA's external scaler over a real in-process gRPC server, with a real store and fake
decisions: activity from the reports, the pushed stream, the metric, and the errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest

from autoscaler.aggregate import GatewayReport, ReportStore
from autoscaler.decider import Decision, Reason
from autoscaler.keda import ExternalScaler, metric_name
from protos import externalscaler_pb2 as pb
from protos import externalscaler_pb2_grpc as pb_grpc

LIMIT_S = 10.0  # bounds a hang; no assertion is on timing


@dataclass
class World:
    clock: list[float] = field(default_factory=lambda: [100.0])
    store: ReportStore = field(default_factory=lambda: ReportStore(ttl_s=1.0, missing_hold_s=0))
    decisions: dict[str, Decision] = field(default_factory=dict)


@pytest.fixture
async def keda() -> AsyncIterator[tuple[World, ExternalScaler, pb_grpc.ExternalScalerStub]]:
    world = World()
    servicer = ExternalScaler(
        world.store,
        models=["sim", "other"],
        decisions=lambda: world.decisions,
        clock=lambda: world.clock[0],
        recheck_s=0.05,
    )
    server = grpc.aio.server()
    pb_grpc.add_ExternalScalerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield world, servicer, pb_grpc.ExternalScalerStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


def ref(model: str | None = "sim") -> pb.ScaledObjectRef:
    metadata = {} if model is None else {"model": model}
    return pb.ScaledObjectRef(name="so", namespace="models", scalerMetadata=metadata)


def record(world: World, servicer: ExternalScaler, **gauges: int | float) -> None:
    report = GatewayReport(replica_id="gw", model="sim", seq=1, interval_s=0.25, **gauges)  # type: ignore[arg-type]
    world.store.record(report, world.clock[0])
    servicer.notify("sim")


@pytest.mark.parametrize(
    "gauges",
    [{"queued_rows": 3, "queued_requests": 1}, {"inflight_rows": 2}, {"arrival_rows_per_s": 5.0}],
)
async def test_is_active_with_demand_in_the_reports(
    keda: tuple[World, ExternalScaler, pb_grpc.ExternalScalerStub], gauges: dict[str, float]
) -> None:
    world, servicer, stub = keda
    assert not (await stub.IsActive(ref())).result  # no report at all
    record(world, servicer)
    assert not (await stub.IsActive(ref())).result  # an idle report
    record(world, servicer, **gauges)
    assert (await stub.IsActive(ref())).result
    world.clock[0] += 5.0  # the report expired
    assert not (await stub.IsActive(ref())).result


async def test_stream_pushes_true_on_the_first_queued_report_and_again_on_changes(
    keda: tuple[World, ExternalScaler, pb_grpc.ExternalScalerStub],
) -> None:
    world, servicer, stub = keda
    stream = stub.StreamIsActive(ref())
    first = await asyncio.wait_for(stream.read(), LIMIT_S)
    assert first.result is False
    record(world, servicer, queued_rows=1, queued_requests=1)
    pushed = await asyncio.wait_for(stream.read(), LIMIT_S)
    assert pushed.result is True
    record(world, servicer)  # the queue drained
    assert (await asyncio.wait_for(stream.read(), LIMIT_S)).result is False
    stream.cancel()


async def test_metric_spec_and_metrics_are_the_decided_replicas(
    keda: tuple[World, ExternalScaler, pb_grpc.ExternalScalerStub],
) -> None:
    world, _, stub = keda
    spec = await stub.GetMetricSpec(ref())
    assert [(s.metricName, s.targetSize, s.targetSizeFloat) for s in spec.metricSpecs] == [
        (metric_name("sim"), 1, 1.0)
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref()))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # no decision yet
    world.decisions["sim"] = Decision(desired=4, current=1, reason=Reason.PANIC)
    request = pb.GetMetricsRequest(scaledObjectRef=ref(), metricName=metric_name("sim"))
    values = (await stub.GetMetrics(request)).metricValues
    assert [(v.metricName, v.metricValue, v.metricValueFloat) for v in values] == [
        ("replicas-sim", 4, 4.0)
    ]


@pytest.mark.parametrize(
    ("model", "code", "words"),
    [
        (None, grpc.StatusCode.INVALID_ARGUMENT, "'model'"),
        ("", grpc.StatusCode.INVALID_ARGUMENT, "'model'"),
        ("nope", grpc.StatusCode.NOT_FOUND, "'nope' is not configured"),
    ],
)
async def test_a_trigger_without_a_known_model_is_refused_on_every_rpc(
    keda: tuple[World, ExternalScaler, pb_grpc.ExternalScalerStub],
    model: str | None,
    code: grpc.StatusCode,
    words: str,
) -> None:
    _, _, stub = keda
    calls = [
        stub.IsActive(ref(model)),
        stub.GetMetricSpec(ref(model)),
        stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(model))),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == code
        assert words in (err.value.details() or "")
    stream = stub.StreamIsActive(ref(model))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(stream.read(), LIMIT_S)
    assert err.value.code() == code
