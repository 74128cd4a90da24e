"""The gRPC end of the load reports: decode each LoadReport and hand it to the store.

Two rpcs feed the same store. ``Exchange`` (two-way) answers every report with this replica's
identity, whether it leads, and the report's seq, so a gateway streaming to every replica can
tell which one acts. ``StreamLoad`` (one-way) is kept for gateways older than ``Exchange``.
Every replica records every report, leader or not, so a new leader has the whole load at once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import fields
from typing import Any

import grpc

from autoscaler.aggregate import GatewayReport, ReportStore
from autoscaler.keda import ExternalScaler
from autoscaler.load import Cost
from protos import autoscaler_pb2 as pb
from protos import autoscaler_pb2_grpc as pb_grpc
from protos import externalscaler_pb2_grpc as keda_grpc

__all__ = ["EXCHANGE", "STREAM_LOAD", "LoadReceiver", "decode_report", "start_receiver"]

EXCHANGE = "Exchange"  # the rpc names, as ``on_report`` is told them
STREAM_LOAD = "StreamLoad"

log = logging.getLogger(__name__)


# Every field but ``cost`` has the name of the LoadReport field it is decoded from.
_SAME_NAMED = tuple(f.name for f in fields(GatewayReport) if f.name != "cost")


def decode_report(msg: Any) -> GatewayReport:
    """A LoadReport message as the store's value type."""
    cost = None
    if msg.HasField("batch_cost"):
        cost = Cost(msg.batch_cost.fixed_s, msg.batch_cost.per_row_s)
    return GatewayReport(cost=cost, **{name: getattr(msg, name) for name in _SAME_NAMED})


class LoadReceiver(pb_grpc.LoadReportServiceServicer):  # type: ignore[misc]
    """Records every report of every stream into the store, stamped with the local clock;
    ``on_report`` hears each one with the name of the rpc it came on."""

    def __init__(
        self,
        store: ReportStore,
        *,
        clock: Callable[[], float],
        on_report: Callable[[GatewayReport, str], None] = lambda r, rpc: None,
        identity: str = "",
        is_leader: Callable[[], bool] = lambda: True,
    ) -> None:
        self._store = store
        self._clock = clock
        self._on_report = on_report
        self.identity = identity
        self._is_leader = is_leader

    def _record(self, msg: Any, rpc: str) -> GatewayReport:
        report = decode_report(msg)
        self._store.record(report, self._clock())
        self._on_report(report, rpc)
        return report

    async def StreamLoad(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        count = 0
        replica = "?"
        async for msg in request_iterator:
            replica = self._record(msg, STREAM_LOAD).replica_id
            count += 1
        log.info("gateway %s closed its one-way report stream after %d reports", replica, count)
        return pb.StreamLoadSummary(reports=count)

    async def Exchange(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        count = 0
        replica = "?"
        async for msg in request_iterator:
            report = self._record(msg, EXCHANGE)
            replica = report.replica_id
            count += 1
            peers = self._store.peers(report.model, self._clock())
            yield pb.LoadReportReply(
                autoscaler_id=self.identity,
                leader=self._is_leader(),
                model=report.model,
                ack_seq=report.seq,
                reports=count,
                gateway_replicas=[replica for replica, _ in peers],
                gateway_peers=[pb.GatewayPeer(replica_id=r, peer_address=a) for r, a in peers],
            )
        log.info("gateway %s closed its report exchange after %d reports", replica, count)


async def start_receiver(
    receiver: LoadReceiver, address: str, *, keda: ExternalScaler | None = None
) -> tuple[grpc.aio.Server, int]:
    """Serve the receiver (and KEDA's external scaler, if given) on ``address`` (host:port;
    port 0 picks one); returns the port."""
    server = grpc.aio.server()
    pb_grpc.add_LoadReportServiceServicer_to_server(receiver, server)
    if keda is not None:
        keda_grpc.add_ExternalScalerServicer_to_server(keda, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    return server, port
