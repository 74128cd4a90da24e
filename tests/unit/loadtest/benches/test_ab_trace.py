"""A traced A/B side (``gateway:trace=RATIO``): the option parsed, the gateway config's
``tracing:`` section, a loopback collector per traced side, and its span count in the report.
No gateways or pods are started: ``launched`` gets stand-ins, but the collector is real."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.config import parse_config
from loadtest.benches import ab_setups
from loadtest.benches.ab import AbResult, Leg, Side
from loadtest.benches.ab_run import AbConfig, ab_doc, spans_received
from loadtest.benches.ab_setups import Target, gateway_extra, launched, parse_setup
from loadtest.benches.goodput import GoodputConfig, gateway_model
from loadtest.clients.base import ClientSpec
from loadtest.stack.otlp_sink import OtlpSink


@pytest.mark.parametrize(
    ("text", "ratio"),
    [("gateway:trace=0.01", 0.01), ("gateway:trace=1", 1.0), ("gateway:trace=0", 0.0)],
)
def test_a_gateway_side_takes_a_trace_ratio(text: str, ratio: float) -> None:
    assert parse_setup(text).trace == ratio


def test_a_side_is_untraced_unless_it_says_so() -> None:
    assert parse_setup("gateway:batch,pods=2").trace is None


def test_trace_goes_with_the_other_options() -> None:
    setup = parse_setup("gateway:nobatch,trace=0.5,pods=2")
    assert (setup.trace, setup.batching, setup.pods) == (0.5, False, 2)


@pytest.mark.parametrize(
    "text",
    [
        "gateway:trace=2",
        "gateway:trace=x",
        "gateway:trace=-0.1",
        "gateway:trace=nan",
        "gateway:trace",
        "pod:trace=1",
    ],
)
def test_a_bad_trace_option_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="trace"):
        parse_setup(text)


def test_a_traced_sides_gateway_config_has_the_tracing_section() -> None:
    setup = parse_setup("gateway:trace=0.25")
    model = gateway_model(GoodputConfig(), "batching", ["127.0.0.1:9001"])
    extra = gateway_extra(setup, "127.0.0.1:4317")
    assert extra["tracing"] == {
        "enabled": True,
        "sample_ratio": 0.25,
        "otlp_endpoint": "127.0.0.1:4317",
        "insecure": True,
        "export_delay_ms": 1000,
    }
    tracing = parse_config({"models": [model], **extra}).tracing  # the gateway accepts it
    assert (tracing.enabled, tracing.sample_ratio, tracing.otlp_endpoint) == (
        True,
        0.25,
        "127.0.0.1:4317",
    )


def test_an_untraced_side_leaves_tracing_off() -> None:
    assert gateway_extra(parse_setup("gateway"), None) == {}


def test_a_traced_side_needs_a_collector() -> None:
    with pytest.raises(ValueError, match="collector"):
        gateway_extra(parse_setup("gateway:trace=1"), None)


class _Pod:
    grpc_address = "127.0.0.1:9001"
    http_url = "http://127.0.0.1:9000"


class _Gateways:
    def __init__(self, port: int) -> None:
        self.port = port
        self.stopped = False

    def named(self) -> dict[str, Any]:
        return {"gateway": self}

    def addresses(self, protocol: str) -> tuple[str, ...]:
        return (f"127.0.0.1:{self.port}",)

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[dict[str, Any], _Gateways]]]:
    """Every gateway set ``launched`` starts: its ``extra`` config and its stand-in."""
    calls: list[tuple[dict[str, Any], _Gateways]] = []

    def start_gateways(count: int, models: list[dict[str, Any]], *, extra: Any) -> _Gateways:
        calls.append((extra, _Gateways(8000 + len(calls))))
        return calls[-1][1]

    monkeypatch.setattr(ab_setups, "start_pod", lambda args: _Pod())
    monkeypatch.setattr(ab_setups, "running", lambda *procs: contextlib.nullcontext())
    monkeypatch.setattr(ab_setups, "start_gateways", start_gateways)
    yield calls


def test_tracing_off_and_on_share_the_pod_and_only_the_traced_side_gets_a_collector(
    started: list[tuple[dict[str, Any], _Gateways]],
) -> None:
    setups = [parse_setup("gateway"), parse_setup("gateway:trace=1")]
    with launched(setups) as (off, on):
        [(plain, _), (traced, _)] = started
        assert plain == {} and off.sink is None
        assert on.sink is not None
        assert traced["tracing"]["otlp_endpoint"] == on.sink.endpoint
        assert on.sink.port > 0  # serving, on a port of its own
        assert off.grpc_addresses != on.grpc_addresses  # two gateways in front of one pod
    assert all(gw.stopped for _, gw in started)
    assert spans_received([off, on]) == {"b": 0}


def test_two_traced_sides_get_a_collector_each(
    started: list[tuple[dict[str, Any], _Gateways]],
) -> None:
    setups = [parse_setup("gateway:trace=0.01"), parse_setup("gateway:trace=1")]
    with launched(setups) as (a, b):
        assert a.sink is not None and b.sink is not None
        assert a.sink.endpoint != b.sink.endpoint
        assert [extra["tracing"]["sample_ratio"] for extra, _ in started] == [0.01, 1.0]


def test_the_report_gives_the_spans_each_traced_side_sent() -> None:
    sink = OtlpSink()
    targets = [Target("gateway"), Target("gateway:trace=1", sink=sink)]
    assert spans_received(targets) == {"b": 0}
    side = Side("x", ClientSpec("grpc", "127.0.0.1:1"))
    result = AbResult(side, side, (Leg(), Leg()))
    config = AbConfig("gateway", "gateway:trace=1")
    assert ab_doc(config, result, 0.0, {"b": 12})["otlp_spans_received"] == {"b": 12}
    assert "otlp_spans_received" not in ab_doc(config, result, 0.0)
