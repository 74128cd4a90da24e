"""The open-loop generator with fake clients, its validity rule, its result and the lean HTTP
client's parsing. No timed assertions: only lower bounds that hold however slow the machine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from loadtest.clients.base import InferError
from loadtest.clients.raw_http import build_request, parse_head
from loadtest.generators.open_loop import OpenLoopConfig, run_schedule
from loadtest.generators.open_loop_sender import Sender
from loadtest.results.histogram import LatencySummary, decode
from loadtest.results.open_loop_result import (
    OVERFLOW,
    UNFINISHED,
    OpenLoopResult,
    histogram_of_ns,
    invalid_reason,
)

MS = 1_000_000


def lag(p99_us: int, count: int = 100) -> LatencySummary:
    return LatencySummary(count, p99_us / 2, p99_us // 2, p99_us, p99_us, p99_us, p99_us)


# -- the validity rule --------------------------------------------------------------------------


def test_a_generator_on_schedule_is_valid() -> None:
    assert invalid_reason(lag(1_000), end_lag_us=500, limit_us=5_000) == ""


def test_a_lag_p99_over_the_limit_makes_the_run_invalid() -> None:
    assert "lag p99" in invalid_reason(lag(6_000), end_lag_us=0, limit_us=5_000)


def test_ending_the_window_behind_schedule_makes_the_run_invalid() -> None:
    assert "behind" in invalid_reason(lag(1_000), end_lag_us=20_000, limit_us=5_000)


def test_a_run_with_nothing_due_is_not_judged() -> None:
    assert invalid_reason(lag(0, count=0), end_lag_us=0, limit_us=5_000) == ""


# -- results ------------------------------------------------------------------------------------


def test_histogram_of_ns_counts_every_value_in_microseconds() -> None:
    hist = decode(histogram_of_ns([1_000, 1_000, 2_000_000, 5]))
    assert hist.get_total_count() == 4
    assert hist.get_max_value() == pytest.approx(2_000, rel=0.001)
    assert hist.get_min_value() == 1  # clamped up to 1 µs


def test_parallel_results_merge_counts_lags_and_rates() -> None:
    a = OpenLoopResult(
        histogram=histogram_of_ns([MS] * 3),
        ok=3,
        errors={"http 503": 1},
        window_s=2.0,
        sent=4,
        client_cpu_s=0.01,
        due=4,
        lag_histogram=histogram_of_ns([100_000] * 4),
        end_lag_us=100,
        offered_rps=2.0,
    )
    b = OpenLoopResult(
        histogram=histogram_of_ns([2 * MS] * 2),
        ok=2,
        errors={OVERFLOW: 2},
        window_s=2.0,
        sent=2,
        client_cpu_s=0.02,
        due=4,
        lag_histogram=histogram_of_ns([8 * MS] * 2),
        end_lag_us=9_000,
        offered_rps=2.0,
    )
    m = OpenLoopResult.merge_parallel([a, b])
    assert (m.ok, m.due, m.sent, m.processes) == (5, 8, 6, 2)
    assert m.errors == {"http 503": 1, OVERFLOW: 2}
    assert m.offered_rps == 4.0
    assert m.throughput == 2.5
    assert m.summary().count == 5
    assert m.lag().count == 6
    assert m.end_lag_us == 9_000
    assert not m.valid  # b's process fell behind
    assert m.cpu_us_per_request == pytest.approx(0.03 * 1e6 / 8)
    assert m.as_dict()["valid"] is False


# -- the sender, with fake clients --------------------------------------------------------------


class SubmitClient:
    """A client with ``submit(done)``: answers after ``delay_s`` (never, when None)."""

    def __init__(self, delay_s: float | None, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.calls = 0
        self.verified = 0

    def submit(self, done: Callable[[BaseException | None], None]) -> None:
        self.calls += 1
        if self.delay_s is None:
            return
        exc = InferError("http 503", "busy") if self.fail else None
        asyncio.get_running_loop().call_later(self.delay_s, done, exc)

    async def infer(self) -> None:  # pragma: no cover - the sender uses submit
        raise AssertionError("submit should be used")

    async def aclose(self) -> None:
        pass


class CoroutineClient:
    """A client with only ``infer()``: sleeps ``delay_s``; every other call fails."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.calls = 0
        self.verified = 0

    async def infer(self) -> None:
        self.calls += 1
        n = self.calls
        await asyncio.sleep(self.delay_s)
        if n % 2 == 0:
            raise InferError("grpc UNAVAILABLE", "down")
        self.verified += 1

    async def aclose(self) -> None:
        pass


def config(**kwargs: object) -> OpenLoopConfig:
    base: dict[str, object] = {"rate": 1000.0, "duration_s": 0.05, "warmup_s": 0.0}
    base.update({"processes": 0, "drain_s": 1.0, **kwargs})
    return OpenLoopConfig(**base)  # type: ignore[arg-type]


async def test_latency_is_measured_from_the_scheduled_time() -> None:
    # Everything is due at the start, before the sender runs: each latency includes that wait.
    client = SubmitClient(delay_s=0.01)
    start = time.monotonic()
    await asyncio.sleep(0.02)
    result = await run_schedule(client, config(), [0] * 5, start, 1000.0)
    assert (result.ok, result.due, result.sent, result.error_count) == (5, 5, 5, 0)
    assert result.summary().p50_us >= 30_000  # 20 ms late + 10 ms to answer
    assert result.lag().p50_us >= 20_000
    assert not result.valid  # 20 ms behind


async def test_requests_due_before_the_window_are_sent_but_not_counted() -> None:
    client = SubmitClient(delay_s=0.001)
    cfg = config(warmup_s=0.02, duration_s=0.03)
    due = [0, 10 * MS, 25 * MS, 30 * MS, 45 * MS]  # the window is [20 ms, 50 ms)
    result = await run_schedule(client, cfg, due, time.monotonic(), 100.0)
    assert client.calls == 5
    assert (result.due, result.ok) == (3, 3)


async def test_beyond_max_outstanding_requests_overflow_as_errors() -> None:
    client = SubmitClient(delay_s=None)  # never answers
    cfg = config(max_outstanding=3, drain_s=0.0)
    result = await run_schedule(client, cfg, [0] * 10, time.monotonic(), 1000.0)
    assert client.calls == 3
    assert result.errors == {OVERFLOW: 7, UNFINISHED: 3}
    assert (result.due, result.sent, result.ok) == (10, 3, 0)


async def test_errors_are_counted_by_kind_and_sampled() -> None:
    client = SubmitClient(delay_s=0.001, fail=True)
    result = await run_schedule(client, config(), [0, 1 * MS], time.monotonic(), 1000.0)
    assert result.errors == {"http 503": 2}
    assert "busy" in result.error_sample
    assert result.ok == 0


async def test_a_client_without_submit_runs_as_tasks() -> None:
    client = CoroutineClient(delay_s=0.001)
    result = await run_schedule(client, config(), [i * MS for i in range(6)], time.monotonic(), 1)
    assert client.calls == 6
    assert result.ok == 3
    assert result.errors == {"grpc UNAVAILABLE": 3}
    assert result.verified == 3


async def test_the_sender_sends_in_schedule_order_and_never_early() -> None:
    sent_at: list[int] = []

    class Recording(SubmitClient):
        def submit(self, done: Callable[[BaseException | None], None]) -> None:
            sent_at.append(time.monotonic_ns())
            super().submit(done)

    start = time.monotonic_ns() + 5 * MS
    schedule = [start + i * 3 * MS for i in range(5)]
    sender = Sender(Recording(0.0), schedule, start, start + 100 * MS, 100)
    await sender.run()
    assert await sender.drain(1.0) == 0
    assert all(s >= t for s, t in zip(sent_at, schedule, strict=True))
    assert len(sender.latencies) == 5


def test_the_config_splits_the_schedule_across_processes() -> None:
    cfg = OpenLoopConfig(rate=600.0, duration_s=2.0, warmup_s=1.0, processes=3, seed=9)
    parts = [cfg.schedule(i) for i in range(3)]
    assert sum(len(p) for p in parts) == 1800
    window = [t for p in parts for t in p if 1e9 <= t < 3e9]
    assert len(window) == 1200  # the window offers exactly its rate, whatever the warm-up drew
    assert all(p == sorted(p) for p in parts)
    assert parts[0] == cfg.schedule(0)  # seeded
    assert cfg.window == (1.0, 3.0)


@pytest.mark.parametrize(
    "kwargs", [{"rate": 0.0}, {"duration_s": 0.0}, {"max_outstanding": 0}, {"warmup_s": -1.0}]
)
def test_bad_configs_are_refused(kwargs: dict[str, float]) -> None:
    args: dict[str, float] = {"rate": 10.0, **kwargs}
    with pytest.raises(ValueError):
        OpenLoopConfig(**args)  # type: ignore[arg-type]


# -- the lean HTTP client's wire format ----------------------------------------------------------


def test_the_request_carries_its_length_and_the_binary_header() -> None:
    raw = build_request("h:1", "/v2/models/sim/infer", b"{}abcd", 2)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert body == b"{}abcd"
    assert head.startswith(b"POST /v2/models/sim/infer HTTP/1.1\r\n")
    assert b"Content-Length: 6" in head
    assert b"Inference-Header-Content-Length: 2" in head
    assert b"application/octet-stream" in head


def test_a_response_head_is_parsed() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 42\r\n"
        b"Inference-Header-Content-Length: 30"
    )
    assert parse_head(head) == (200, 42, 30, True)
    assert parse_head(b"HTTP/1.1 429 Too Many\r\nContent-Length: 0\r\nConnection: close") == (
        429,
        0,
        None,
        False,
    )
    assert parse_head(b"HTTP/1.0 204 No Content") == (204, 0, None, False)


@pytest.mark.parametrize(
    "head",
    [
        b"SPDY/3 200 OK",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain",
    ],
)
def test_responses_it_cannot_read_are_refused(head: bytes) -> None:
    with pytest.raises(ValueError):
        parse_head(head)
