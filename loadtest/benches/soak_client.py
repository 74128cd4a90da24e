"""The soak's load: one client that sends the whole mix, run by the open-loop generator.

``MixedClient`` is an ``InferClient``: each ``infer()`` picks the next lane (``soak_mix``) and
sends a good request on that protocol's load client (``loadtest.clients``, as the generator
builds them), a bad request or a disconnect (``soak_wire``); it tallies the outcome in the
interval the request was sent in, and raises only when the outcome is not what the lane should
get (a good request not ``ok``, a bad one not refused), so the generator's own figures count
exactly those as errors. ``soak_job`` is the generator process: the open-loop schedule
(``generators.open_loop.run_schedule``) sent on a ``MixedClient``; its result carries the tally.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field, fields

from loadtest.benches.soak_mix import Lane, LanePicker, Tally, classify, interval_of
from loadtest.benches.soak_wire import OddRequests
from loadtest.clients.base import ClientSpec, InferClient, InferError, error_kind, is_grpc
from loadtest.clients.payload import SimPayload
from loadtest.generators.open_loop import OpenLoopConfig, generator_client, run_schedule
from loadtest.generators.workers import Ready
from loadtest.results.open_loop_result import OpenLoopResult

__all__ = ["MixedClient", "SoakLoad", "SoakShare", "soak_job"]

_PREWARM = 2  # good requests per protocol before the start, to open connections


@dataclass(frozen=True, slots=True)
class SoakLoad:
    """What every generator process runs (picklable): the lanes with their shares, where to
    send (the HTTP base URL, the gRPC ``host:port``), the open-loop schedule, and the intervals
    the tally is cut into (``intervals`` of ``interval_s`` from the window's opening)."""

    lanes: tuple[tuple[Lane, float], ...]
    http_url: str | None
    grpc_target: str | None
    load: OpenLoopConfig
    interval_s: float
    intervals: int
    payload: SimPayload = field(default_factory=SimPayload)
    timeout_s: float = 10.0
    verify_every: int = 16
    cut_max_s: float = 0.010  # a disconnect leaves after a uniform 0 .. this
    seed: int = 1

    def target(self, wire: str) -> str:
        """The address of ``wire`` (a client kind); ValueError when the soak has none."""
        address = self.grpc_target if is_grpc(wire) else self.http_url
        if address is None:
            raise ValueError(f"a {wire} lane needs a {'gRPC' if is_grpc(wire) else 'HTTP'} target")
        return address


@dataclass(slots=True)
class SoakShare(OpenLoopResult):
    """One generator process's result: the open-loop figures plus its tally of outcomes."""

    tally: Tally = field(default_factory=Tally)


class MixedClient:
    """Sends each request on the next lane of the mix; tallies every outcome (``tally``)."""

    def __init__(self, job: SoakLoad, index: int = 0) -> None:
        self._lanes = [lane for lane, _ in job.lanes]
        self._picker = LanePicker([share for _, share in job.lanes], start=index)
        self._job = job
        self._rng = random.Random(job.seed * 1000 + index)
        self.tally = Tally()
        self._opens_ns = 0
        self._interval_ns = max(1, int(job.interval_s * 1e9))
        self._good: dict[str, InferClient] = {}
        for lane in self._lanes:
            if lane.category == "good" and lane.wire not in self._good:
                spec = ClientSpec(
                    lane.wire,
                    job.target(lane.wire),
                    job.payload,
                    verify_every=job.verify_every,
                    timeout_s=job.timeout_s,
                )
                self._good[lane.wire] = generator_client(spec)
        odd = [lane for lane in self._lanes if lane.category != "good"]
        wants_http = any(not is_grpc(lane.wire) for lane in odd)
        wants_grpc = any(is_grpc(lane.wire) for lane in odd)
        self._odd = OddRequests(
            job.target("http-json") if wants_http else None,
            job.target("grpc") if wants_grpc else None,
            job.payload,
            job.timeout_s,
        )

    @property
    def verified(self) -> int:
        return sum(c.verified for c in self._good.values())

    def open_window(self, opens_ns: int) -> None:
        """The window opens at ``opens_ns`` (``time.monotonic_ns``): interval 0 starts there,
        what is sent before counts as warm-up (interval -1)."""
        self._opens_ns = opens_ns

    async def prewarm(self) -> None:
        """Open the good clients' connections before the clock starts (nothing is tallied)."""
        calls = [c.infer() for c in self._good.values() for _ in range(_PREWARM)]
        await asyncio.gather(*calls, return_exceptions=True)

    async def infer(self) -> None:
        lane = self._lanes[self._picker.next()]
        interval = interval_of(
            time.monotonic_ns(), self._opens_ns, self._interval_ns, self._job.intervals
        )
        if lane.category == "good":
            await self._good_request(lane, interval)
        elif lane.category == "bad":
            await self._bad_request(lane, interval)
        else:
            cut_s = self._rng.uniform(0.0, self._job.cut_max_s)
            outcome = await self._odd.disconnect(lane, cut_s)
            self.tally.add(interval, lane.name, outcome)
            if outcome == "error":
                raise InferError("disconnect error", f"{lane.name} could not send")

    async def _good_request(self, lane: Lane, interval: int) -> None:
        try:
            await self._good[lane.wire].infer()
        except asyncio.CancelledError:  # the generator gave up on it at the end of its drain
            self.tally.add(interval, lane.name, "lost", "unfinished")
            raise
        except Exception as exc:
            kind = error_kind(exc)
            self.tally.add(interval, lane.name, classify("good", kind), kind)
            raise
        self.tally.add(interval, lane.name, "ok")

    async def _bad_request(self, lane: Lane, interval: int) -> None:
        try:
            kind = await self._odd.bad(lane)
        except asyncio.CancelledError:
            self.tally.add(interval, lane.name, "wrong", "unfinished")
            raise
        outcome = classify("bad", kind)
        self.tally.add(interval, lane.name, outcome, kind if outcome != "expected" else None)
        if outcome == "wrong":
            raise InferError(f"bad request answered {kind or 'OK'}", lane.name)

    async def aclose(self) -> None:
        for client in self._good.values():
            await client.aclose()
        await self._odd.aclose()


async def soak_job(job: SoakLoad, index: int, ready: Ready) -> SoakShare:
    """A ``workers`` job: this process's share of the open-loop schedule sent on a
    ``MixedClient``; the result with the tally."""
    client = MixedClient(job, index)
    try:
        due_ns = job.load.schedule(index)
        await client.prewarm()
        start_at = await ready()
        client.open_window(int((start_at + job.load.warmup_s) * 1e9))
        share = job.load.offered_rate / max(1, job.load.processes)
        result = await run_schedule(client, job.load, due_ns, start_at, share, index=index)
        base = {f.name: getattr(result, f.name) for f in fields(OpenLoopResult)}
        return SoakShare(**base, tally=client.tally)
    finally:
        await client.aclose()
