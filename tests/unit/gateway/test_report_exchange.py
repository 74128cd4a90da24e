"""The two-way report stream and its fallbacks, on real gRPC servers on loopback.

New gateway and new autoscaler speak ``Exchange`` (each report answered with the replica's
identity, leadership and the seq recorded); an old gateway's one-way ``StreamLoad`` is still
aggregated; a new gateway falls back to ``StreamLoad`` when the autoscaler answers
UNIMPLEMENTED; and a gateway keeps one stream per autoscaler endpoint as they come and go.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Mapping

import grpc

from autoscaler.aggregate import GatewayReport, ReportStore
from autoscaler.receiver import EXCHANGE, STREAM_LOAD, LoadReceiver, start_receiver
from gateway.config import AutoscalerSettings
from gateway.discovery.endpoints import Endpoint
from gateway.discovery.store import EndpointSnapshot
from gateway.reporter import LoadReporter, ReportBuilder
from protos import autoscaler_pb2 as pb
from protos import autoscaler_pb2_grpc as pb_grpc
from tests.fakes.reports import Snapshots, snap, until


class Autoscaler:
    """One receiver on a loopback port, with a store, a leadership flag and the rpcs heard."""

    def __init__(self, identity: str, *, leader: bool = True) -> None:
        self.store = ReportStore(ttl_s=5.0, missing_hold_s=60.0)
        self.leader = leader
        self.rpcs: list[tuple[str, str]] = []  # (gateway, rpc) per report
        self.receiver = LoadReceiver(
            self.store,
            clock=self.now,
            on_report=self._heard,
            identity=identity,
            is_leader=lambda: self.leader,
        )

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def _heard(self, report: GatewayReport, rpc: str) -> None:
        self.rpcs.append((report.replica_id, rpc))

    def has_load(self) -> bool:
        return self.store.load("sim", self.now()) is not None

    async def start(self, old: bool = False) -> str:
        """Serve on a free port; ``old``: only ``StreamLoad``, as before ``Exchange``."""
        if old:
            self.server = grpc.aio.server()
            handler = grpc.stream_unary_rpc_method_handler(
                self.receiver.StreamLoad,
                request_deserializer=pb.LoadReport.FromString,
                response_serializer=pb.StreamLoadSummary.SerializeToString,
            )
            service = "autoscaler.v1.LoadReportService"
            generic = grpc.method_handlers_generic_handler(service, {"StreamLoad": handler})
            self.server.add_generic_rpc_handlers((generic,))
            port = self.server.add_insecure_port("127.0.0.1:0")
            await self.server.start()
        else:
            self.server, port = await start_receiver(self.receiver, "127.0.0.1:0")
        return f"127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop(None)

    async def __aenter__(self) -> Autoscaler:
        return self


def reporter(settings: AutoscalerSettings, snapshots: Snapshots | None = None) -> LoadReporter:
    return LoadReporter(
        settings=settings,
        snapshots=snapshots or Snapshots(),
        rng=random.Random(1),
        backoff_base_s=0.02,
        backoff_cap_s=0.1,
    )


def to(address: str) -> AutoscalerSettings:
    return AutoscalerSettings(address=address, report_interval_ms=20, replica_id="gw-1")


async def test_the_autoscaler_answers_each_report_with_its_identity_and_leadership() -> None:
    async with Autoscaler("as-a") as scaler:
        rep = reporter(to(await scaler.start()))
        rep.start()
        try:
            await until(scaler.has_load)
            (stream,) = rep.streams.values()
            await until(lambda: stream.replies >= 2 and rep.leader_connected)
            assert (stream.autoscaler_id, stream.two_way, stream.fallbacks) == ("as-a", True, 0)
            assert set(scaler.rpcs) == {("gw-1", EXCHANGE)}
            scaler.leader = False  # it lost the Lease: the next replies say so
            await until(lambda: not stream.leader)
            assert rep.connected and not rep.leader_connected
        finally:
            await rep.stop()
        assert not scaler.has_load(), "the goodbye went over the exchange"


async def test_an_old_gateway_streaming_one_way_is_still_aggregated() -> None:
    async with Autoscaler("as-a") as scaler:
        builder = ReportBuilder("gw-old")

        async def reports() -> AsyncIterator[pb.LoadReport]:
            for i in range(3):
                yield builder.build(snap(inflight_rows=5), float(i))

        async with grpc.aio.insecure_channel(await scaler.start()) as channel:
            summary = await pb_grpc.LoadReportServiceStub(channel).StreamLoad(reports())
        assert summary.reports == 3
        load = scaler.store.load("sim", scaler.now())
        assert load is not None and load.inflight_rows == 5
        assert scaler.rpcs == [("gw-old", STREAM_LOAD)] * 3


async def test_a_new_gateway_falls_back_to_one_way_when_the_autoscaler_is_old() -> None:
    async with Autoscaler("as-old") as scaler:
        rep = reporter(to(await scaler.start(old=True)))
        rep.start()
        try:
            await until(scaler.has_load)
            (stream,) = rep.streams.values()
            await until(lambda: rep.connected)
            assert (stream.two_way, stream.fallbacks, stream.replies) == (False, 1, 0)
            assert set(scaler.rpcs) == {("gw-1", STREAM_LOAD)}
            assert not rep.leader_connected, "an old autoscaler never says it leads"
        finally:
            await rep.stop()
        assert not scaler.has_load(), "the goodbye went one-way"


async def test_after_an_old_autoscaler_is_replaced_the_gateway_exchanges_again() -> None:
    async with Autoscaler("as-old") as old:
        address = await old.start(old=True)
        rep = reporter(to(address))
        rep.start()
        try:
            await until(old.has_load)
            (stream,) = rep.streams.values()
            await old.server.stop(None)  # rolled: a new one comes up on the same address
            port = int(address.rsplit(":", 1)[1])
            new = Autoscaler("as-new")
            new.server = grpc.aio.server()
            pb_grpc.add_LoadReportServiceServicer_to_server(new.receiver, new.server)
            assert new.server.add_insecure_port(f"127.0.0.1:{port}") == port
            await new.server.start()
            async with new:
                await until(lambda: stream.replies > 0)
                assert (stream.autoscaler_id, stream.two_way) == ("as-new", True)
                assert ("gw-1", EXCHANGE) in new.rpcs
        finally:
            await rep.stop()


async def test_one_stream_per_autoscaler_endpoint_as_they_come_and_go() -> None:
    async with Autoscaler("as-a") as a, Autoscaler("as-b", leader=False) as b:
        first, second = await a.start(), await b.start()
        settings = AutoscalerSettings.model_validate(
            {"discovery": {"service": "autoscaler"}, "report_interval_ms": 20, "replica_id": "gw"}
        )
        rep = reporter(settings)  # not started: the endpoint views are handed in by the test

        def view(*endpoints: Endpoint) -> EndpointSnapshot:
            return EndpointSnapshot({e.address: e for e in endpoints})

        try:
            rep.track(view(Endpoint(first), Endpoint(second)))
            await until(lambda: a.has_load() and b.has_load())
            await until(
                lambda: rep.leader_connected and all(s.replies for s in rep.streams.values())
            )
            assert {s.autoscaler_id: s.leader for s in rep.streams.values()} == {
                "as-a": True,
                "as-b": False,
            }
            sent = rep.reports_sent
            rep.track(view(Endpoint(first), Endpoint(second, ready=False, terminating=True)))
            assert set(rep.streams) == {first, second}, "terminating but serving: kept"
            rep.track(view(Endpoint(first)))
            assert set(rep.streams) == {first}
            await until(lambda: not b.has_load())  # its stream said goodbye
            assert rep.reports_sent >= sent, "a closed stream's reports stay counted"
            assert a.has_load()
        finally:
            await rep.stop()
        assert not a.has_load()


async def test_each_gateway_hears_the_replicas_that_share_the_pods() -> None:
    heard: dict[str, list[str]] = {}
    addresses: dict[str, dict[str, str]] = {}

    def on_peers(me: str) -> Callable[[str, str, Mapping[str, str]], None]:
        def record(model: str, replica: str, peers: Mapping[str, str]) -> None:
            assert (model, replica) == ("sim", me)
            heard[me] = list(peers)
            addresses[me] = dict(peers)

        return record

    async with Autoscaler("as-a") as scaler:
        address = await scaler.start()
        reps = []
        for me in ("gw-b", "gw-a"):
            settings = AutoscalerSettings(address=address, report_interval_ms=20, replica_id=me)
            peer = "" if me == "gw-b" else "10.0.0.1:8000"  # gw-b takes no requests sent on
            rep = LoadReporter(
                settings=settings, snapshots=Snapshots(), on_peers=on_peers(me), peer_address=peer
            )
            rep.start()
            reps.append(rep)
        try:
            both = ["gw-a", "gw-b"]
            await until(lambda: heard.get("gw-a") == both and heard.get("gw-b") == both)
            told = {"gw-a": "10.0.0.1:8000", "gw-b": ""}  # each one's address, as it said
            assert addresses["gw-a"] == addresses["gw-b"] == told
            await reps[0].stop()  # gw-b says goodbye: gw-a is alone again
            await until(lambda: heard["gw-a"] == ["gw-a"])
        finally:
            for rep in reps:
                await rep.stop()
