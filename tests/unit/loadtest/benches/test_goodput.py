"""The goodput search, pure: the pass rule, the choice of goodput, the sweep's next step, the
physical limit, the gateway config per mode, the batch counts read from /metrics, and the
figures of several gateway replicas (each one's, and all together)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from loadtest.benches import gateways_probe
from loadtest.benches.gateways_probe import combined, combined_sends, window_figures
from loadtest.benches.goodput import GoodputConfig, backend_model, gateway_model
from loadtest.benches.goodput_report import print_summary, step_line
from loadtest.benches.goodput_sweep import (
    DEFAULT_GRID,
    GatewayFigures,
    Step,
    Sweep,
    judge,
    median_sweep,
    next_fraction,
    physical_limit,
    select_goodput,
)
from loadtest.probes.metrics import parse_metrics
from loadtest.probes.stack import BatchCounts, parse_batch_counts, parse_inflight
from loadtest.stack.procs import Served

SLO_MS, TOL = 50.0, 0.001


def step(
    fraction: float,
    served: float,
    p99_ms: float = 20.0,
    errors: int = 0,
    valid: bool = True,
    due: int = 10_000,
) -> Step:
    return Step(
        fraction=fraction,
        offered_rows_s=fraction * 2000,
        served_rows_s=served,
        due=due,
        ok=due - errors,
        errors=errors,
        p50_us=int(p99_ms * 500),
        p99_us=int(p99_ms * 1000),
        valid=valid,
    )


def test_physical_limit_is_full_batches_back_to_back() -> None:
    assert physical_limit(1, 8.0, 0.25, 32) == pytest.approx(2000.0)
    assert physical_limit(2, 8.0, 0.25, 32) == pytest.approx(4000.0)
    assert physical_limit(1, 8.0, 0.25, 32, devices=2) == pytest.approx(4000.0)


def test_a_step_passes_only_within_slo_errors_and_schedule() -> None:
    assert judge(step(0.5, 1000), SLO_MS, TOL).passed
    assert judge(step(0.5, 1000, p99_ms=50.0), SLO_MS, TOL).passed  # p99 ≤ SLO
    assert "p99" in judge(step(0.5, 1000, p99_ms=51.0), SLO_MS, TOL).reason
    assert judge(step(0.5, 1000, errors=10), SLO_MS, TOL).passed  # 0.1% tolerated
    assert "errors" in judge(step(0.5, 1000, errors=11), SLO_MS, TOL).reason
    assert "invalid" in judge(step(0.5, 1000, valid=False), SLO_MS, TOL).reason
    assert not judge(step(0.5, 0, due=0), SLO_MS, TOL).passed


def test_goodput_is_the_most_served_by_a_passing_step() -> None:
    steps = [
        step(0.5, 1000),
        step(0.9, 1790, p99_ms=45),
        step(1.0, 1850, p99_ms=300),  # served more, but over the SLO
        step(0.95, 1880, valid=False),  # the generator fell behind: not trusted
        step(0.8, 1600),
    ]
    best = select_goodput(steps, SLO_MS, TOL)
    assert best is not None and best.served_rows_s == 1790


def test_goodput_is_none_when_nothing_passes() -> None:
    assert select_goodput([step(0.1, 200, p99_ms=80)], SLO_MS, TOL) is None
    assert select_goodput([], SLO_MS, TOL) is None


def run_sweep(capacity: float, **kwargs: object) -> list[float]:
    """The fractions a sweep tries against a system that passes every load ≤ capacity."""
    tried: list[tuple[float, bool]] = []
    while (f := next_fraction(tried, **kwargs)) is not None:  # type: ignore[arg-type]
        tried.append((f, f <= capacity))
        assert len(tried) < 50
    return [f for f, _ in tried]


def test_the_median_sweep_counts_none_passed_as_zero() -> None:
    def sweep(run: int, served: float | None) -> Sweep:
        good = None if served is None else step(0.9, served)
        return Sweep(1, "batching", 2000.0, goodput=good, run=run)

    runs = [sweep(0, 1812.0), sweep(1, 1882.0), sweep(2, None)]
    assert median_sweep(runs).run == 0
    assert median_sweep([sweep(0, None), sweep(1, 1700.0)]).run == 0  # the lower middle
    assert median_sweep(runs[1:2]).run == 1


def test_the_sweep_climbs_the_grid_then_bisects() -> None:
    order = run_sweep(0.92, grid=(0.3, 0.5, 0.7, 0.9, 0.95, 1.0, 1.1), refine=2)
    assert order == [0.3, 0.5, 0.7, 0.9, 0.95, 1.0, 0.925, 0.9125]


def test_the_sweep_stops_after_consecutive_failures() -> None:
    order = run_sweep(0.05, refine=0)
    assert order == [0.02, 0.04, 0.06, 0.08]


def test_one_failure_alone_does_not_stop_the_climb() -> None:
    tried = [(0.3, True), (0.5, False)]
    assert next_fraction(tried, (0.3, 0.5, 0.7, 0.9), stop_after=2, refine=0) == 0.7
    tried += [(0.7, True), (0.9, False)]
    assert next_fraction(tried, (0.3, 0.5, 0.7, 0.9), stop_after=2, refine=0) is None


def test_when_the_first_step_fails_the_sweep_bisects_towards_zero() -> None:
    order = run_sweep(0.012, grid=(0.02, 0.04), refine=2)
    assert order == [0.02, 0.04, 0.01, 0.015]


def test_the_sweep_ends_when_every_step_passes() -> None:
    assert run_sweep(5.0, grid=(0.5, 1.0), refine=3) == [0.5, 1.0]


def test_the_default_grid_is_ascending() -> None:
    assert list(DEFAULT_GRID) == sorted(DEFAULT_GRID)


def test_batching_mode_sets_the_triton_knob_and_none_leaves_it_out() -> None:
    config = GoodputConfig(max_queue_delay_us=5000)
    with_b = gateway_model(config, "batching", ["127.0.0.1:1"])
    without = gateway_model(config, "none", ["127.0.0.1:1"])
    assert with_b["dynamic_batching"] == {"max_queue_delay_microseconds": 5000}
    assert "dynamic_batching" not in without
    assert "max_inflight_per_pod" not in without
    pinned = gateway_model(GoodputConfig(inflight_per_pod=2), "none", [])
    assert pinned["max_inflight_per_pod"] == 2


class _Pod(Served):
    http_port = 9300
    grpc_port = 9301


def test_the_backend_protocol_picks_the_pods_grpc_or_rest_address() -> None:
    grpc = backend_model(GoodputConfig(), "batching", [_Pod()])
    assert grpc["endpoints"] == ["127.0.0.1:9301"] and "backend_protocol" not in grpc
    http = backend_model(GoodputConfig(backend_protocol="http"), "none", [_Pod(), _Pod()])
    assert http["endpoints"] == ["127.0.0.1:9300"] * 2 and http["backend_protocol"] == "http"
    assert "dynamic_batching" not in http
    overridden = backend_model(GoodputConfig(backend_protocol="http"), "none", [_Pod()], "grpc")
    assert overridden["endpoints"] == ["127.0.0.1:9301"]


def test_an_unknown_backend_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="backend_protocol"):
        GoodputConfig(backend_protocol="rest")


METRICS = """\
# HELP gateway_batch_rows Rows per batch sent
# TYPE gateway_batch_rows histogram
gateway_batch_rows_bucket{le="1.0",model="sim"} 3.0
gateway_batch_rows_bucket{le="+Inf",model="sim"} 10.0
gateway_batch_rows_count{model="sim"} 10.0
gateway_batch_rows_sum{model="sim"} 120.0
gateway_batch_rows_count{model="other"} 4.0
gateway_batch_rows_sum{model="other"} 4.0
# HELP gateway_requests_total Inference requests received
# TYPE gateway_requests_total counter
gateway_requests_total{model="sim",protocol="http"} 10.0
"""


def test_batch_counts_are_read_per_model_and_their_deltas_give_the_mean() -> None:
    now = parse_batch_counts(METRICS, "sim")
    assert now == BatchCounts(120.0, 10.0)
    assert (now - BatchCounts(20.0, 5.0)).mean == 20.0
    assert parse_batch_counts(METRICS, "missing") == BatchCounts()
    assert BatchCounts().mean is None


def test_requests_in_flight_are_read_per_model() -> None:
    text = (
        "# TYPE gateway_inflight_requests gauge\n"
        'gateway_inflight_requests{model="sim"} 7.0\n'
        'gateway_inflight_requests{model="other"} 1.0\n'
    )
    assert parse_inflight(text, "sim") == 7.0
    assert parse_inflight(text, "missing") is None
    assert parse_inflight(METRICS, "sim") is None


def test_generator_processes_grow_with_the_offered_rate_unless_pinned() -> None:
    auto = GoodputConfig(rate_per_process=2500.0)
    assert [auto.generator_processes(r) for r in (40.0, 2500.0, 2501.0, 3800.0)] == [1, 1, 2, 2]
    assert GoodputConfig(processes=3).generator_processes(40.0) == 3


def test_generator_processes_are_a_multiple_of_the_gateway_replicas() -> None:
    auto = GoodputConfig(rate_per_process=2500.0)
    assert [auto.generator_processes(40.0, g) for g in (1, 2, 3)] == [1, 2, 3]
    assert auto.generator_processes(6000.0, 2) == 4  # 3 for the rate, rounded up to 2 each
    assert GoodputConfig(processes=3).generator_processes(40.0, 2) == 4


def test_gateway_counts_must_be_positive_and_go_without_a_target() -> None:
    assert GoodputConfig().gateways == (1,)
    with pytest.raises(ValueError, match="gateways"):
        GoodputConfig(gateways=(0, 1))
    with pytest.raises(ValueError, match="gateways"):
        GoodputConfig(gateways=(1, 2), target="http://127.0.0.1:1", target_limit_rows_s=10.0)


FITTED = """\
# TYPE gateway_batch_cost_fixed_seconds gauge
gateway_batch_cost_fixed_seconds{model="sim"} 0.019
# TYPE gateway_batch_cost_per_row_seconds gauge
gateway_batch_cost_per_row_seconds{model="sim"} 0.00025
"""


SENDS = """\
# TYPE gateway_batch_sends_total counter
gateway_batch_sends_total{model="sim",reason="full"} %s
gateway_batch_sends_total{model="sim",reason="cost_model"} 4.0
gateway_batch_sends_total{model="other",reason="full"} 9.0
"""


def test_each_replicas_window_counts_its_batches_by_the_reason_they_were_sent() -> None:
    before = parse_metrics(SENDS % "2.0")
    g = window_figures("gateway", before, parse_metrics(SENDS % "7.0"), "sim")
    assert g.sends == (("full", 5.0),)  # cost_model did not grow; other's are not sim's
    other = GatewayFigures("gateway1", 1, 1, 1, sends=(("cost_model", 2.0), ("full", 3.0)))
    sends = combined_sends([g, other])
    assert sends == (("cost_model", 2.0), ("full", 8.0))
    two = replace(step(0.9, 1800), per_gateway=(g, other), sends=sends)
    doc = two.as_dict()
    assert doc["sends"] == {"cost_model": 2.0, "full": 8.0}
    assert doc["per_gateway"][1]["sends"] == {"cost_model": 2.0, "full": 3.0}
    sweep = Sweep(1, "batching", 2000.0, steps=[two], goodput=two, gateways=2)
    assert "(full 80%)" in step_line(sweep, two, judge(two, SLO_MS, TOL))
    assert "(full -)" in step_line(sweep, step(0.9, 1800), judge(two, SLO_MS, TOL))


def test_each_replicas_window_gives_its_requests_batches_and_fitted_cost() -> None:
    before = parse_metrics(METRICS.replace("120.0", "20.0").replace("10.0\n", "5.0\n"))
    after = parse_metrics(METRICS + FITTED)
    g = window_figures("gateway1", before, after, "sim")
    assert (g.name, g.requests, g.batch_rows, g.batches) == ("gateway1", 5.0, 100.0, 5.0)
    assert g.mean_batch_rows == 20.0
    assert g.fitted_fixed_ms == pytest.approx(19.0)
    assert g.fitted_per_row_ms == pytest.approx(0.25)
    unfitted = window_figures("gateway", before, before, "sim")
    assert (unfitted.requests, unfitted.mean_batch_rows, unfitted.fitted_fixed_ms) == (
        0.0,
        None,
        None,
    )


def test_the_mean_batch_of_several_replicas_is_over_all_their_batches() -> None:
    a = GatewayFigures("gateway", requests=30, batch_rows=30, batches=10)
    b = GatewayFigures("gateway1", requests=90, batch_rows=90, batches=20)
    assert combined([a, b]) == BatchCounts(120.0, 30.0)
    assert combined([a, b]).mean == 4.0  # not the mean of the means, 3.75
    doc = replace(step(0.5, 1000), per_gateway=(a, b)).as_dict()
    assert [g["name"] for g in doc["per_gateway"]] == ["gateway", "gateway1"]
    assert [g["mean_batch_rows"] for g in doc["per_gateway"]] == [3.0, 4.5]


def test_the_summary_has_a_row_per_pod_and_gateway_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fitted = (
        GatewayFigures("gateway", 10, 10, 5, 8.1),
        GatewayFigures("gateway1", 10, 10, 5, 19.2),
    )
    two = replace(step(0.9, 1800), per_gateway=fitted)
    sweeps = [
        Sweep(1, "batching", 2000.0, goodput=step(0.9, 1812.0), gateways=1),
        Sweep(1, "batching", 2000.0, steps=[two], goodput=two, gateways=2),
    ]
    print_summary(sweeps, GoodputConfig(pods=(1,), gateways=(1, 2), modes=("batching",)))
    out = capsys.readouterr().out
    assert "gateways" in out
    assert "1,812 (91%)" in out and "1,800 (90%)" in out
    assert "8.1 / 19.2" in out  # each replica's fitted F
    line = step_line(sweeps[1], two, judge(two, SLO_MS, TOL))
    assert line.startswith("1 pod(s) 2 gw batching")
    assert "fitted F 8.1 / 19.2 ms" in line and "per gw: requests 10 / 10" in line


def test_the_fitted_f_and_c_are_shown_beside_the_pods_true_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fitted = replace(
        step(0.9, 1800), per_gateway=(GatewayFigures("gateway", 10, 10, 5, 8.1, 0.25),)
    )
    sweep = Sweep(1, "batching", 2000.0, steps=[fitted], goodput=fitted, gateways=1)
    assert "fitted F 8.1 ms c 0.250 ms/row" in step_line(sweep, fitted, judge(fitted, SLO_MS, TOL))
    print_summary([sweep], GoodputConfig(pods=(1,), modes=("batching",)))
    out = " ".join(capsys.readouterr().out.split())
    assert "(the pods': 8 + 0.25): 1 pod(s) 1 gw 8.1 + 0.250." in out


def test_a_windows_sends_are_counted_only_when_every_replica_was_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scrapes = {"a": [SENDS % "2.0", SENDS % "7.0"], "b": [SENDS % "1.0", None]}

    def fetch(url: str, timeout_s: float) -> Any:
        text = scrapes[url].pop(0)
        return None if text is None else parse_metrics(text)

    monkeypatch.setattr(gateways_probe, "fetch_metrics", fetch)
    probe = gateways_probe.GatewaysProbe({}, {"gw-a": "a", "gw-b": "b"})
    probe.start()
    probe.stop()
    assert [g.name for g in probe.per_gateway] == ["gw-a"]  # b's end could not be read
    assert probe.batches is None and probe.sends == ()
    scrapes.update(a=[SENDS % "2.0", SENDS % "7.0"], b=[SENDS % "1.0", SENDS % "4.0"])
    probe.start()
    probe.stop()
    assert probe.sends == (("full", 8.0),)
