"""``loadtest soak`` without running load: its config, verdict, target, report and command line."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pytest

from loadtest.benches.soak import SoakConfig, SoakRun, target_watched, verdict
from loadtest.benches.soak_mix import Category, Tally, mix_lanes
from loadtest.benches.soak_probe import SoakSampler, Watched
from loadtest.benches.soak_report import print_report, soak_doc
from loadtest.benches.soak_trend import Reading, Trend, trends
from loadtest.cli import build_parser
from loadtest.clients.base import CLIENT_KINDS
from loadtest.commands.soak import parse_mix
from loadtest.results.open_loop_result import OpenLoopResult

MIB = 1024**2


def _trend(growth: float, allowed: float = 10.0) -> Trend:
    return Trend("gateway", "fds", 5, 50.0, 50.0 + growth, 55.0, growth / 3, growth, allowed, 3.0)


def _clean() -> dict[Category, Counter[str]]:
    return {
        "good": Counter(ok=100, rejected=3),
        "bad": Counter(expected=4),
        "disconnect": Counter(),
    }


def test_a_clean_soak_with_flat_figures_passes() -> None:
    assert verdict(_clean(), 0, [_trend(1.0)], None) == []


def test_each_way_a_soak_fails_is_named() -> None:
    outcomes: dict[Category, Counter[str]] = {
        "good": Counter(ok=90, lost=2, failed=1),
        "bad": Counter(expected=3, wrong=1),
        "disconnect": Counter(cut=5),
    }
    reasons = verdict(outcomes, 3, [_trend(20.0), _trend(-30.0)], "pod0 exited with -9")
    assert reasons == [
        "5 good request(s) lost (never answered)",
        "1 good request(s) answered with an error",
        "1 bad request(s) not answered 400 / INVALID_ARGUMENT",
        "gateway fds not flat (grew 20 > 10)",
        "pod0 exited with -9",
    ]


def test_requests_the_generator_could_not_send_count_as_lost() -> None:
    assert verdict(_clean(), 2, [], None) == ["2 good request(s) lost (never answered)"]


def test_the_started_stack_sets_the_rate_and_the_intervals() -> None:
    config = SoakConfig(duration_s=180.0, interval_s=40.0, pods=2, fixed_ms=20.0, per_row_ms=2.0)
    assert config.limit_rows_s() == pytest.approx(2 * 16 / 0.052)
    assert config.intervals == 5  # the last one 20 s
    assert SoakConfig(duration_s=180.0, interval_s=30.0).intervals == 6
    assert config.generator_processes(2500.0) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"duration_s": 0.0},
        {"interval_s": 0.0},
        {"fraction": 0.0},
        {"bad_share": 0.5, "disconnect_share": 0.5},
        {"protocols": {"ftp": 1.0}},
        {"target": "http://127.0.0.1:1"},  # no limit
        {"target": "http://127.0.0.1:1", "target_limit_rows_s": 100.0},  # gRPC lanes, no target
    ],
)
def test_a_soak_that_cannot_run_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SoakConfig(**kwargs)  # type: ignore[arg-type]


def test_a_target_speaking_only_http_needs_no_grpc_target() -> None:
    config = SoakConfig(
        target="http://127.0.0.1:1",
        target_limit_rows_s=100.0,
        protocols={"http-json": 1.0},
        bad_share=0.0,
        disconnect_share=0.0,
    )
    assert config.limit_rows_s() == 100.0


def test_a_target_is_read_by_its_pids_and_its_gateway_metrics() -> None:
    base = {"target": "http://h:1", "grpc_target": "h:2", "target_limit_rows_s": 10.0}
    config = SoakConfig(
        **base,  # type: ignore[arg-type]
        target_metrics="http://h:3/metrics",
        target_pids=(("pod", 11), ("gateway", 12)),
    )
    assert target_watched(config) == (
        Watched("pod", 11, None),
        Watched("gateway", 12, "http://h:3/metrics", 1),
    )
    only_metrics = SoakConfig(**base, target_metrics="http://h:3/metrics")  # type: ignore[arg-type]
    assert target_watched(only_metrics) == (Watched("gateway", None, "http://h:3/metrics"),)


def _run(tmp_path: Path) -> tuple[SoakConfig, SoakRun]:
    config = SoakConfig(duration_s=4.0, interval_s=2.0, json_path=tmp_path / "soak.json")
    lanes = mix_lanes(config.protocols, config.bad_share, config.disconnect_share)
    tally = Tally()
    for k in (-1, 0, 1):
        tally.add(k, "grpc", "ok")
    tally.add(1, "http-json", "lost", "timeout")
    tally.add(0, "bad wrong-datatype grpc", "expected")
    tally.add(1, "disconnect http-json", "cut")
    sampler = SoakSampler([Watched("gateway", 1, "http://x"), Watched("pod0", 2)], 2.0, 4.0)
    sampler.readings = [
        Reading(t, {"gateway": {"rss_bytes": 100 * MIB, "fds": 40.0, "tasks": 9.0}, "pod0": {}})
        for t in (0.0, 1.0, 2.0, 3.0, 4.0)
    ]
    found = trends(sampler.readings, config.duration_s)
    reasons = verdict(tally.by_category([lane for lane, _ in lanes]), 0, found, None)
    return config, SoakRun(lanes, OpenLoopResult(), tally, sampler, found, None, reasons)


def test_the_report_shows_every_interval_lane_and_trend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, run = _run(tmp_path)
    print_report(config, run)
    out = capsys.readouterr().out
    assert "warm-up" in out and "0-2 s" in out and "2-4 s" in out
    assert "bad wrong-datatype grpc" in out and "timeout 1" in out
    assert "gateway tasks" in out
    assert "soak FAILED: 1 good request(s) lost" in out


def test_the_json_report_holds_intervals_totals_trends_and_the_verdict(tmp_path: Path) -> None:
    config, run = _run(tmp_path)
    doc = soak_doc(config, run, 0.0, 615.0)
    assert doc["benchmark"] == "soak" and doc["passed"] is False
    assert [i["interval"] for i in doc["intervals"]] == [0, 1]
    assert doc["intervals"][1]["requests"]["good"] == {"ok": 1, "lost": 1}
    assert doc["intervals"][1]["resources"]["gateway"]["tasks"] == 9.0
    assert doc["intervals"][1]["lanes"]["disconnect http-json"] == {"cut": 1}
    assert doc["warmup"]["requests"]["good"] == {"ok": 1}
    assert doc["totals"]["lanes"]["http-json"]["error_kinds"] == {"timeout": 1}
    assert {(t["process"], t["metric"]) for t in doc["trends"]} == {
        ("gateway", "rss_bytes"),
        ("gateway", "fds"),
        ("gateway", "tasks"),
    }
    assert doc["config"]["protocols"] == dict.fromkeys(CLIENT_KINDS, 1.0)


def test_the_command_defaults() -> None:
    args = build_parser().parse_args(["soak"])
    assert (args.duration_s, args.interval_s, args.fraction) == (300.0, 60.0, 0.8)
    assert (args.bad_share, args.disconnect_share, args.warmup) == (0.02, 0.02, 10.0)
    assert args.mix == dict.fromkeys(CLIENT_KINDS, 1.0)
    assert (args.pods, args.fixed_ms, args.per_row_ms, args.max_batch) == (2, 20.0, 2.0, 16)
    assert args.json == Path("reports/soak.json") and args.target is None


def test_the_mix_takes_weights_by_protocol() -> None:
    assert parse_mix("grpc=3, http-json=1") == {"grpc": 3.0, "http-json": 1.0}


@pytest.mark.parametrize("text", ["grpc", "ftp=1", "grpc=x", "grpc=-1", "grpc=0", ""])
def test_a_mix_that_is_not_kind_weight_pairs_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_mix(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["soak", "--duration-s", "0"],
        ["soak", "--interval-s", "-1"],
        ["soak", "--bad-share", "-0.1"],
        ["soak", "--mix", "ftp=1"],
    ],
)
def test_bad_soak_arguments_are_rejected(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
