"""The gRPC half of ``loadtest receiver-bench``: LoadReports over real ``StreamLoad`` streams.

The autoscaler's ``LoadReceiver`` is served by grpc.aio in this process; each client process
opens one stream and, once all are connected, sends its share of pre-serialized reports (the
stub sends the bytes as they are, so a client costs little). The server's CPU (this process,
gRPC's threads included) is read from the moment the clients are told to go until the last
report is recorded.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from typing import Any

from autoscaler.aggregate import ReportStore
from autoscaler.receiver import LoadReceiver, start_receiver
from protos import autoscaler_pb2 as pb

__all__ = ["METHOD", "over_grpc"]

METHOD = "/autoscaler.v1.LoadReportService/StreamLoad"


def _client(
    address: str, gateways: int, models: int, index: int, count: int, ready: Any, go: Any
) -> None:
    """One gateway-like client: one stream, ``count`` reports, after ``go``."""
    import grpc

    from loadtest.benches.receiver import fleet_reports

    reports = fleet_reports(gateways, models)[index:]
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        call = channel.stream_unary(
            METHOD, request_serializer=None, response_deserializer=pb.StreamLoadSummary.FromString
        )
        ready.put(index)
        go.wait(60)

        def messages() -> Any:
            for i in range(count):
                yield reports[i % len(reports)]

        call(messages(), timeout=300)


async def _serve(config: Any) -> dict[str, Any]:
    streams = max(1, config.client_processes)
    share = config.grpc_reports // streams
    total = share * streams
    store = ReportStore(ttl_s=1.0, missing_hold_s=60.0)
    done = asyncio.Event()
    count = [0]

    def on_report(*_heard: object) -> None:  # (report) or (report, rpc name)
        count[0] += 1
        if count[0] >= total:
            done.set()

    receiver = LoadReceiver(store, clock=time.monotonic, on_report=on_report)
    server, port = await start_receiver(receiver, "127.0.0.1:0")
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(
            target=_client,
            args=(f"127.0.0.1:{port}", config.gateways, config.models, i, share, ready, go),
            daemon=True,
        )
        for i in range(streams)
    ]
    loop = asyncio.get_running_loop()
    try:
        for p in procs:
            p.start()
        for _ in procs:
            await loop.run_in_executor(None, ready.get, True, 60)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        go.set()
        await asyncio.wait_for(done.wait(), 300)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        for p in procs:
            await loop.run_in_executor(None, p.join, 30)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        await server.stop(1)
    return {
        "streams": streams,
        "reports": total,
        "server_cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "reports_per_core_s": round(total / cpu) if cpu > 0 else None,
        "us_per_report": round(cpu / total * 1e6, 2),
        "reports_per_wall_s": round(total / wall) if wall > 0 else None,
    }


def over_grpc(config: Any, _reports: list[bytes] | None = None) -> dict[str, Any]:
    """Serve the receiver, stream ``config.grpc_reports`` reports at it; the figures."""
    return asyncio.run(_serve(config))
