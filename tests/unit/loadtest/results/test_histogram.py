"""Latency histograms and load results: recording, merging across processes, summaries."""

from __future__ import annotations

from loadtest.results.histogram import (
    HIGHEST_US,
    LatencySummary,
    decode,
    encode,
    merge,
    new_histogram,
    record_ns,
)
from loadtest.results.load_result import LoadResult


def _hist_of(values_us: list[int]) -> bytes:
    hist = new_histogram()
    for us in values_us:
        record_ns(hist, us * 1000)
    return encode(hist)


def test_record_ns_stores_microseconds() -> None:
    hist = decode(_hist_of([250]))
    assert hist.get_total_count() == 1
    assert 249 <= hist.get_max_value() <= 251


def test_record_ns_clamps_to_the_range() -> None:
    hist = new_histogram()
    record_ns(hist, 0)
    record_ns(hist, 10**15)
    assert hist.get_total_count() == 2
    assert hist.get_min_value() >= 1
    assert hist.get_max_value() <= hist.get_highest_equivalent_value(HIGHEST_US)


def test_merge_holds_every_value_of_every_histogram() -> None:
    merged = merge([_hist_of([100] * 90), _hist_of([10_000] * 10)])
    summary = LatencySummary.of(merged)
    assert summary.count == 100
    assert 99 <= summary.p50_us <= 101
    assert 9_990 <= summary.p99_us <= 10_010
    assert 9_990 <= summary.max_us <= 10_010


def test_merge_of_nothing_is_empty() -> None:
    assert merge([]).get_total_count() == 0


def test_summary_of_an_empty_histogram_is_all_zero() -> None:
    assert LatencySummary.of(new_histogram()) == LatencySummary(0, 0.0, 0, 0, 0, 0, 0)


def test_parallel_results_share_one_window() -> None:
    a = LoadResult(_hist_of([100] * 10), ok=10, errors={"timeout": 1}, window_s=2.0, sent=12)
    b = LoadResult(_hist_of([300] * 30), ok=30, errors={"timeout": 2, "http 503": 1}, window_s=2.0)
    merged = LoadResult.combine([a, b], sequential=False)
    assert merged.ok == 40
    assert merged.window_s == 2.0
    assert merged.throughput == 20.0
    assert merged.errors == {"timeout": 3, "http 503": 1}
    assert merged.error_count == 4
    assert merged.summary().count == 40


def test_sequential_results_add_their_windows() -> None:
    a = LoadResult(_hist_of([100] * 10), ok=10, window_s=1.0)
    b = LoadResult(_hist_of([100] * 30), ok=30, window_s=3.0)
    merged = LoadResult.combine([a, b], sequential=True)
    assert merged.window_s == 4.0
    assert merged.throughput == 10.0


def test_result_as_dict_has_the_report_figures() -> None:
    doc = LoadResult(_hist_of([100, 200]), ok=2, window_s=1.0, verified=1).as_dict()
    assert doc["ok"] == 2
    assert doc["throughput_rps"] == 2.0
    assert doc["latency"]["count"] == 2
    assert "histogram" not in doc
