"""The cold-starts bench, pure: its config (the offered rate, the generator processes, what it
rejects), each replica's window from two scrapes, the collapse rule, and the report's rows and
JSON document; and the command line's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.benches.cold_starts import ColdStartsConfig
from loadtest.benches.cold_starts_report import (
    ColdStartsReport,
    ReplicaFigures,
    RunRecord,
    cold_starts_doc,
    collapse_reason,
    replica_figures,
    table_rows,
)
from loadtest.benches.goodput_sweep import GatewayFigures
from loadtest.cli import build_parser
from loadtest.probes.metrics import parse_metrics
from loadtest.results.open_loop_result import OpenLoopResult, histogram_of_ns

MS = 1_000_000  # ns
HTTP = 'model="sim",protocol="http"'


def exposition(
    requests: int,
    answers: int,
    failures: dict[str, int],
    fitted: tuple[float, float] | None = None,
) -> str:
    """A gateway's /metrics for model sim (two protocols, so sums over labels are exercised)."""
    lines = [
        "# TYPE gateway_requests counter",
        f'gateway_requests_total{{model="sim",protocol="http"}} {requests - 1}',
        'gateway_requests_total{model="sim",protocol="grpc"} 1',
        "# TYPE gateway_request_duration_seconds histogram",
        f'gateway_request_duration_seconds_bucket{{{HTTP},le="+Inf"}} {answers}',
        f'gateway_request_duration_seconds_count{{model="sim",protocol="http"}} {answers}',
        'gateway_request_duration_seconds_sum{model="sim",protocol="http"} 1.0',
        "# TYPE gateway_request_failures counter",
    ]
    for code, n in failures.items():
        labels = f'model="sim",protocol="http",reason="REJECTED",code="{code}"'
        lines.append(f"gateway_request_failures_total{{{labels}}} {n}")
    lines += [
        "# TYPE gateway_batch_rows histogram",
        f'gateway_batch_rows_bucket{{model="sim",le="+Inf"}} {answers // 4}',
        f'gateway_batch_rows_count{{model="sim"}} {answers // 4}',
        f'gateway_batch_rows_sum{{model="sim"}} {answers}',
    ]
    if fitted is not None:
        lines += [
            "# TYPE gateway_batch_cost_fixed_seconds gauge",
            f'gateway_batch_cost_fixed_seconds{{model="sim"}} {fitted[0]}',
            "# TYPE gateway_batch_cost_per_row_seconds gauge",
            f'gateway_batch_cost_per_row_seconds{{model="sim"}} {fitted[1]}',
        ]
    return "\n".join(lines) + "\n"


def result(latencies_ms: list[float], errors: dict[str, int] | None = None) -> OpenLoopResult:
    ns = [int(ms * MS) for ms in latencies_ms]
    errors = errors or {}
    return OpenLoopResult(
        histogram=histogram_of_ns(ns),
        ok=len(ns),
        errors=errors,
        window_s=2.0,
        due=len(ns) + sum(errors.values()),
    )


def record(
    latencies_ms: list[float],
    errors: dict[str, int] | None = None,
    *,
    label: str = "start 1",
    gateways: int = 2,
    gone: str = "",
) -> RunRecord:
    replica = ReplicaFigures(GatewayFigures("gateway", 10, 10, 5, 8.1, 0.25), answered=8.0)
    return RunRecord(
        label, gateways, result(latencies_ms, errors), (replica,), {}, {"gateway": 7}, gone
    )


BASELINE_P50_US = 20_000


def test_the_offered_rate_is_the_fraction_of_the_pods_limit() -> None:
    config = ColdStartsConfig()
    assert config.limit_rows_s == pytest.approx(2000.0)  # F 8 ms, c 0.25 ms/row, batch 32
    assert config.rate == pytest.approx(1200.0)
    assert ColdStartsConfig(pods=2, fraction=0.5).rate == pytest.approx(2000.0)


def test_generator_processes_are_a_multiple_of_the_gateways() -> None:
    config = ColdStartsConfig()
    assert config.generator_processes(1) == 1
    assert config.generator_processes(2) == 2
    assert config.generator_processes(3) == 3
    assert ColdStartsConfig(pods=4).generator_processes(1) == 2  # 4,800 req/s
    assert ColdStartsConfig(pods=5).generator_processes(2) == 4  # 6,000 req/s: 3, raised
    assert ColdStartsConfig(processes=3).generator_processes(2) == 4


@pytest.mark.parametrize(
    "bad",
    [
        {"starts": 0},
        {"pods": 0},
        {"gateways": ()},
        {"gateways": (2, 0)},
        {"fraction": 0.0},
        {"duration_s": 0.0},
        {"protocol": "carrier-pigeon"},
        {"fixed_ms": 0.0, "per_row_ms": 0.0},
    ],
)
def test_a_config_that_cannot_run_is_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ColdStartsConfig(**bad)  # type: ignore[arg-type]


def test_the_gateways_model_batches_on_the_pods_static_endpoints() -> None:
    model = ColdStartsConfig(max_queue_delay_us=700).model(["127.0.0.1:1", "127.0.0.1:2"])
    assert model == {
        "name": "sim",
        "endpoints": ["127.0.0.1:1", "127.0.0.1:2"],
        "dynamic_batching": {"max_queue_delay_microseconds": 700},
    }


def test_a_replicas_window_counts_answers_less_failures_and_its_fit_at_the_end() -> None:
    before = parse_metrics(exposition(4, 4, {"resource_exhausted": 1}))
    after = parse_metrics(
        exposition(104, 100, {"resource_exhausted": 11, "deadline_exceeded": 2}, (0.0081, 0.00025))
    )
    r = replica_figures("gateway1", before, after)
    assert r.window.name == "gateway1"
    assert r.window.requests == 100.0
    assert r.failures == {"deadline_exceeded": 2.0, "resource_exhausted": 10.0}
    assert r.answered == 96.0 - 12.0
    assert r.served_rows_s(2.0) == 42.0
    assert r.window.fitted_fixed_ms == pytest.approx(8.1)
    assert r.window.fitted_per_row_ms == pytest.approx(0.25)
    doc = r.as_dict(2.0)
    assert (doc["served_rows_s"], doc["fitted_fixed_ms"], doc["fitted_per_row_ms"]) == (
        42.0,
        8.1,
        0.25,
    )


def test_a_replica_with_no_fit_yet_shows_none() -> None:
    scrape = parse_metrics(exposition(4, 4, {}))
    r = replica_figures("gateway", scrape, scrape)
    assert (r.answered, r.failures, r.window.fitted_fixed_ms) == (0.0, {}, None)
    assert r.as_dict(0.0)["served_rows_s"] is None


def test_a_start_near_the_baselines_p50_with_no_429_did_not_collapse() -> None:
    assert collapse_reason(record([20.0] * 50 + [59.0] * 49), BASELINE_P50_US) == ""


def test_any_429_is_a_collapse_over_http_and_grpc() -> None:
    http = record([20.0] * 100, {"http 429": 1})
    grpc = record([20.0] * 100, {"grpc RESOURCE_EXHAUSTED": 3})
    assert collapse_reason(http, BASELINE_P50_US) == "1 x 429"
    assert collapse_reason(grpc, BASELINE_P50_US) == "3 x 429"
    assert (http.rejected, http.other_errors) == (1, {})


def test_other_errors_are_counted_apart_and_do_not_collapse_a_start() -> None:
    run = record([20.0] * 100, {"timeout": 2, "http 429": 0, "unfinished": 1})
    assert run.other_errors == {"timeout": 2, "unfinished": 1}
    assert collapse_reason(run, BASELINE_P50_US) == ""


def test_a_p50_over_three_times_the_baselines_is_a_collapse() -> None:
    assert collapse_reason(record([61.0] * 100), BASELINE_P50_US).startswith("p50 ")
    assert collapse_reason(record([59.0] * 100), BASELINE_P50_US) == ""


def test_a_start_that_served_nothing_or_lost_a_process_collapsed() -> None:
    assert collapse_reason(record([], {"timeout": 5}), BASELINE_P50_US) == "nothing served"
    gone = record([20.0] * 10, gone="gateway1 exited with 1")
    assert collapse_reason(gone, BASELINE_P50_US) == "gateway1 exited with 1"


def test_the_report_lists_the_baseline_then_every_start_with_its_verdict(tmp_path: Path) -> None:
    baseline = record([20.0] * 100, label="baseline", gateways=1)
    runs = (record([21.0] * 100), record([1048.0] * 100, {"http 429": 2900}, label="start 2"))
    report = ColdStartsReport(baseline, runs)
    assert report.collapsed() == [runs[1]]
    rows = table_rows(report)
    assert [(r[0], r[1], r[-1]) for r in rows] == [
        ("baseline", "1", "-"),
        ("start 1", "2", "no"),
        ("start 2", "2", rows[2][-1]),
    ]
    assert rows[2][-1].startswith("2900 x 429; p50 ")
    assert rows[1][6] == "4"  # 8 answered in the 2 s window
    doc = cold_starts_doc(ColdStartsConfig(json_path=tmp_path / "r.json"), report, 0.0)
    assert doc["benchmark"] == "cold-starts"
    assert (doc["offered_rps"], doc["physical_limit_rows_s"], doc["collapsed"]) == (
        1200.0,
        2000.0,
        1,
    )
    assert "collapsed" not in doc["baseline"]
    assert [s["collapsed"] for s in doc["starts"]] == [False, True]
    assert doc["starts"][1]["rejected_429"] == 2900
    assert doc["starts"][0]["pids"] == {"gateway": 7}
    assert doc["starts"][0]["per_gateway"][0]["fitted_fixed_ms"] == 8.1


def test_the_command_defaults_are_the_issues_setup() -> None:
    args = build_parser().parse_args(["cold-starts"])
    assert (args.starts, args.gateways, args.pods, args.fraction) == (10, (2,), 1, 0.6)
    assert (args.duration, args.protocol, args.timeout) == (8.0, "http-json", 2.0)
    assert (args.fixed_ms, args.per_row_ms, args.max_batch) == (8.0, 0.25, 32)
    assert args.json == Path("reports/bench-cold-starts.json")
    assert build_parser().parse_args(["cold-starts", "--gateways", "3,2"]).gateways == (2, 3)


@pytest.mark.parametrize(
    "argv",
    [
        ["cold-starts", "--starts", "0"],
        ["cold-starts", "--fraction", "0"],
        ["cold-starts", "--gateways", "0"],
        ["cold-starts", "--pods", "0"],
        ["cold-starts", "--duration", "0"],
    ],
)
def test_bad_command_arguments_are_rejected(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
