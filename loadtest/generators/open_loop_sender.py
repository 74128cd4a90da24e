"""The open-loop generator's hot loop: send on schedule from a timer callback, record on answer.

One process's schedule is a list of due times (``time.monotonic_ns``). A timer callback sends
every request due by now, then re-arms itself for the next due time, rounded up to the loop's
1 ms timer resolution (so it never spins; the lag this costs, under ~1 ms, is measured). A
request goes out through the client's ``submit(done)`` when it has one (no task, no coroutine)
or as a task running ``infer()``; its latency, from its due time, is appended to a plain list.
With ``per_second``, the due time of each answer, send and error is kept beside it, so the run
can be cut into seconds afterwards (``loadtest.results.per_second``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections import Counter
from typing import Any

from loadtest.clients.base import InferClient, error_kind
from loadtest.results.open_loop_result import OVERFLOW

__all__ = ["Sender"]

_TICK_NS = 1_000_000  # the event loop's timer resolution (uvloop rounds to whole ms)


class Sender:
    """Sends ``schedule`` (absolute ns, ascending) on ``client``; counts what falls in the window.

    A request is counted when its due time is in ``[opens, closes)``. At most ``limit`` requests
    are in flight; one due beyond that is not sent and counts as an ``overflow`` error.
    With ``per_second``, ``ok_due``, ``sent_due`` and ``error_due`` hold the due times of the
    counted answers (beside ``latencies``), sends (beside ``lags``) and errors (with the kind).
    """

    def __init__(
        self,
        client: InferClient,
        schedule: list[int],
        opens: int,
        closes: int,
        limit: int,
        *,
        per_second: bool = False,
    ) -> None:
        self.client = client
        self.schedule = schedule
        self.opens, self.closes, self.limit = opens, closes, limit
        self.latencies: list[int] = []  # ns, counted successes
        self.lags: list[int] = []  # ns, counted sends
        self.errors: Counter[str] = Counter()
        self.sample = ""
        self.due = 0
        self.sent = 0
        self.outstanding = 0
        self.counted_out = 0  # counted requests still in flight
        self.cpu_at_open: float | None = None
        self.closed = False  # after the drain: late answers are ignored
        self.ok_due: list[int] | None = [] if per_second else None
        self.sent_due: list[int] | None = [] if per_second else None
        self.error_due: list[tuple[int, str]] | None = [] if per_second else None
        self._next = 0
        self._loop = asyncio.get_running_loop()
        self._dispatched: asyncio.Future[None] = self._loop.create_future()
        self._drained = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._submit: Any = getattr(client, "submit", None)

    async def run(self) -> None:
        """Send the whole schedule; return once the last request has gone out."""
        if self.schedule:
            self._arm()
            await self._dispatched

    async def drain(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for answers; return how many counted ones never came."""
        if self.outstanding:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout_s)
        self.closed = True
        left = self.counted_out
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        return left

    def _arm(self) -> None:
        delay_ns = self.schedule[self._next] - time.monotonic_ns()
        if delay_ns <= 0:
            self._loop.call_soon(self._tick)
        else:
            self._loop.call_later(math.ceil(delay_ns / _TICK_NS) / 1000, self._tick)

    def _tick(self) -> None:
        schedule, n = self.schedule, len(self.schedule)
        monotonic_ns = time.monotonic_ns
        now = monotonic_ns()
        i = self._next
        while i < n and schedule[i] <= now:
            t = schedule[i]
            i += 1
            counted = self.opens <= t < self.closes
            if counted:
                if self.cpu_at_open is None:
                    self.cpu_at_open = time.process_time()
                self.due += 1
            if self.outstanding >= self.limit:
                if counted:
                    self.errors[OVERFLOW] += 1
                    if self.error_due is not None:
                        self.error_due.append((t, OVERFLOW))
                continue
            self.outstanding += 1
            if counted:
                self.sent += 1
                self.counted_out += 1
                self.lags.append(monotonic_ns() - t)
                if self.sent_due is not None:
                    self.sent_due.append(t)
            self._send(t, counted)
        self._next = i
        if i < n:
            self._arm()
        elif not self._dispatched.done():
            self._dispatched.set_result(None)

    def _send(self, t: int, counted: bool) -> None:
        if self._submit is not None:
            self._submit(functools.partial(self._done, t, counted))
            return
        task = self._loop.create_task(self.client.infer())
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._task_done, t, counted))

    def _task_done(self, t: int, counted: bool, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        self._done(t, counted, task.exception())

    def _done(self, t: int, counted: bool, exc: BaseException | None) -> None:
        if self.closed:
            return
        self.outstanding -= 1
        if counted:
            self.counted_out -= 1
            if exc is None:
                self.latencies.append(time.monotonic_ns() - t)
                if self.ok_due is not None:
                    self.ok_due.append(t)
            else:
                kind = error_kind(exc)
                self.errors[kind] += 1
                if self.error_due is not None:
                    self.error_due.append((t, kind))
                if not self.sample:
                    self.sample = f"{type(exc).__name__}: {exc}"
        if self.outstanding == 0 and self._dispatched.done():
            self._drained.set()
