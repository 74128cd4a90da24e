"""The pod's trace context recorder: what it keeps, how much, and what it logs."""

from __future__ import annotations

import logging

import pytest

from loadtest.simpod.traces import (
    TRACEPARENT_CHARS,
    TraceRecorder,
    from_grpc_metadata,
    from_http_headers,
)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_recorded_call_is_listed_with_its_model_and_protocol() -> None:
    recorder = TraceRecorder()
    recorder.record(TRACEPARENT, "gw=1", model="sim", protocol="grpc")
    assert recorder.recent() == [
        {"traceparent": TRACEPARENT, "tracestate": "gw=1", "model": "sim", "protocol": "grpc"}
    ]


def test_a_call_without_traceparent_is_not_recorded() -> None:
    recorder = TraceRecorder()
    recorder.record(None, "gw=1", model="sim", protocol="http")
    assert recorder.recent() == []


def test_only_the_most_recent_calls_are_kept_oldest_first() -> None:
    recorder = TraceRecorder(maxlen=3)
    for i in range(5):
        recorder.record(f"tp{i}", None, model="sim", protocol="http")
    assert [r["traceparent"] for r in recorder.recent()] == ["tp2", "tp3", "tp4"]


def test_the_default_bound_is_a_thousand_calls() -> None:
    recorder = TraceRecorder()
    for i in range(1_005):
        recorder.record(f"tp{i}", None, model="sim", protocol="grpc")
    recent = recorder.recent()
    assert len(recent) == 1_000 and recent[0]["traceparent"] == "tp5"


def test_any_string_is_recorded_unchecked_but_cut_short() -> None:
    recorder = TraceRecorder()
    recorder.record("not a traceparent", None, model="sim", protocol="grpc")
    recorder.record("x" * 1_000, None, model="sim", protocol="grpc")
    first, second = recorder.recent()
    assert first["traceparent"] == "not a traceparent"
    assert second["traceparent"] == "x" * TRACEPARENT_CHARS


def test_recent_returns_copies() -> None:
    recorder = TraceRecorder()
    recorder.record(TRACEPARENT, None, model="sim", protocol="grpc")
    recorder.recent()[0]["model"] = "changed"
    assert recorder.recent()[0]["model"] == "sim"


def test_a_recorded_call_is_logged_at_debug_with_the_traceparent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="simpod"):
        TraceRecorder().record(TRACEPARENT, None, model="sim", protocol="http")
    (entry,) = [r for r in caplog.records if r.name == "simpod"]
    assert entry.levelno == logging.DEBUG
    assert entry.__dict__["traceparent"] == TRACEPARENT


def test_grpc_metadata_gives_the_first_of_each_key() -> None:
    metadata = (
        ("user-agent", "grpc"),
        ("traceparent", TRACEPARENT),
        ("tracestate", b"gw=1"),
        ("traceparent", "second"),
    )
    assert from_grpc_metadata(metadata) == (TRACEPARENT, "gw=1")
    assert from_grpc_metadata(None) == (None, None)
    assert from_grpc_metadata([("other", "x")]) == (None, None)


def test_http_headers_give_traceparent_and_tracestate() -> None:
    assert from_http_headers({"traceparent": TRACEPARENT}) == (TRACEPARENT, None)
