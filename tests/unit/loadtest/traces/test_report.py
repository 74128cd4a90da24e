"""The trace run's figures: metrics scraped from sample expositions, the open-loop result cut
into seconds (by scheduled time) and merged over processes, live progress, and the summary by
phase. No servers, no timed assertions."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from loadtest.clients.base import InferError
from loadtest.generators.open_loop import OpenLoopConfig, run_schedule
from loadtest.probes.metrics import figures, parse_metrics
from loadtest.results.open_loop_result import OVERFLOW, UNFINISHED, OpenLoopResult
from loadtest.results.per_second import (
    Progress,
    SecondFigures,
    bucket_seconds,
    combine_seconds,
    merge_seconds,
)
from loadtest.traces.monitor import LiveSecond, ServerSecond
from loadtest.traces.report import phase_of, series, summarize
from loadtest.traces.shapes import step

S = 1_000_000_000
MS = 1_000_000

GATEWAY_TEXT = """\
# HELP gateway_requests_total Inference requests received
# TYPE gateway_requests_total counter
gateway_requests_total{model="sim",protocol="http"} %(requests)s
gateway_requests_total{model="other",protocol="http"} 7.0
# HELP gateway_batch_rows Rows per batch sent
# TYPE gateway_batch_rows histogram
gateway_batch_rows_bucket{le="1.0",model="sim"} 1.0
gateway_batch_rows_bucket{le="+Inf",model="sim"} %(batches)s
gateway_batch_rows_count{model="sim"} %(batches)s
gateway_batch_rows_sum{model="sim"} %(rows)s
# HELP gateway_inflight_requests Requests admitted, not yet answered
# TYPE gateway_inflight_requests gauge
gateway_inflight_requests{model="sim"} 6.0
# HELP gateway_pod_inflight_batches Batches sent, not yet answered
# TYPE gateway_pod_inflight_batches gauge
gateway_pod_inflight_batches{model="sim",model_server_pod="10.0.0.1:9001"} 2.0
gateway_pod_inflight_batches{model="sim",model_server_pod="10.0.0.2:9001"} 1.0
# HELP gateway_queue_requests Requests queued (priority 0: delayed)
# TYPE gateway_queue_requests gauge
gateway_queue_requests{model="sim",priority="0"} 1.0
gateway_queue_requests{model="sim",priority="1"} 3.0
# HELP gateway_load_ready_endpoints Pods this gateway routes to
# TYPE gateway_load_ready_endpoints gauge
gateway_load_ready_endpoints{model="sim"} 2.0
"""

POD_TEXT = """\
# HELP nv_inference_request_success Number of successful inference requests
# TYPE nv_inference_request_success untyped
nv_inference_request_success{model="sim"} %(ok)s
# HELP nv_inference_pending_request_count Instantaneous number of pending requests
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{model="sim"} 4.0
# HELP simpod_batch_size Rows per executed batch
# TYPE simpod_batch_size histogram
simpod_batch_size_bucket{le="+Inf",model="sim"} %(batches)s
simpod_batch_size_count{model="sim"} %(batches)s
simpod_batch_size_sum{model="sim"} %(rows)s
# HELP simpod_device_busy_seconds Simulated device time spent running batches
# TYPE simpod_device_busy_seconds counter
simpod_device_busy_seconds_total{device="0"} %(busy)s
"""


# -- scraping ------------------------------------------------------------------------------------


def test_gateway_figures_read_gauges_now_and_counters_since_the_last_scrape() -> None:
    before = parse_metrics(GATEWAY_TEXT % {"requests": 100.0, "batches": 10.0, "rows": 30.0})
    after = parse_metrics(GATEWAY_TEXT % {"requests": 300.0, "batches": 50.0, "rows": 190.0})
    assert after.kind == "gateway"
    fig = figures(before, after, 2.0, "sim")
    assert fig["queue_requests"] == 4.0
    assert fig["queue_by_priority"] == {"0": 1.0, "1": 3.0}
    assert fig["inflight_requests"] == 6.0
    assert fig["pod_inflight_batches"] == {"10.0.0.1:9001": 2.0, "10.0.0.2:9001": 1.0}
    assert (fig["batches"], fig["batch_rows"], fig["mean_batch_rows"]) == (40.0, 160.0, 4.0)
    assert fig["requests_per_s"] == 100.0  # the other model's requests are not counted
    assert fig["replicas"] == 2.0
    assert fig["rejections_per_s"] is None  # not exported


def test_the_first_scrape_has_gauges_but_no_rates() -> None:
    scrape = parse_metrics(GATEWAY_TEXT % {"requests": 1.0, "batches": 1.0, "rows": 1.0})
    fig = figures(None, scrape, 1.0, "sim")
    assert fig["queue_requests"] == 4.0
    assert fig["requests_per_s"] is None and fig["mean_batch_rows"] is None


def test_a_counter_that_went_back_gives_no_rate() -> None:
    before = parse_metrics(GATEWAY_TEXT % {"requests": 500.0, "batches": 10.0, "rows": 30.0})
    after = parse_metrics(GATEWAY_TEXT % {"requests": 5.0, "batches": 1.0, "rows": 1.0})
    fig = figures(before, after, 1.0, "sim")
    assert fig["requests_per_s"] is None and fig["batches"] is None


def test_pod_figures_use_the_triton_names() -> None:
    before = parse_metrics(POD_TEXT % {"ok": 10.0, "batches": 5.0, "rows": 10.0, "busy": 1.0})
    after = parse_metrics(POD_TEXT % {"ok": 70.0, "batches": 25.0, "rows": 70.0, "busy": 1.5})
    assert after.kind == "pod"
    fig = figures(before, after, 1.0, "sim")
    assert fig["pending_requests"] == 4.0
    assert fig["mean_batch_rows"] == 3.0
    assert fig["success_per_s"] == 60.0
    assert fig["device_busy"] == 0.5


def test_metrics_of_something_else_give_no_figures() -> None:
    scrape = parse_metrics("# TYPE up gauge\nup 1.0\n")
    assert scrape.kind == "other"
    assert figures(None, scrape, 1.0, "sim") == {}


# -- seconds -------------------------------------------------------------------------------------


def test_requests_count_in_the_second_they_were_due_whenever_answered() -> None:
    opens = 50 * S
    due = [opens + 100 * MS, opens + 900 * MS, opens + S + 1, opens + 2 * S + 5, opens + 2 * S + 6]
    seconds = bucket_seconds(
        opens,
        3,
        due_ns=due,
        ok_due_ns=[due[0], due[1], due[2]],
        latencies_ns=[5 * MS, 1500 * MS, 7 * MS],  # the second answer came a second later
        sent_due_ns=due[:4],
        lags_ns=[1000, 2000, 3000, 4000],
        errors=[(due[3], "http 503"), (due[4], OVERFLOW)],
    )
    assert [(s.due, s.sent, s.ok) for s in seconds] == [(2, 2, 2), (1, 1, 1), (2, 1, 0)]
    assert seconds[0].summary().max_us == pytest.approx(1_500_000, rel=0.001)
    assert seconds[2].errors == {"http 503": 1, OVERFLOW: 1}
    assert seconds[0].ok_within(50_000) == 1
    assert seconds[1].lag().p50_us == pytest.approx(3, abs=1)


def test_requests_neither_answered_nor_failed_count_as_unfinished() -> None:
    seconds = bucket_seconds(
        0,
        1,
        due_ns=[1, 2, 3],
        ok_due_ns=[1],
        latencies_ns=[MS],
        sent_due_ns=[1, 2, 3],
        lags_ns=[0, 0, 0],
        errors=[],
    )
    assert seconds[0].errors == {UNFINISHED: 2}
    assert seconds[0].ok + seconds[0].error_count == seconds[0].due


def test_processes_seconds_merge_second_by_second() -> None:
    def one(ok: int, lat_ms: int) -> list[SecondFigures]:
        return bucket_seconds(
            0,
            2,
            due_ns=[10] * ok + [S + 10],
            ok_due_ns=[10] * ok,
            latencies_ns=[lat_ms * MS] * ok,
            sent_due_ns=[10] * ok,
            lags_ns=[0] * ok,
            errors=[(S + 10, "timeout")],
        )

    merged = merge_seconds([one(3, 10), one(1, 90)])
    assert [s.second for s in merged] == [0, 1]
    assert (merged[0].due, merged[0].ok) == (4, 4)
    assert merged[0].ok_within(50_000) == 3
    assert merged[1].errors == {"timeout": 2}
    result = OpenLoopResult.merge_parallel(
        [OpenLoopResult(seconds=one(2, 5)), OpenLoopResult(seconds=one(2, 5))]
    )
    assert [s.ok for s in result.seconds] == [4, 0]


# -- the sender cut into seconds, and live progress ----------------------------------------------


class AnsweringClient:
    """Answers every request after ``delay_s``; the third one fails."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.calls = 0
        self.verified = 0

    def submit(self, done: Callable[[BaseException | None], None]) -> None:
        self.calls += 1
        exc = InferError("http 503") if self.calls == 3 else None
        asyncio.get_running_loop().call_later(self.delay_s, done, exc)

    async def infer(self) -> None:  # pragma: no cover - the sender uses submit
        raise AssertionError

    async def aclose(self) -> None:
        pass


class Sink:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def put(self, item: Any, /) -> None:
        self.items.append(item)


async def test_a_per_second_run_is_cut_by_due_time_and_reports_progress() -> None:
    config = OpenLoopConfig(
        rate=10.0, duration_s=2.0, warmup_s=0.0, processes=0, drain_s=1.0, per_second=True
    )
    due = [0, 10 * MS, 20 * MS, 1000 * MS + 5 * MS, 1000 * MS + 15 * MS]
    sink = Sink()
    result = await run_schedule(AnsweringClient(0.001), config, due, time.monotonic(), 10.0, sink)
    assert [(s.due, s.ok, s.error_count) for s in result.seconds] == [(3, 2, 1), (2, 2, 0)]
    assert result.seconds[0].errors == {"http 503": 1}
    assert sum(s.ok for s in result.seconds) == result.ok
    assert [p.second for p in sink.items] == [0, 1]
    assert sum(p.ok for p in sink.items) == 4
    assert sum(p.errors for p in sink.items) == 1


def test_a_plain_run_keeps_no_seconds() -> None:
    assert OpenLoopConfig(rate=1.0).per_second is False
    assert OpenLoopResult().seconds == []


def test_live_seconds_add_up_processes_progress() -> None:
    import numpy as np

    live = LiveSecond(3)
    live.add(Progress(0, 3, 10, 10, 9, 1, np.array([1000] * 9)))
    live.add(Progress(1, 3, 10, 10, 10, 0, np.array([1000] * 9 + [9000])))
    assert (live.due, live.ok, live.errors) == (20, 19, 1)
    assert live.p99_us is not None and 1000 < live.p99_us <= 9000


# -- summary and series --------------------------------------------------------------------------


def fake_run() -> tuple[Any, OpenLoopResult, list[ServerSecond]]:
    trace = step(100.0, 200.0, 4.0, at_s=2.0)
    seconds = []
    for k in range(4):
        n = 100 if k < 2 else 200
        lat = 10 if k != 3 else 80  # the last second is over a 50 ms SLO
        seconds.append(
            bucket_seconds(
                k * S,
                1,
                due_ns=[k * S] * n,
                ok_due_ns=[k * S] * n,
                latencies_ns=[lat * MS] * n,
                sent_due_ns=[k * S] * n,
                lags_ns=[100_000] * n,
                errors=[],
            )[0]
        )
    for k, s in enumerate(seconds):
        s.second = k
    result = OpenLoopResult(ok=600, due=600, seconds=seconds)
    gateway = {"queue_requests": 2.0, "batch_rows": 40.0, "batches": 10.0}
    servers = [
        ServerSecond(k, {"gateway": 0.1, "pod0": 0.05}, {"gateway": gateway}) for k in range(4)
    ]
    return trace, result, servers


def test_the_summary_has_the_whole_run_then_each_phase() -> None:
    trace, result, servers = fake_run()
    overall, before, after = summarize(trace, result, servers, slo_ms=50.0)
    assert [p.name for p in (overall, before, after)] == ["overall", "before", "after"]
    assert overall.rate(overall.offered) == pytest.approx(150.0)
    assert (before.rate(before.ok), after.rate(after.ok)) == (100.0, 200.0)
    assert after.rate(after.goodput) == 100.0  # the last second missed the SLO
    assert before.cpu_us_per_req("gateway") == pytest.approx(0.2 * 1e6 / 200)
    assert overall.mean_batch_rows == 4.0
    assert overall.max_queue == 2.0
    assert not overall.invalid
    json.dumps([p.as_dict() for p in (overall, before, after)])


def test_the_summary_adds_up_every_gateway_replicas_batches_and_queue() -> None:
    trace, result, servers = fake_run()
    other = {"queue_requests": 3.0, "batch_rows": 80.0, "batches": 10.0}
    for server in servers:
        server.metrics["gateway1"] = other
    overall = summarize(trace, result, servers, slo_ms=50.0)[0]
    assert overall.mean_batch_rows == 6.0  # (40 + 80) rows / (10 + 10) batches a second
    assert overall.max_queue == 5.0  # 2 + 3 queued at once


def test_the_series_has_one_json_record_a_second() -> None:
    trace, result, servers = fake_run()
    records = series(trace, result, servers, slo_ms=50.0)
    assert [r["served_rps"] for r in records] == [100.0, 100.0, 200.0, 200.0]
    assert [r["goodput_rps"] for r in records] == [100.0, 100.0, 200.0, 0.0]
    assert [r["offered_rps"] for r in records] == [100.0, 100.0, 200.0, 200.0]
    assert records[0]["metrics"]["gateway"]["queue_requests"] == 2.0
    assert [r["phase"] for r in records] == ["before", "before", "after", "after"]
    json.dumps(records)


def test_a_fractional_last_second_counts_by_its_width() -> None:
    trace = step(100.0, 200.0, 3.5, at_s=2.0)
    assert phase_of(trace, 3) == "after"
    only = combine_seconds([], 3)
    assert only.ok == 0
