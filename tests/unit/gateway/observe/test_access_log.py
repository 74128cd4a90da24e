"""The access log: which requests get a line (a sampled share, every failed or slow one, within
a token bucket) and what the line says (ids, sizes, places and times; never a tensor)."""

from __future__ import annotations

import io
import logging
import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.errors import Code
from gateway.observe.access_log import ACCESS_LOGGER, AccessLog, AccessSampler
from gateway.observe.request import MAX_ID_CHARS, RequestInfo
from gateway.observe.settings import AccessLogSettings, TracingSettings
from gateway.observe.tracing import Tracing
from protos.logs import JsonFormatter
from tests.fakes.clock import Clock

FAST_S = 0.001  # far under any slow_ms used here


def sampler(clock: Clock | None = None, seed: int = 7, **fields: Any) -> AccessSampler:
    settings = AccessLogSettings(**{"slow_ms": None, **fields})
    return AccessSampler(settings, clock=clock or Clock(), rng=random.Random(seed))


def test_sample_0_logs_no_answered_fast_request_but_every_failed_one() -> None:
    s = sampler(sample=0.0)
    assert not any(s.wanted(False, FAST_S) for _ in range(1000))
    assert all(s.wanted(True, FAST_S) for _ in range(1000))


def test_without_errors_a_failed_request_is_only_sampled() -> None:
    s = sampler(sample=0.0, errors=False)
    assert not any(s.wanted(True, FAST_S) for _ in range(1000))


def test_every_slow_request_is_logged() -> None:
    s = sampler(sample=0.0, slow_ms=250.0)
    assert s.wanted(False, 0.25)  # exactly slow_ms counts
    assert s.wanted(False, 3.0)
    assert not s.wanted(False, 0.249)


def test_sample_1_logs_every_request() -> None:
    s = sampler(sample=1.0)
    assert all(s.wanted(False, FAST_S) for _ in range(1000))


def test_a_share_of_the_answered_requests_is_logged() -> None:
    s = sampler(sample=0.1, seed=12345)
    logged = sum(s.wanted(False, FAST_S) for _ in range(10_000))
    assert 850 <= logged <= 1150  # binomial(10000, 0.1): 1000 ± 5 sd


def test_the_bucket_gives_a_burst_then_nothing_until_the_clock_moves() -> None:
    clock = Clock(100.0)
    s = sampler(clock, burst_lines=3, max_lines_per_s=2.0)
    assert [s.take() for _ in range(4)] == [True, True, True, False]
    assert not s.take()  # the clock has not moved
    clock.advance(0.5)  # one line's worth at 2 lines/s
    assert [s.take(), s.take()] == [True, False]
    clock.advance(0.25)  # half a line: not yet
    assert not s.take()
    clock.advance(0.25)
    assert s.take()


def test_the_bucket_refills_to_its_burst_and_no_further() -> None:
    clock = Clock()
    s = sampler(clock, burst_lines=3, max_lines_per_s=2.0)
    assert all(s.take() for _ in range(3))
    clock.advance(3600.0)
    assert [s.take() for _ in range(4)] == [True, True, True, False]


def test_update_applies_new_settings() -> None:
    clock = Clock()
    s = sampler(clock, sample=0.0, burst_lines=10, max_lines_per_s=1.0)
    assert not s.wanted(False, FAST_S)
    s.update(AccessLogSettings(sample=1.0, slow_ms=None, burst_lines=2, max_lines_per_s=1.0))
    assert s.settings.sample == 1.0
    assert s.wanted(False, FAST_S)
    assert [s.take() for _ in range(3)] == [True, True, False]  # held to the new burst
    s.update(AccessLogSettings(sample=1.0, slow_ms=None, burst_lines=2, max_lines_per_s=4.0))
    clock.advance(0.25)  # one line at the new rate
    assert [s.take(), s.take()] == [True, False]


# -- the lines ----------------------------------------------------------------------------


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Where the ``gateway.access`` lines go during the test, as JSON (the JSON log's format)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def read(stream: io.StringIO) -> list[dict[str, Any]]:
    """The lines written so far."""
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


class Drops:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def access_log(drops: Drops | None = None, clock: Clock | None = None, **fields: Any) -> AccessLog:
    settings = {"sample": 1.0, **fields}
    return AccessLog(sampler(clock, **settings), drops or Drops())


def answered(protocol: str = "http", body_id: str = "") -> RequestInfo:
    info = RequestInfo(protocol, 0, given_id="req-1", model="sim", body_id=body_id, rows=2)
    info.sent(2_500_000, 8, "10.0.0.1:8001")
    return info


def test_an_answered_http_request_s_line(stream: io.StringIO) -> None:
    access_log().record(answered(), None, 0.0123456)
    (line,) = read(stream)
    assert (line["logger"], line["level"], line["message"]) == (ACCESS_LOGGER, "INFO", "access")
    fields = {k: v for k, v in line.items() if k not in ("time", "level", "logger", "message")}
    assert fields == {
        "request_id": "req-1",
        "model": "sim",
        "protocol": "http",
        "status": "OK",
        "rows": 2,
        "queue_ms": 2.5,
        "batch_rows": 8,
        "pod": "10.0.0.1:8001",
        "tries": 1,
        "latency_ms": 12.346,
        "http_status": 200,
    }  # only these: ids, sizes, places and times, never tensor data


def test_a_grpc_line_has_no_http_status(stream: io.StringIO) -> None:
    access_log().record(answered("grpc"), None, FAST_S)
    (line,) = read(stream)
    assert line["protocol"] == "grpc" and "http_status" not in line


def test_the_body_id_is_written_when_it_differs_from_the_request_id(
    stream: io.StringIO,
) -> None:
    log = access_log()
    log.record(answered(body_id="body-7"), None, FAST_S)
    log.record(answered(body_id="req-1"), None, FAST_S)  # the same id: said once
    body_only = RequestInfo("http", 0, body_id="body-8")
    log.record(body_only, None, FAST_S)
    first, same, own = read(stream)
    assert (first["request_id"], first["id"]) == ("req-1", "body-7")
    assert "id" not in same
    assert own["request_id"] == "body-8" and "id" not in own


def test_a_failed_request_s_line_has_its_status_and_error(stream: io.StringIO) -> None:
    log = access_log(sample=0.0)
    log.record(answered(), Code.RESOURCE_EXHAUSTED, FAST_S, "queue full")
    log.record(answered("grpc"), Code.UNAVAILABLE, FAST_S, "x" * 2000)
    http, grpc = read(stream)
    assert (http["status"], http["http_status"], http["error"]) == (
        "RESOURCE_EXHAUSTED",
        429,
        "queue full",
    )
    assert grpc["status"] == "UNAVAILABLE" and "http_status" not in grpc
    assert grpc["error"] == "x" * 500  # cut short


def test_what_the_caller_wrote_is_cut_short(stream: io.StringIO) -> None:
    info = RequestInfo("grpc", 0, model="m" * 20_000, body_id="b" * 20_000)
    access_log(sample=0.0).record(info, Code.NOT_FOUND, FAST_S, "unknown model " + "m" * 20_000)
    (line,) = read(stream)
    assert (line["model"], line["id"]) == ("m" * MAX_ID_CHARS, "b" * MAX_ID_CHARS)
    assert len(line["error"]) == 500


def test_an_answered_line_has_no_error(stream: io.StringIO) -> None:
    access_log().record(answered(), None, FAST_S)
    (line,) = read(stream)
    assert "error" not in line and "trace_id" not in line


def test_a_request_not_chosen_writes_nothing(stream: io.StringIO) -> None:
    drops = Drops()
    access_log(drops, sample=0.0).record(answered(), None, FAST_S)
    assert read(stream) == [] and drops.count == 0  # not chosen is not dropped


def test_a_line_the_bucket_has_no_room_for_is_counted_not_written(
    stream: io.StringIO,
) -> None:
    drops, clock = Drops(), Clock()
    log = access_log(drops, clock, burst_lines=2, max_lines_per_s=1.0)
    for _ in range(5):
        log.record(answered(), Code.RESOURCE_EXHAUSTED, FAST_S, "queue full")
    assert len(read(stream)) == 2 and drops.count == 3
    clock.advance(1.0)
    log.record(answered(), None, FAST_S)
    assert len(read(stream)) == 3 and drops.count == 3


def test_a_traced_request_s_line_names_its_trace(stream: io.StringIO) -> None:
    settings = TracingSettings(enabled=True, sample_ratio=1.0)
    tracing = Tracing(settings, SimpleSpanProcessor(InMemorySpanExporter()))
    info = answered()
    info.trace = tracing.start("infer", None, None, {}, 0)
    assert info.trace is not None
    access_log().record(info, None, FAST_S)
    (line,) = read(stream)
    assert line["trace_id"] == info.trace.trace_id
    assert line["trace_id"] == f"{info.trace.span.get_span_context().trace_id:032x}"
