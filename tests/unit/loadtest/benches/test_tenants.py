"""The tenants benchmark, without load: its capacity, the gateway config per mode, each tenant's
generator, the figures from results and scrapes, the tables and the JSON report."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from gateway.config import parse_config
from loadtest.benches.tenants import (
    TENANTS,
    TenantsConfig,
    capacity_line,
    gateway_config,
    key_digests,
    print_report,
    process_plan,
    tenant_keys,
    tenant_loads,
    tenants_doc,
)
from loadtest.benches.tenants_report import (
    ModeRun,
    PodFigures,
    TenantFigures,
    pod_figures,
    pods_rows,
    tenant_columns,
    tenant_rows,
)
from loadtest.cli import build_parser
from loadtest.commands import options
from loadtest.probes.metrics import parse_metrics
from loadtest.results.open_loop_result import OpenLoopResult, histogram_of_ns

KEYS = {"A": "key-of-a", "B": "key-of-b"}
MS = 1_000_000  # ns


def _result(
    latencies_ms: list[float], errors: dict[str, int], window_s: float = 10.0
) -> OpenLoopResult:
    return OpenLoopResult(
        histogram=histogram_of_ns([int(v * MS) for v in latencies_ms]),
        ok=len(latencies_ms),
        errors=errors,
        window_s=window_s,
        due=len(latencies_ms) + sum(errors.values()),
    )


def test_the_capacity_is_full_batches_back_to_back_on_every_pod() -> None:
    config = TenantsConfig(pods=2, fixed_ms=20.0, per_row_ms=2.0, max_batch=8)
    assert config.capacity_rows_s == pytest.approx(2 * 8 / 0.036)
    assert config.offered_rows_s("A") == pytest.approx(3 * config.capacity_rows_s)
    assert config.offered_rows_s("B") == pytest.approx(0.3 * config.capacity_rows_s)
    line = capacity_line(config)
    assert "36 ms" in line and "444 rows/s" in line and "1,333" in line


def test_a_config_refuses_a_stream_protocol_and_unknown_modes() -> None:
    with pytest.raises(ValueError, match="protocol"):
        TenantsConfig(protocol="grpc-stream")
    with pytest.raises(ValueError, match="modes"):
        TenantsConfig(modes=("fair", "lottery"))


@pytest.mark.parametrize(("mode", "fair"), [("fair", True), ("fifo", False)])
def test_the_gateway_config_sets_fair_share_by_mode(mode: str, fair: bool) -> None:
    models, _ = gateway_config(TenantsConfig(), mode, ["127.0.0.1:1"], key_digests(KEYS))
    [model] = models
    assert model["fair_share"] is fair
    assert model["dynamic_batching"] == {"max_queue_delay_microseconds": 5000}
    assert model["endpoints"] == ["127.0.0.1:1"]


def test_the_gateway_config_has_two_equal_tenants_known_by_digest_and_requires_a_key() -> None:
    _, extra = gateway_config(TenantsConfig(), "fair", ["127.0.0.1:1"], key_digests(KEYS))
    assert extra["auth"] == {"required": True}
    tenants = {t["name"]: t for t in extra["tenants"]}
    assert set(tenants) == set(TENANTS)
    for name, tenant in tenants.items():
        assert tenant["api_key_sha256"] == [hashlib.sha256(KEYS[name].encode()).hexdigest()]
        assert tenant["weight"] == 1.0
    assert KEYS["A"] not in json.dumps(extra)  # only digests in the config


@pytest.mark.parametrize("mode", ["fair", "fifo"])
def test_the_gateway_accepts_the_config(mode: str) -> None:
    models, extra = gateway_config(TenantsConfig(), mode, ["127.0.0.1:1"], key_digests(KEYS))
    config = parse_config({"models": models, **extra})
    assert config.models[0].fair_share is (mode == "fair")
    assert [t.name for t in config.tenants] == list(TENANTS)
    assert config.auth.required


def test_made_up_keys_differ_per_tenant_and_per_run() -> None:
    first, second = tenant_keys(), tenant_keys()
    assert set(first) == set(TENANTS)
    assert first["A"] != first["B"]
    assert first != second


def test_each_tenant_sends_its_own_key_at_its_own_rate() -> None:
    config = TenantsConfig(protocol="grpc")
    loads = {t.tenant: t for t in tenant_loads(config, "127.0.0.1:9", KEYS)}
    for tenant in TENANTS:
        spec, load = loads[tenant].spec, loads[tenant].load
        assert spec.kind == "grpc" and spec.target == "127.0.0.1:9"
        assert spec.headers == (("Authorization", f"Bearer {KEYS[tenant]}"),)
        assert load.rate == pytest.approx(config.offered_rows_s(tenant))
        assert (load.warmup_s, load.duration_s) == (config.warmup_s, config.duration_s)
    assert loads["A"].load.window == loads["B"].load.window
    assert loads["A"].load.seed != loads["B"].load.seed


def test_every_mode_gets_the_same_arrivals() -> None:
    config = TenantsConfig()
    first = tenant_loads(config, "http://g:1", KEYS)
    again = tenant_loads(config, "http://g:2", KEYS)
    assert [t.load for t in first] == [t.load for t in again]


def test_a_tenant_over_one_process_budget_gets_several_processes() -> None:
    config = TenantsConfig(rate_per_process=500.0)  # A offers 1,333 req/s: three processes
    plan = process_plan(tenant_loads(config, "http://g:1", KEYS))
    assert [(tenant, share) for tenant, _, _, share in plan] == [
        ("A", 0),
        ("A", 1),
        ("A", 2),
        ("B", 0),
    ]
    assert all(load.processes == 3 for tenant, _, load, _ in plan if tenant == "A")


def test_a_tenants_figures_split_429s_from_other_errors() -> None:
    result = _result([10.0] * 80 + [400.0] * 20, {"http 429": 40, "timeout": 2})
    figures = TenantFigures.of("B", result, rows=1, slo_ms=200.0)
    assert figures.offered_rows_s == pytest.approx(14.2)
    assert figures.served_rows_s == pytest.approx(10.0)
    assert figures.goodput_rows_s == pytest.approx(8.0)  # the 400 ms answers miss the SLO
    assert figures.rejected_per_s == pytest.approx(4.0)
    assert figures.other_errors_per_s == pytest.approx(0.2)
    assert figures.p50_us is not None and figures.p99_us is not None
    assert figures.p50_us < 11_000 < 399_000 < figures.p99_us


def test_a_grpc_refusal_counts_as_a_429_and_rows_scale_the_rates() -> None:
    result = _result([5.0] * 10, {"grpc RESOURCE_EXHAUSTED": 10, "grpc UNAVAILABLE": 1})
    figures = TenantFigures.of("A", result, rows=4, slo_ms=50.0)
    assert figures.rejected_per_s == pytest.approx(1.0)
    assert figures.other_errors_per_s == pytest.approx(0.1)
    assert figures.served_rows_s == pytest.approx(4.0)


def test_a_tenant_with_nothing_answered_has_no_latency() -> None:
    figures = TenantFigures.of("A", _result([], {"http 429": 5}), rows=1, slo_ms=50.0)
    assert (figures.p50_us, figures.p99_us, figures.goodput_rows_s) == (None, None, 0.0)


POD_BEFORE = """
simpod_device_busy_seconds_total{device="0"} 10.0
nv_inference_count{model="sim"} 1000
"""
POD_AFTER = """
simpod_device_busy_seconds_total{device="0"} 19.0
nv_inference_count{model="sim"} 3000
"""
GATEWAY_BEFORE = """
gateway_batch_rows_sum{model="sim"} 800
gateway_batch_rows_count{model="sim"} 100
gateway_tenant_rejections_total{tenant="A",reason="overloaded"} 100
"""
GATEWAY_AFTER = """
gateway_batch_rows_sum{model="sim"} 2400
gateway_batch_rows_count{model="sim"} 300
gateway_tenant_rejections_total{tenant="A",reason="overloaded"} 9100
gateway_tenant_rejections_total{tenant="A",reason="queue_full"} 50
gateway_tenant_rejections_total{tenant="B",reason="overloaded"} 0
"""


def _pods_figures(pods: int = 2) -> PodFigures:
    pod = (parse_metrics(POD_BEFORE), parse_metrics(POD_AFTER))
    gateway = (parse_metrics(GATEWAY_BEFORE), parse_metrics(GATEWAY_AFTER))
    return pod_figures([pod] * pods, gateway, 10.0, 500.0, tenants=TENANTS)


def test_the_pods_figures_come_from_their_and_the_gateways_metrics() -> None:
    figures = _pods_figures()
    assert figures.busy_fraction == pytest.approx(18.0 / 20.0)  # 2 pods, 10 s each
    assert figures.served_rows_s == pytest.approx(400.0)
    assert figures.of_capacity == pytest.approx(0.8)
    assert figures.mean_batch_rows == pytest.approx(8.0)
    assert figures.refusals == {"A": {"overloaded": 900.0, "queue_full": 5.0}, "B": {}}


def test_a_missing_scrape_leaves_the_pods_figures_unknown() -> None:
    pod = (parse_metrics(POD_BEFORE), None)
    figures = pod_figures([pod], (None, None), 10.0, 500.0, tenants=TENANTS)
    assert (figures.busy_fraction, figures.served_rows_s, figures.of_capacity) == (None,) * 3
    assert (figures.mean_batch_rows, figures.refusals) == (None, {})


def _runs() -> list[ModeRun]:
    runs = []
    for mode, b_ms in (("fair", 30.0), ("fifo", 1100.0)):
        results = {
            "A": _result([900.0] * 440, {"http 429": 900}),
            "B": _result([b_ms] * 130, {} if mode == "fair" else {"http 429": 3}),
        }
        tenants = {t: TenantFigures.of(t, r, 1, 200.0) for t, r in results.items()}
        runs.append(ModeRun(mode, tenants, _pods_figures(), results))
    return runs


def test_the_tenant_table_puts_each_modes_tenants_side_by_side() -> None:
    runs = _runs()
    assert tenant_columns(runs) == [
        "figure",
        "fair share: A",
        "fair share: B",
        "FIFO: A",
        "FIFO: B",
    ]
    rows = {row[0]: row[1:] for row in tenant_rows(runs, 200.0)}
    assert rows["offered rows/s"] == ["134", "13", "134", "13"]
    assert rows["goodput rows/s (≤ 200 ms)"] == ["0", "13", "0", "0"]
    assert rows["p99 (answered)"][1] == "30.0 ms"
    assert rows["429s/s"] == ["90", "0", "90", "0.3"]
    assert all(len(cells) == 4 for cells in rows.values())


def test_the_pods_table_has_a_column_per_mode() -> None:
    rows = {row[0]: row[1:] for row in pods_rows(_runs(), TENANTS)}
    assert rows["pods busy (device time)"] == ["90%", "90%"]
    assert rows["  of capacity"] == ["80%", "80%"]
    assert rows["mean batch rows (gateway)"] == ["8.0", "8.0"]
    assert rows["A refused by the gateway /s"] == ["overloaded 900, queue_full 5.0"] * 2
    assert rows["B refused by the gateway /s"] == ["0", "0"]


def test_the_report_prints_both_tables_and_bs_p99_in_each_mode(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_report(TenantsConfig(), _runs())
    out = capsys.readouterr().out
    assert "fair share: B" in out and "pods busy" in out
    assert "B's p99: fair share 30.0 ms, FIFO 1100.8 ms." in out  # to the histogram's precision


def test_the_json_report_names_each_modes_fair_share() -> None:
    config = replace(TenantsConfig(), duration_s=3.0)
    doc = json.loads(json.dumps(tenants_doc(config, _runs(), 1.0)))
    assert doc["benchmark"] == "tenants"
    assert doc["config"]["json_path"] == "reports/bench-tenants.json"
    assert [(m["mode"], m["fair_share"]) for m in doc["modes"]] == [("fair", True), ("fifo", False)]
    assert doc["modes"][0]["tenants"]["B"]["goodput_rows_s"] == 13.0
    assert doc["modes"][0]["load"]["A"]["errors"] == {"http 429": 900}


def test_the_command_line_builds_the_config() -> None:
    args = build_parser().parse_args(
        ["tenants", "--duration", "8", "--warmup", "2", "--pods", "1", "--modes", "fifo"]
    )
    config = options.config_from(args, TenantsConfig)
    assert (config.duration_s, config.warmup_s, config.pods, config.modes) == (
        8.0,
        2.0,
        1,
        ("fifo",),
    )
    assert (config.fixed_ms, config.per_row_ms, config.max_batch) == (20.0, 2.0, 8)
    assert (config.protocol, config.a_load, config.b_load) == ("http-binary", 3.0, 0.3)
    assert str(config.json_path) == "reports/bench-tenants.json"


def test_the_command_line_refuses_a_stream_protocol() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["tenants", "--protocol", "grpc-stream"])
