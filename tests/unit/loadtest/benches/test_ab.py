"""The A/B core without servers: run order, merging rounds, figures and B/A ratios, target specs."""

from __future__ import annotations

import pytest

from loadtest.benches import ab
from loadtest.benches.ab import AbResult, Leg, Side, alternation, figures, ratio, ratios, run_ab
from loadtest.benches.ab_setups import Setup, parse_pids, parse_setup, side_model
from loadtest.benches.goodput import GoodputConfig
from loadtest.clients.base import ClientSpec
from loadtest.generators.closed_loop import ClosedLoopConfig
from loadtest.generators.open_loop import OpenLoopConfig
from loadtest.results.histogram import encode, new_histogram
from loadtest.results.load_result import LoadResult
from loadtest.stack.simpod_args import SimPod


def result(latencies_us: list[int], *, window_s: float = 1.0, errors: int = 0) -> LoadResult:
    hist = new_histogram()
    for us in latencies_us:
        hist.record_value(us)
    return LoadResult(
        histogram=encode(hist),
        ok=len(latencies_us),
        errors={"timeout": errors} if errors else {},
        window_s=window_s,
        client_cpu_s=len(latencies_us) * 50e-6,
    )


def side(label: str) -> Side:
    return Side(label, ClientSpec("grpc", "127.0.0.1:1"))


def test_alternation_runs_a_then_b_in_every_round() -> None:
    assert alternation(3) == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]


def test_alternation_needs_a_round() -> None:
    with pytest.raises(ValueError):
        alternation(0)


def test_ratio_is_b_over_a_and_unknown_when_a_is_zero_or_missing() -> None:
    assert ratio(200.0, 50.0) == 0.25
    assert ratio(0.0, 5.0) is None
    assert ratio(None, 5.0) is None
    assert ratio(5.0, None) is None


def test_ratios_cover_figures_only_one_side_has() -> None:
    got = ratios({"p50_us": 100.0, "pod_cpu_us_per_req": 10.0}, {"p50_us": 300.0, "g": 1.0})
    assert got == {"p50_us": 3.0, "pod_cpu_us_per_req": None, "g": None}


def test_a_leg_merges_its_rounds_and_adds_cpu() -> None:
    leg = Leg()
    leg.add(result([1000] * 100), {"pod": 0.01})
    leg.add(result([3000] * 100), {"pod": 0.03, "gateway": 0.02})
    assert leg.rounds == 2
    assert leg.result.ok == 200
    assert leg.result.throughput == pytest.approx(100.0)  # 200 requests over 2 s of windows
    assert leg.cpu_us_per_request("pod") == pytest.approx(200.0)
    assert leg.cpu_us_per_request("gateway") == pytest.approx(100.0)
    assert leg.cpu_us_per_request() == pytest.approx(300.0)  # every process under test
    assert leg.cpu_us_per_request("nobody") is None


def test_figures_of_a_leg() -> None:
    leg = Leg()
    leg.add(result([1000] * 98 + [5000, 9000], errors=3), {"pod": 0.02})
    f = figures(leg)
    assert f["throughput_rps"] == pytest.approx(100.0)
    assert f["p50_us"] == pytest.approx(1000, rel=0.01)
    assert f["p99_us"] == pytest.approx(5000, rel=0.01)
    assert f["p999_us"] == pytest.approx(9000, rel=0.01)
    assert f["errors"] == 3
    assert f["cpu_us_per_req"] == pytest.approx(200.0)
    assert f["pod_cpu_us_per_req"] == pytest.approx(200.0)
    assert f["generator_cpu_us_per_req"] == pytest.approx(50.0)


def test_an_empty_leg_has_no_latency_or_cpu_figures() -> None:
    f = figures(Leg())
    assert f["p50_us"] is None and f["cpu_us_per_req"] is None and f["throughput_rps"] == 0


def test_the_table_puts_b_over_a_beside_both_sides() -> None:
    a, b = Leg(), Leg()
    a.add(result([1000] * 100), {"pod": 0.01})
    b.add(result([2000] * 50), {"pod": 0.01, "gateway": 0.02})
    rows = {r[0]: r[1:] for r in AbResult(side("A"), side("B"), (a, b)).rows()}
    assert rows["req/s"] == ["100", "50", "0.50"]
    assert rows["p50"][2] == "2.00"
    assert rows["CPU-µs/req, all under test"] == ["100", "600", "6.00"]
    assert rows["CPU-µs/req, gateway"] == ["-", "400", "-"]
    assert list(rows)[-1] == "generator CPU-µs/req"


def test_the_report_holds_both_sides_and_the_ratios() -> None:
    a, b = Leg(), Leg()
    a.add(result([1000] * 10), {})
    b.add(result([4000] * 10), {})
    doc = AbResult(side("pod"), side("gateway"), (a, b)).as_dict()
    assert (doc["a"]["label"], doc["b"]["label"]) == ("pod", "gateway")
    assert doc["ratios_b_over_a"]["p50_us"] == pytest.approx(4.0, rel=0.01)
    assert doc["b"]["latency"]["count"] == 10


def test_run_ab_alternates_and_gives_both_sides_of_a_round_the_same_arrivals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[tuple[str, int]] = []

    def fake_run_load(specs: tuple[ClientSpec, ...], load: object, probe: object) -> LoadResult:
        assert isinstance(load, OpenLoopConfig)
        [spec] = specs
        runs.append((spec.target, load.seed))
        return result([1000 if spec.target == "a:1" else 2000] * 10)

    monkeypatch.setattr(ab, "run_load", fake_run_load)
    a = Side("A", ClientSpec("grpc", "a:1"))
    b = Side("B", ClientSpec("grpc", "b:1"))
    load = OpenLoopConfig(rate=10.0, duration_s=1.0, seed=7)
    got = run_ab(a, b, load, 2, log=lambda line: None)
    assert runs == [("a:1", 7), ("b:1", 7), ("a:1", 8), ("b:1", 8)]
    assert got.legs[0].rounds == got.legs[1].rounds == 2
    assert got.ratios()["p50_us"] == pytest.approx(2.0, rel=0.01)


def test_a_side_of_several_replicas_spreads_its_load_over_all_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, ...]] = []

    def fake_run_load(specs: tuple[ClientSpec, ...], load: object, probe: object) -> LoadResult:
        seen.append(tuple(s.target for s in specs))
        return result([1000])

    monkeypatch.setattr(ab, "run_load", fake_run_load)
    spec = ClientSpec("grpc", "g0:1", verify_every=3)
    b = Side("B", spec, more_targets=("g1:1", "g2:1"))
    assert [s.verify_every for s in b.specs()] == [3, 3, 3]  # only the target differs
    got = run_ab(
        side("A"), b, ClosedLoopConfig(duration_s=1.0, processes=3), 1, log=lambda line: None
    )
    assert seen == [("127.0.0.1:1",), ("g0:1", "g1:1", "g2:1")]
    assert got.as_dict()["b"]["targets"] == ["g0:1", "g1:1", "g2:1"]
    assert "targets" not in got.as_dict()["a"]


def test_run_ab_passes_a_closed_loop_load_through(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    monkeypatch.setattr(
        ab, "run_load", lambda spec, load, probe: seen.append(load) or result([1000])
    )
    load = ClosedLoopConfig(concurrency=1, duration_s=1.0)
    run_ab(side("A"), side("B"), load, 1, log=lambda line: None)
    assert seen == [load, load]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pod", Setup("pod", "pod")),
        ("gateway", Setup("gateway", "gateway", batching=True)),
        ("gateway:nobatch", Setup("gateway", "gateway:nobatch", batching=False)),
        (
            "gateway:batch,pods=2,F=2,c=0.5,max-batch=8",
            Setup(
                "gateway",
                "gateway:batch,pods=2,F=2,c=0.5,max-batch=8",
                pod=SimPod(2.0, 0.5, 8),
                pods=2,
            ),
        ),
        ("pod:F=8", Setup("pod", "pod:F=8", pod=SimPod(fixed_ms=8.0))),
        ("gateway:gateways=3", Setup("gateway", "gateway:gateways=3", gateways=3)),
        ("gateway:backend=http", Setup("gateway", "gateway:backend=http", backend="http")),
        ("http://127.0.0.1:8000", Setup("url", "http://127.0.0.1:8000", "http://127.0.0.1:8000")),
        ("127.0.0.1:8001", Setup("url", "127.0.0.1:8001", "127.0.0.1:8001")),
        ("grpc://localhost:8001", Setup("url", "grpc://localhost:8001", "localhost:8001")),
    ],
)
def test_target_specs_parse(text: str, expected: Setup) -> None:
    assert parse_setup(text) == expected


def test_pod_options_default_to_the_command_line() -> None:
    setup = parse_setup("gateway:c=1", SimPod(fixed_ms=4.0, max_batch=16))
    assert setup.pod == SimPod(4.0, 1.0, 16)


def test_gateway_replicas_default_to_the_command_line_unless_the_side_names_them() -> None:
    assert parse_setup("gateway", gateways=2).gateways == 2
    assert parse_setup("gateway:gateways=3", gateways=2).gateways == 3
    assert parse_setup("pod", gateways=2).gateways == 1  # a pod is sent to directly


@pytest.mark.parametrize(
    "text",
    [
        "ftp",
        "pod:nobatch",
        "pod:pods=2",
        "gateway:pods=0",
        "pod:F=x",
        "pod:F=-1",
        "h:",
        "gateway:gateways=0",
        "gateway:gateways=x",
        "pod:gateways=2",
        "gateway:backend=rest",
        "pod:backend=http",
    ],
)
def test_bad_target_specs_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_setup(text)


def test_pids_name_the_processes_under_test() -> None:
    watched = parse_pids("gateway=12,34")
    assert sorted(watched) == ["gateway", "pid34"]
    with pytest.raises(ValueError):
        parse_pids("gateway=x")


class _Pod:
    http_url = "http://127.0.0.1:9300"
    grpc_address = "127.0.0.1:9301"


def test_a_gateway_side_sends_to_the_pods_grpc_unless_its_backend_is_http() -> None:
    config = GoodputConfig(max_queue_delay_us=5000)
    grpc = side_model(parse_setup("gateway"), config, [_Pod()])
    assert grpc["endpoints"] == ["127.0.0.1:9301"] and "backend_protocol" not in grpc
    assert grpc["dynamic_batching"] == {"max_queue_delay_microseconds": 5000}
    http = side_model(parse_setup("gateway:backend=http,nobatch"), config, [_Pod(), _Pod()])
    assert http["endpoints"] == ["127.0.0.1:9300"] * 2 and http["backend_protocol"] == "http"
    assert "dynamic_batching" not in http
