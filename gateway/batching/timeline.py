"""A pod's devices as the gateway sees them: which batches run, which wait, when one frees. Pure.

A pod runs one batch per device at a time and queues the rest in arrival order. The gateway
keeps a batch waiting on the pod (a slot beyond its devices) so that a device never idles while
its next batch crosses the network. Times here are on the gateway's clock, as it observes
answers: a batch sent at ``s`` cannot be answered before ``s + rtt`` plus its device time, nor
before the batch it waits behind was answered plus its device time. From that follow:

- a batch's *service* (device) time: its answer minus the later of ``sent + rtt`` and the answer
  of the batch it waited behind. Neither the wait on the pod nor the round trip is the cost of
  the batch; fitting them as such would inflate the cost model, and a late send would then
  predict later sends (a device left idle reads as a slower device);
- when a new batch should be sent so that it reaches a device as it frees: the predicted answer
  of the batches ahead of it minus one round trip (see ``policy.decide``), so the batch bound
  for the pod's queue keeps gathering rows until then.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from gateway.batching.cost_model import BatchCost

__all__ = ["DeviceTimeline", "InFlight", "RoundTrip"]


class RoundTrip:
    """A pod's round-trip time (request out, answer back, no device time), smoothed.

    The first sample is dropped (it pays for the connection), and a sample over ``spike``
    times the estimate counts as that much (one stalled answer must not move it far).
    """

    def __init__(self, initial_s: float = 0.001, *, weight: float = 0.25, spike: float = 3.0):
        self.seconds = initial_s
        self._weight = weight
        self._spike = spike
        self._seen = 0

    def observe(self, seconds: float) -> None:
        self._seen += 1
        if self._seen > 1:
            sample = min(seconds, self._spike * self.seconds)
            self.seconds += self._weight * (sample - self.seconds)


@dataclass(slots=True, eq=False)
class InFlight:
    """One batch on the pod: its rows, when it was sent, and the answer it waits behind
    (None: it waits for a device; -inf: it had one at once)."""

    rows: int
    sent: float
    after: float | None

    def start(self, rtt_s: float) -> float:
        """When its device time began, on the gateway's answer clock."""
        return max(self.sent + rtt_s, self.after if self.after is not None else self.sent)


class DeviceTimeline:
    """The batches in flight to one pod with ``devices`` parallel devices; times passed in."""

    def __init__(self, devices: int = 1, rtt: RoundTrip | None = None) -> None:
        self.devices = max(1, devices)
        self.rtt = rtt or RoundTrip()
        self._batches: list[InFlight] = []  # in send order

    def __len__(self) -> int:
        return len(self._batches)

    def _running(self) -> int:
        return sum(1 for b in self._batches if b.after is not None)

    def sent(self, rows: int, now: float) -> InFlight:
        """Record a batch sent now; it has a device at once when one is free."""
        after = float("-inf") if self._running() < self.devices else None
        batch = InFlight(rows, now, after)
        self._batches.append(batch)
        return batch

    def on_wire(self, batch: InFlight, now: float) -> None:
        """The batch actually left now (after merging)."""
        batch.sent = now

    def finished(self, batch: InFlight, now: float) -> float:
        """Record a batch's answer (or failure) now; return its device time in seconds.

        The oldest waiting batch takes the device it frees. A batch answered while still
        counted as waiting (the pod ran it sooner than its order said) is timed from its send.
        """
        if batch not in self._batches:
            return 0.0
        self._batches.remove(batch)
        service = max(0.0, now - batch.start(self.rtt.seconds))
        for other in self._batches:
            if other.after is None and self._running() < self.devices:
                other.after = now
        return service

    def send_at(self, cost: BatchCost | None, now: float) -> float:
        """When a batch should leave to reach a device as it frees: now when one is idle (or
        nothing is known of the cost), else the predicted answer of the batches ahead of it
        (at their quick end) minus a round trip; never earlier than now."""
        if self._running() < self.devices or cost is None:
            return now
        rtt = self.rtt.seconds
        ends = [
            b.start(rtt) + cost.quick_seconds(b.rows) for b in self._batches if b.after is not None
        ]
        heapq.heapify(ends)
        for b in self._batches:
            if b.after is None:
                heapq.heappush(ends, heapq.heappop(ends) + cost.quick_seconds(b.rows))
        return max(now, ends[0] - rtt)
