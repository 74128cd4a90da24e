"""Run a load job in K spawned processes that start together, and merge what they measured.

One Python process cannot keep a fast server busy, so generators run the same job in several
processes. Each worker builds its clients, reports ready and waits; the parent then fixes a
common start time on the system-wide monotonic clock, so every worker's warm-up and measurement
window line up, and the parent can sample other processes' CPU over exactly that window.

A job is a picklable top-level coroutine function
``job(arg, index, ready) -> LoadResult``, where ``await ready()`` returns the start time
(``time.monotonic()`` seconds) once every worker is ready.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from loadtest.results.load_result import LoadResult

__all__ = [
    "Job",
    "MeasuredWindow",
    "Ready",
    "WindowProbe",
    "probe_window",
    "run_in_processes",
    "run_job",
    "sleep_until",
]

Ready = Callable[[], Awaitable[float]]
Job = Callable[[Any, int, Ready], Awaitable[LoadResult]]

_START_MARGIN_S = 0.05
_READY_TIMEOUT_S = 60.0


class WindowProbe(Protocol):
    """Told when the measurement window opens and closes (e.g. to read processes' CPU time)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class MeasuredWindow:
    """A load config's measurement window: ``duration_s`` measured after ``warmup_s``."""

    __slots__ = ()
    warmup_s: float
    duration_s: float

    @property
    def window(self) -> tuple[float, float]:
        """The measurement window, in seconds after the start."""
        return (self.warmup_s, self.warmup_s + self.duration_s)


def sleep_until(deadline: float) -> None:
    """Block until ``time.monotonic()`` reaches ``deadline``."""
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_job(
    job: Job, arg: Any, window: tuple[float, float], probe: WindowProbe | None = None
) -> LoadResult:
    """Run ``job`` in this process; ``window`` is (opens, closes) in seconds after the start."""

    async def main() -> LoadResult:
        start_at = 0.0

        async def ready() -> float:
            nonlocal start_at
            start_at = time.monotonic() + _START_MARGIN_S
            started.set()
            return start_at

        started = asyncio.Event()
        task = asyncio.ensure_future(job(arg, 0, ready))
        if probe is not None:
            waiter = asyncio.ensure_future(started.wait())
            await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if started.is_set():
                await probe_window(probe, start_at, window)
        return await task

    loop = _new_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


async def probe_window(probe: WindowProbe, start_at: float, window: tuple[float, float]) -> None:
    """Tell ``probe`` when the window (seconds after ``start_at``) opens and closes."""
    await asyncio.sleep(max(0.0, start_at + window[0] - time.monotonic()))
    probe.start()
    await asyncio.sleep(max(0.0, start_at + window[1] - time.monotonic()))
    probe.stop()


def _worker(job: Job, arg: Any, index: int, out: Any, go: Any, start: Any) -> None:
    """A spawned worker's entry point: run the job, put ("result"|"error", index, value)."""

    async def ready() -> float:
        out.put(("ready", index, None))
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, go.wait, _READY_TIMEOUT_S * 2):
            raise TimeoutError("the parent never gave the start signal")
        return float(start.value)

    loop = _new_loop()
    try:
        result = loop.run_until_complete(job(arg, index, ready))
        out.put(("result", index, result))
    except BaseException:
        out.put(("error", index, traceback.format_exc()))
    finally:
        loop.close()


def run_in_processes(
    job: Job,
    arg: Any,
    processes: int,
    window: tuple[float, float],
    probe: WindowProbe | None = None,
    *,
    result_timeout_s: float = 120.0,
) -> list[LoadResult]:
    """Run ``job(arg, i, ready)`` in ``processes`` spawned processes; their results, in order.

    ``window`` is (opens, closes) in seconds after the common start; ``probe`` is told then.
    Every worker is stopped before this returns or raises.
    """
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    go = ctx.Event()
    start = ctx.Value("d", 0.0)
    procs = [
        ctx.Process(target=_worker, args=(job, arg, i, out, go, start), daemon=True)
        for i in range(processes)
    ]
    try:
        for p in procs:
            p.start()
        _collect(out, procs, "ready", time.monotonic() + _READY_TIMEOUT_S)
        start_at = time.monotonic() + _START_MARGIN_S
        start.value = start_at
        go.set()
        if probe is not None:
            sleep_until(start_at + window[0])
            probe.start()
            sleep_until(start_at + window[1])
            probe.stop()
        deadline = start_at + window[1] + result_timeout_s
        results = _collect(out, procs, "result", deadline)
        for p in procs:
            p.join(5.0)
        return [results[i] for i in range(processes)]
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(5.0)
            if p.is_alive():
                p.kill()
                p.join()
        out.close()


def _collect(out: Any, procs: list[Any], what: str, deadline: float) -> dict[int, Any]:
    """Wait for one ``what`` message from every worker; raise on an error or a dead worker."""
    got: dict[int, Any] = {}
    while len(got) < len(procs):
        try:
            kind, index, value = out.get(timeout=0.2)
        except queue.Empty:
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers did not report {what} in time") from None
            dead = [i for i, p in enumerate(procs) if i not in got and not p.is_alive()]
            if dead:
                try:  # a worker that failed says why just before it exits
                    kind, index, value = out.get(timeout=1.0)
                except queue.Empty:
                    raise RuntimeError(f"load worker {dead[0]} exited without a {what}") from None
            else:
                continue
        if kind == "error":
            raise RuntimeError(f"load worker {index} failed:\n{value}")
        if kind == what:
            got[index] = value
    return got
