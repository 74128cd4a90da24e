"""An autoscaler process in KEDA mode, asked as KEDA asks (``externalscaler.ExternalScaler`` on
its gRPC port), fed LoadReports on ``Exchange`` as a gateway feeds it, over the API double.

At idle the model is not active. The first report with a queue for the model at zero makes
``StreamIsActive`` push ``true``; ``GetMetrics`` then serves the decider's replicas (what its
``autoscaler_desired_replicas`` exports), and the Deployment's scale is never patched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from loadtest.kube_api.objects import DEPLOYMENTS, deployment, spec_replicas, write_kubeconfig
from loadtest.kube_api.server import KubeApiServer
from loadtest.stack.procs import HOST, start_autoscaler
from protos import autoscaler_pb2 as report_pb
from protos import autoscaler_pb2_grpc as report_grpc
from protos import externalscaler_pb2 as pb
from protos import externalscaler_pb2_grpc as pb_grpc
from tests.integration.autoscaler.support import NS, autoscaler_config, scrape, until

LIMIT_S = 30.0  # bounds a hang; nothing here asserts on timing
REF = pb.ScaledObjectRef(name="sim", namespace=NS, scalerMetadata={"model": "sim"})


@pytest.fixture
async def kube() -> AsyncIterator[KubeApiServer]:
    """The API double, holding the Deployment ``sim`` at zero replicas."""
    async with KubeApiServer() as server:
        server.store.create(DEPLOYMENTS, NS, deployment("sim", 0, {"app": "sim"}))
        yield server


async def reports(queue: asyncio.Queue[report_pb.LoadReport]) -> AsyncIterator[object]:
    while True:
        yield await queue.get()


def scale_writes(kube: KubeApiServer) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in kube.requests if m in ("PATCH", "PUT") and "deployments" in p]


async def test_keda_mode_serves_activity_and_the_decided_replicas_and_never_patches(
    kube: KubeApiServer, tmp_path: Path
) -> None:
    config = autoscaler_config(write_kubeconfig(tmp_path / "kubeconfig", kube.url, NS), "a")
    config["actuation"] = "keda"
    config["models"][0]["scaling"]["min_replicas"] = 0
    scaler = await asyncio.to_thread(start_autoscaler, config)
    address = f"{HOST}:{scaler.grpc_port}"
    channel = grpc.aio.insecure_channel(address)
    queue: asyncio.Queue[report_pb.LoadReport] = asyncio.Queue()
    sender: asyncio.Task[None] | None = None
    try:
        keda = pb_grpc.ExternalScalerStub(channel)
        assert not (await keda.IsActive(REF, timeout=5)).result
        spec = (await keda.GetMetricSpec(REF, timeout=5)).metricSpecs
        assert [(s.metricName, s.targetSize) for s in spec] == [("replicas-sim", 1)]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await keda.IsActive(pb.ScaledObjectRef(name="sim"), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        stream = keda.StreamIsActive(REF)
        assert (await asyncio.wait_for(stream.read(), LIMIT_S)).result is False
        exchange = report_grpc.LoadReportServiceStub(channel).Exchange(reports(queue))

        async def send() -> None:  # a gateway with one request queued, every 100 ms
            seq = 0
            while True:
                seq += 1
                await queue.put(
                    report_pb.LoadReport(
                        replica_id="gw-keda",
                        model="sim",
                        seq=seq,
                        interval_s=0.1,
                        queued_requests=1,
                        queued_rows=4,
                        slots_per_pod=2,
                        devices_per_pod=1,
                    )
                )
                await exchange.read()  # the ack: recorded
                await asyncio.sleep(0.1)

        sender = asyncio.create_task(send())
        assert (await asyncio.wait_for(stream.read(), LIMIT_S)).result is True
        stream.cancel()
        assert (await keda.IsActive(REF, timeout=5)).result

        # The leader decided a scale from zero and left it to KEDA.
        await until(
            lambda: (
                scrape(scaler.metrics_url, "autoscaler_scale_changes_total", result="keda") >= 1
            ),
            LIMIT_S,
        )
        request = pb.GetMetricsRequest(scaledObjectRef=REF, metricName="replicas-sim")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LIMIT_S
        while True:  # the same decision read both ways (it may move between two reads)
            desired = scrape(scaler.metrics_url, "autoscaler_desired_replicas", model="sim")
            values = (await keda.GetMetrics(request, timeout=5)).metricValues
            if desired > 0 and [v.metricValue for v in values] == [int(desired)]:
                break
            assert loop.time() < deadline, (desired, values)
            await asyncio.sleep(0.1)
        assert values[0].metricName == "replicas-sim"
        assert values[0].metricValueFloat == desired

        assert spec_replicas(kube.store, NS, "sim") == 0
        assert scale_writes(kube) == []
        assert scrape(scaler.metrics_url, "autoscaler_scale_changes_total", result="patched") == 0
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await sender
        await channel.close()
        await asyncio.to_thread(scaler.stop)
