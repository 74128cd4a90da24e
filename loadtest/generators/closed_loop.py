"""The closed-loop generator: N concurrent workers, each sending its next request on an answer.

After a warm-up, each request that completes inside the measurement window is counted: its
latency (``perf_counter_ns``) goes into an HDR histogram, or its error into the error counts.
No request starts once the window closes; those still in flight are awaited (bounded) and not
counted. With ``processes`` > 0 the load runs in that many spawned processes, each with
``concurrency`` workers, and their histograms are merged.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from loadtest.clients.base import ClientSpec, InferClient, error_kind, open_client
from loadtest.generators.workers import (
    MeasuredWindow,
    Ready,
    WindowProbe,
    probe_window,
    run_in_processes,
    run_job,
)
from loadtest.probes.cpu import THIS_PROCESS, CpuWindow
from loadtest.results.histogram import encode, new_histogram, record_ns
from loadtest.results.load_result import LoadResult

__all__ = ["ClosedLoopConfig", "closed_loop_job", "run_closed_loop", "run_load"]

_ERROR_PAUSE_S = 0.001  # after an error, so a dead server is not hammered in a hot loop


@dataclass(frozen=True, slots=True)
class ClosedLoopConfig(MeasuredWindow):
    """Concurrency is per process; ``processes`` 0 runs the load in this process."""

    concurrency: int = 16
    duration_s: float = 5.0
    warmup_s: float = 1.0
    processes: int = 1
    drain_s: float = 10.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.duration_s <= 0 or self.warmup_s < 0 or self.drain_s < 0:
            raise ValueError("duration must be > 0, warm-up and drain >= 0")
        if self.processes < 0:
            raise ValueError("processes must be >= 0")


async def run_load(client: InferClient, config: ClosedLoopConfig, start_at: float) -> LoadResult:
    """Drive ``client`` from ``start_at`` (``time.monotonic()``) through the window."""
    hist = new_histogram()
    errors: Counter[str] = Counter()
    sample: list[str] = []
    opens, closes = (start_at + config.window[0], start_at + config.window[1])
    ok = sent = 0
    monotonic, perf_counter_ns = time.monotonic, time.perf_counter_ns

    async def worker() -> None:
        nonlocal ok, sent
        while monotonic() < closes:
            sent += 1
            failure: Exception | None = None
            t0 = perf_counter_ns()
            try:
                await client.infer()
            except Exception as exc:
                failure = exc
            elapsed = perf_counter_ns() - t0
            if opens <= monotonic() < closes:
                if failure is None:
                    record_ns(hist, elapsed)
                    ok += 1
                else:
                    errors[error_kind(failure)] += 1
                    if not sample:
                        sample.append(f"{type(failure).__name__}: {failure}")
            if failure is not None:
                await asyncio.sleep(_ERROR_PAUSE_S)

    await asyncio.sleep(max(0.0, start_at - monotonic()))
    cpu = CpuWindow({"generator": THIS_PROCESS})
    tasks = [asyncio.ensure_future(worker()) for _ in range(config.concurrency)]
    cpu_task = asyncio.ensure_future(probe_window(cpu, start_at, config.window))
    _, pending = await asyncio.wait(tasks, timeout=closes - monotonic() + config.drain_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await cpu_task
    return LoadResult(
        histogram=encode(hist),
        ok=ok,
        errors=dict(errors),
        window_s=config.duration_s,
        sent=sent,
        verified=client.verified,
        client_cpu_s=cpu.seconds.get("generator", 0.0),
        error_sample=sample[0] if sample else "",
    )


async def closed_loop_job(
    arg: tuple[ClientSpec, ClosedLoopConfig], index: int, ready: Ready
) -> LoadResult:
    """The closed-loop load as a ``workers`` job: open a client, wait for the start, run."""
    spec, config = arg
    client = open_client(spec)
    try:
        start_at = await ready()
        return await run_load(client, config, start_at)
    finally:
        await client.aclose()


def run_closed_loop(
    spec: ClientSpec, config: ClosedLoopConfig, probe: WindowProbe | None = None
) -> LoadResult:
    """Run the closed-loop load (blocking) and return the merged result.

    ``probe`` is told when the measurement window opens and closes.
    """
    arg = (spec, config)
    if config.processes == 0:
        return run_job(closed_loop_job, arg, config.window, probe)
    results = run_in_processes(
        closed_loop_job,
        arg,
        config.processes,
        config.window,
        probe,
        result_timeout_s=config.drain_s + spec.timeout_s + 30.0,
    )
    return LoadResult.combine(results, sequential=False)
