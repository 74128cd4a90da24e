"""The load reports to ONE autoscaler replica: a two-way stream, else the one-way one.

``ReportStream`` opens ``Exchange`` (protos/autoscaler.proto): every interval one LoadReport per
model goes out and the replica answers each with its identity, whether it leads, and the seq
it recorded. An autoscaler older than ``Exchange`` answers UNIMPLEMENTED: the stream falls back
to ``StreamLoad`` at once (no backoff) and tries ``Exchange`` again after that stream ends, so a
replica upgraded in place is spoken to two-way again. Any other failure waits a capped, jittered
backoff of this stream's own (one replica away does not slow the others). While the replica is
away no report is made: the counters accumulate into the next one. On stop the stream sends a
``final`` report per model, so the replica stops counting this gateway without holding for it.
Each reply also lists the gateway replicas sharing the model's pods (``on_reply`` hears it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import grpc

from gateway.backoff import Backoff
from gateway.tasks import cancel_and_wait
from protos import autoscaler_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from gateway.reporter import ModelSnapshot, ReportBuilder

__all__ = ["CHANNEL_OPTIONS", "ReportStream"]

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),  # find a vanished autoscaler without waiting on TCP
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]


class ReportStream:
    """Streams to one autoscaler address until stopped; see the module docstring."""

    def __init__(
        self,
        address: str,
        *,
        builder: ReportBuilder,
        snapshots: Callable[[float], list[ModelSnapshot]],
        interval_s: float,
        clock: Callable[[], float],
        backoff: Backoff,
        on_reply: Callable[[ReportStream, Any], None] = lambda stream, reply: None,
    ) -> None:
        self.address = address
        self._on_reply = on_reply
        self.builder = builder  # its own: deltas and seqs are per replica streamed to
        self._snapshots = snapshots
        self._interval_s = interval_s
        self._clock = clock
        self._backoff = backoff
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._channel: grpc.aio.Channel | None = None
        self.two_way = True  # False while the replica only speaks StreamLoad
        self.connected = False
        self.leader = False  # the replica's latest reply said it holds the Lease
        self.autoscaler_id = ""  # from its replies
        self.reports_sent = 0
        self.replies = 0
        self.stream_failures = 0
        self.fallbacks = 0  # times it answered UNIMPLEMENTED to Exchange

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Say goodbye (final reports) if connected, within ``timeout_s``; then stop."""
        self._stop.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as channel:
            self._channel = channel
            stub = pb_grpc.LoadReportServiceStub(channel)
            while not self._stop.is_set():
                sent_before = self.reports_sent
                try:
                    if self.two_way:
                        await self._exchange(stub)
                    else:
                        await stub.StreamLoad(self._reports())
                        self.two_way = True  # that stream ended: ask for Exchange again
                except grpc.aio.AioRpcError as exc:
                    if self.two_way and exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                        self.two_way = False
                        self.fallbacks += 1
                        log.info("autoscaler %s has no Exchange: streaming one-way", self.address)
                        continue
                    self._failed(exc.code().name, worked=self.reports_sent > sent_before + 1)
                except Exception:  # never let the reporter die; serving does not depend on it
                    self._failed("error", worked=self.reports_sent > sent_before + 1)
                    log.exception("load report stream to %s: error", self.address)
                finally:
                    self.connected = False
                    self.leader = False
                if self._stop.is_set():
                    break
                if self.reports_sent > sent_before + 1:  # the stream had worked: start afresh
                    self._backoff.reset()
                delay = self._backoff.next()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)

    def _failed(self, why: str, *, worked: bool) -> None:
        self.stream_failures += 1
        if worked:  # a stream that had worked: its failure is news again (WARNING), backoff anew
            self._backoff.reset()
        self.two_way = True  # the replica may have been replaced by a newer one: ask again
        log.log(
            logging.WARNING if self._backoff.failures == 0 else logging.DEBUG,
            "load report stream to %s failed: %s",
            self.address,
            why,
        )

    async def _exchange(self, stub: Any) -> None:
        """The two-way stream: reports out, one reply in for each."""
        async for reply in stub.Exchange(self._reports()):
            self.replies += 1
            self.connected = True
            self.leader = reply.leader
            self.autoscaler_id = reply.autoscaler_id
            self._on_reply(self, reply)

    async def _reports(self) -> AsyncIterator[Any]:
        """The stream's messages: every model each interval; finals when stopping."""
        while not self._stop.is_set():
            now = self._clock()
            for msg in self.builder.build_all(self._snapshots(now), now):
                yield msg
                self.reports_sent += 1
            ready = grpc.ChannelConnectivity.READY
            self.connected = self._channel is not None and self._channel.get_state() == ready
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval_s)
        for msg in self.builder.finals():
            yield msg
