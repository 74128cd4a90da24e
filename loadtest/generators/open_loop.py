"""The open-loop generator: requests go out on a fixed schedule, whatever the answers do.

Each process sends its share of the arrivals (``generators.arrivals``) at their scheduled times
and never waits for an answer before the next send, so a slow server meets the load a real
population of clients would bring instead of slowing the generator down. Every latency is
measured from the request's *scheduled* send time, so time a request spent waiting for the
generator counts too (no coordinated omission); the generator's lag (actual - scheduled send
time) is recorded separately and judged (``open_loop_result.invalid_reason``).

Requests due in the measurement window are the ones counted, whenever their answer comes;
after the last send the generator waits (bounded) for the answers still due. A process holds at
most ``max_outstanding`` requests in flight: a request due beyond that is not sent and counts as
an ``overflow`` error, one never answered by the end of the drain as ``unfinished``. Each
request's timeout is the client's (``ClientSpec.timeout_s``).

The hot path is kept small: one task per request, whose latency and lag go into plain lists;
the HDR histograms are built once the run is over.

A trace (a rate that changes over time) is a ``shape`` over the measurement window
(``generators.arrivals``); ``per_second`` cuts the result into seconds by due time, and a
``progress`` sink gets each process's figures of every wall-clock second as the run goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from loadtest.clients.base import ClientSpec, InferClient, open_client
from loadtest.clients.raw_http import RawHttpClient
from loadtest.generators.arrivals import (
    ArrivalKind,
    ArrivalSpec,
    Delayed,
    RateShape,
    offsets,
    process_spec,
)
from loadtest.generators.open_loop_sender import Sender
from loadtest.generators.workers import (
    MeasuredWindow,
    Ready,
    WindowProbe,
    run_in_processes,
    run_job,
)
from loadtest.results.open_loop_result import (
    DEFAULT_LAG_LIMIT_US,
    UNFINISHED,
    OpenLoopResult,
    histogram_of_ns,
)
from loadtest.results.per_second import Progress, SecondFigures, bucket_seconds

__all__ = [
    "OpenLoopConfig",
    "ProgressSink",
    "generator_client",
    "open_loop_job",
    "run_open_loop",
    "run_schedule",
]

_PREWARM = 4  # requests sent concurrently before the start, to open connections
_GC_THRESHOLD = 20_000
_WARMUP_SEED = 1 << 32  # the warm-up's arrivals are drawn apart from the window's


class ProgressSink(Protocol):
    """Where generator processes put their ``Progress`` (a multiprocessing queue)."""

    def put(self, item: Any, /) -> None: ...


@dataclass(frozen=True, slots=True)
class OpenLoopConfig(MeasuredWindow):
    """``rate`` is the total over all processes (requests/s); ``processes`` 0 runs in-process.

    With a ``shape`` (relative rate over the window, t = 0 when it opens; the warm-up runs at
    ``shape(0)``), ``rate`` is the peak. ``per_second`` cuts the result into seconds.
    """

    rate: float
    duration_s: float = 5.0  # measured
    warmup_s: float = 1.0
    processes: int = 1
    arrivals: ArrivalKind = "poisson"
    seed: int = 0
    max_outstanding: int = 4096  # per process; more are counted as overflow, not sent
    lag_limit_us: int = DEFAULT_LAG_LIMIT_US
    drain_s: float = 10.0
    raw_http: bool = True  # the lean HTTP client (client_raw_http) rather than aiohttp
    shape: RateShape | None = None
    per_second: bool = False

    def __post_init__(self) -> None:
        if not self.rate > 0 or not self.duration_s > 0:
            raise ValueError("rate and duration must be > 0")
        if self.warmup_s < 0 or self.drain_s < 0 or self.processes < 0:
            raise ValueError("warm-up, drain and processes must be >= 0")
        if self.max_outstanding < 1:
            raise ValueError("max_outstanding must be >= 1")

    @property
    def offered_rate(self) -> float:
        """The mean rate over the window (requests/s): ``rate``, less where a shape dips."""
        if self.shape is None:
            return self.rate
        t = np.linspace(0.0, self.duration_s, 10_001)
        return self.rate * float(np.mean(self.shape(t)))

    def schedule(self, index: int) -> list[int]:
        """Process ``index``'s due times, in ns after the start."""
        k = max(1, self.processes)
        shape = None if self.shape is None else Delayed(self.shape, self.warmup_s)
        total = ArrivalSpec(
            self.rate, self.warmup_s + self.duration_s, self.arrivals, self.seed, shape
        )
        if total.exact_count is None:
            mine = process_spec(total, index, k)
            return (offsets(mine, phase_s=index / self.rate) * 1e9).astype("int64").tolist()
        # Steady Poisson: the warm-up and the window each hold their exact count, so the window
        # offers the rate asked for (a count over both would leave the window's binomial).
        parts = [
            offsets(process_spec(replace(total, duration_s=length, seed=seed), index, k)) + start
            for start, length, seed in (
                (0.0, self.warmup_s, self.seed + _WARMUP_SEED),
                (self.warmup_s, self.duration_s, self.seed),
            )
            if length > 0
        ]
        return (np.concatenate(parts) * 1e9).astype("int64").tolist()


async def _report_progress(
    sender: Sender, sink: ProgressSink, index: int, opens_ns: int, seconds: int
) -> None:
    """At the end of each second of the window, put what ``sender`` did in it on ``sink``.

    Cancelled, it puts the second it was in (the window's last, once the run is over).
    """
    seen = [0, 0, 0, 0]  # due, sent, ok, errors already reported

    def put(second: int) -> None:
        now = [sender.due, sender.sent, len(sender.latencies), sum(sender.errors.values())]
        latencies = np.asarray(sender.latencies[seen[2] : now[2]], dtype=np.int64) // 1000
        d = [n - s for n, s in zip(now, seen, strict=True)]
        sink.put(Progress(index, second, d[0], d[1], d[2], d[3], latencies))
        seen[:] = now

    second = 0
    try:
        for second in range(seconds):
            end_ns = opens_ns + (second + 1) * 10**9
            await asyncio.sleep(max(0.0, (end_ns - time.monotonic_ns()) / 1e9))
            put(second)
    except asyncio.CancelledError:
        put(second)
        raise


def _seconds(
    sender: Sender, config: OpenLoopConfig, opens: int, closes: int
) -> list[SecondFigures]:
    """The sender's counted requests cut into the window's seconds."""
    assert sender.ok_due is not None and sender.sent_due is not None
    assert sender.error_due is not None
    return bucket_seconds(
        opens,
        math.ceil(config.duration_s),
        due_ns=[t for t in sender.schedule if opens <= t < closes],
        ok_due_ns=sender.ok_due,
        latencies_ns=sender.latencies,
        sent_due_ns=sender.sent_due,
        lags_ns=sender.lags,
        errors=sender.error_due,
    )


async def run_schedule(
    client: InferClient,
    config: OpenLoopConfig,
    due_ns: list[int],
    start_at: float,
    share: float,
    progress: ProgressSink | None = None,
    index: int = 0,
) -> OpenLoopResult:
    """Send on ``client`` at ``start_at`` (``time.monotonic()`` s) + each of ``due_ns``.

    ``share`` is the rate this process offers (for the report); ``progress`` gets this process's
    (``index``) figures every second of the window.
    """
    start_ns = int(start_at * 1e9)
    opens = start_ns + int(config.window[0] * 1e9)
    closes = start_ns + int(config.window[1] * 1e9)
    schedule = [start_ns + d for d in due_ns]
    sender = Sender(
        client, schedule, opens, closes, config.max_outstanding, per_second=config.per_second
    )
    ticker = None
    if progress is not None:
        ticker = asyncio.ensure_future(
            _report_progress(sender, progress, index, opens, math.ceil(config.duration_s))
        )
    await sender.run()
    delay = (closes - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)
    cpu_s = 0.0 if sender.cpu_at_open is None else time.process_time() - sender.cpu_at_open
    unfinished = await sender.drain(config.drain_s)
    if ticker is not None:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
    errors = Counter(sender.errors)
    if unfinished:
        errors[UNFINISHED] += unfinished
    lags = sender.lags
    return OpenLoopResult(
        histogram=histogram_of_ns(sender.latencies),
        ok=len(sender.latencies),
        errors=dict(errors),
        window_s=config.duration_s,
        sent=sender.sent,
        verified=client.verified,
        client_cpu_s=cpu_s,
        error_sample=sender.sample,
        due=sender.due,
        lag_histogram=histogram_of_ns(lags),
        end_lag_us=(lags[-1] if lags else 0) // 1000,  # sent in due order
        lag_limit_us=config.lag_limit_us,
        offered_rps=share,
        seconds=_seconds(sender, config, opens, closes) if config.per_second else [],
    )


async def _prewarm(client: InferClient) -> None:
    """Open connections before the clock starts; failures show up in the run itself."""
    await asyncio.gather(*(client.infer() for _ in range(_PREWARM)), return_exceptions=True)


def generator_client(spec: ClientSpec, *, raw_http: bool = True) -> InferClient:
    """The client the generator uses: the lean one for HTTP unless told otherwise."""
    if raw_http and spec.kind in ("http-json", "http-binary"):
        return RawHttpClient(spec, binary=spec.kind == "http-binary")
    return open_client(spec)


def _quiet_gc() -> None:
    """Keep the collector off the hot path: what exists now is never scanned again, and young
    collections run less often (the run's garbage is mostly acyclic)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_THRESHOLD, 50, 1000)


async def open_loop_job(
    arg: tuple[ClientSpec, OpenLoopConfig] | tuple[ClientSpec, OpenLoopConfig, ProgressSink],
    index: int,
    ready: Ready,
) -> OpenLoopResult:
    """The open-loop load as a ``workers`` job: client and schedule first, then the start.

    ``arg`` is (client spec, config) or (client spec, config, progress sink).
    """
    spec, config = arg[0], arg[1]
    progress = arg[2] if len(arg) > 2 else None
    client = generator_client(spec, raw_http=config.raw_http)
    try:
        due_ns = config.schedule(index)
        await _prewarm(client)
        _quiet_gc()
        start_at = await ready()
        share = config.offered_rate / max(1, config.processes)
        return await run_schedule(client, config, due_ns, start_at, share, progress, index)
    finally:
        await client.aclose()


def run_open_loop(
    spec: ClientSpec,
    config: OpenLoopConfig,
    probe: WindowProbe | None = None,
    progress: ProgressSink | None = None,
) -> OpenLoopResult:
    """Run the open-loop load (blocking) and return the merged result.

    ``probe`` is told when the measurement window opens and closes; ``progress`` (a queue of
    the ``multiprocessing`` spawn context) gets every process's figures each second.
    """
    arg: Any = (spec, config) if progress is None else (spec, config, progress)
    if config.processes == 0:
        result = run_job(open_loop_job, arg, config.window, probe)
        assert isinstance(result, OpenLoopResult)
        return result
    results = run_in_processes(
        open_loop_job,
        arg,
        config.processes,
        config.window,
        probe,
        result_timeout_s=config.drain_s + 30.0,
    )
    merged = [r for r in results if isinstance(r, OpenLoopResult)]
    return OpenLoopResult.merge_parallel(merged)
