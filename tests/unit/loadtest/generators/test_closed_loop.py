"""The closed-loop generator with fake clients: what it counts, records and reports."""

from __future__ import annotations

import asyncio
import time

import pytest

from loadtest.clients.base import InferError
from loadtest.generators.closed_loop import ClosedLoopConfig, run_load
from loadtest.generators.workers import Ready, run_job
from loadtest.results.load_result import LoadResult

SHORT = ClosedLoopConfig(concurrency=4, duration_s=0.2, warmup_s=0.05, processes=0, drain_s=1.0)


class FakeClient:
    """Answers after a short sleep; every ``fail_every``-th request raises."""

    def __init__(self, fail_every: int = 0) -> None:
        self.calls = 0
        self.fail_every = fail_every
        self.verified = 0

    async def infer(self) -> None:
        self.calls += 1
        await asyncio.sleep(0.001)
        if self.fail_every and self.calls % self.fail_every == 0:
            raise InferError("http 503", "busy")
        self.verified += 1

    async def aclose(self) -> None:
        pass


async def test_successful_requests_are_counted_and_recorded() -> None:
    client = FakeClient()
    result = await run_load(client, SHORT, time.monotonic())
    assert result.ok > 0
    assert result.errors == {}
    assert result.summary().count == result.ok
    assert result.sent >= result.ok
    assert result.window_s == SHORT.duration_s
    assert result.verified == client.verified


async def test_errors_are_counted_by_kind_and_sampled() -> None:
    result = await run_load(FakeClient(fail_every=2), SHORT, time.monotonic())
    assert result.errors.get("http 503", 0) > 0
    assert set(result.errors) == {"http 503"}
    assert "busy" in result.error_sample
    assert result.summary().count == result.ok


async def test_no_request_starts_after_the_window() -> None:
    client = FakeClient()
    await run_load(client, SHORT, time.monotonic())
    calls = client.calls
    await asyncio.sleep(0.05)
    assert client.calls == calls


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        ClosedLoopConfig(concurrency=0)
    with pytest.raises(ValueError):
        ClosedLoopConfig(duration_s=0)


class Probe:
    def __init__(self) -> None:
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")


async def _fake_job(arg: ClosedLoopConfig, index: int, ready: Ready) -> LoadResult:
    start_at = await ready()
    return await run_load(FakeClient(), arg, start_at)


def test_in_process_run_tells_the_probe_when_the_window_opens_and_closes() -> None:
    probe = Probe()
    result = run_job(_fake_job, SHORT, SHORT.window, probe)
    assert probe.events == ["start", "stop"]
    assert result.ok > 0
