"""``loadtest goodput --runtime triton`` without a Triton: the options, the repository's two
models read right, the config and sides of a run, Triton's counters, and the tables."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from loadtest.benches.gateways_probe import GatewaysProbe
from loadtest.benches.goodput import GoodputConfig, SweepTarget
from loadtest.benches.goodput_sweep import DEFAULT_GRID, MODES, GatewayFigures, Step, Sweep
from loadtest.benches.goodput_triton import (
    BATCHED_MODEL,
    DEFAULT_TRITON_GRID,
    GATEWAY_MODEL,
    SIDES,
    MeasuredLimit,
    TritonBatcherTarget,
    TritonProbe,
    bench_repository,
    parse_model_config,
    read_models,
    side_label,
    triton_config,
    triton_counter,
    triton_pending,
)
from loadtest.benches.goodput_triton_report import (
    fitted_cost,
    print_triton_summary,
    rate_rows,
    sides,
)
from loadtest.cli import build_parser
from loadtest.commands.goodput import runtime_values
from loadtest.probes.metrics import parse_metrics
from loadtest.stack.triton import MODEL_REPOSITORY

SLO_MS, TOL = 50.0, 0.001


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["goodput", *argv])


def step(fraction: float, served: float, p99_ms: float = 20.0, batch: float | None = None) -> Step:
    return Step(
        fraction=fraction,
        offered_rows_s=fraction * 1800,
        served_rows_s=served,
        due=1000,
        ok=1000,
        errors=0,
        p50_us=int(p99_ms * 500),
        p99_us=int(p99_ms * 1000),
        valid=True,
        mean_batch_rows=batch,
    )


def test_the_runtime_defaults_to_simpod_with_its_pods_modes_and_grid() -> None:
    args = parse()
    assert args.runtime == "simpod"
    assert runtime_values(args) == {"pods": (1, 2), "modes": MODES, "grid": DEFAULT_GRID}
    given = runtime_values(parse("--pods", "2", "--modes", "batching", "--fractions", "0.5"))
    assert given == {"pods": (2,), "modes": ("batching",), "grid": (0.5,)}


def test_triton_runs_one_triton_with_both_sides_on_its_own_grid() -> None:
    assert runtime_values(parse("--runtime", "triton")) == {
        "pods": (1,),
        "modes": SIDES,
        "grid": DEFAULT_TRITON_GRID,
    }
    values = runtime_values(parse("--runtime", "triton", "--fractions", "0.9,0.8"))
    assert values["grid"] == (0.8, 0.9)


@pytest.mark.parametrize(
    "argv",
    [["--pods", "1"], ["--modes", "batching"], ["--target", "http://127.0.0.1:1"]],
)
def test_triton_goes_without_pods_modes_or_a_target(argv: list[str]) -> None:
    with pytest.raises(SystemExit, match=argv[0]):
        runtime_values(parse("--runtime", "triton", *argv))


def test_an_unknown_runtime_is_rejected() -> None:
    with pytest.raises(SystemExit) as exc:
        parse("--runtime", "vllm")
    assert exc.value.code == 2
    with pytest.raises(ValueError, match="runtime"):
        GoodputConfig(runtime="vllm")
    with pytest.raises(ValueError, match="target"):
        GoodputConfig(runtime="triton", target="http://127.0.0.1:1", target_limit_rows_s=1.0)


def test_the_repositorys_two_models_simulate_the_same_device() -> None:
    sim, batched = read_models(MODEL_REPOSITORY)
    assert (sim.name, sim.fixed_ms, sim.per_row_ms, sim.max_batch) == (GATEWAY_MODEL, 8, 0.25, 32)
    assert sim.max_queue_delay_us is None  # a comment naming dynamic_batching does not count
    assert (batched.name, batched.max_queue_delay_us) == (BATCHED_MODEL, 1000)
    assert (batched.fixed_ms, batched.per_row_ms, batched.max_batch) == (8, 0.25, 32)


def test_the_batched_model_runs_the_same_model_code() -> None:
    code = MODEL_REPOSITORY / BATCHED_MODEL / "1" / "model.py"
    assert code.is_symlink()
    assert code.resolve() == (MODEL_REPOSITORY / GATEWAY_MODEL / "1" / "model.py").resolve()


def test_models_that_simulate_different_devices_are_refused(tmp_path: Path) -> None:
    for name in (GATEWAY_MODEL, BATCHED_MODEL):
        (tmp_path / name).mkdir()
        text = (MODEL_REPOSITORY / name / "config.pbtxt").read_text()
        if name == BATCHED_MODEL:
            text = text.replace('string_value: "8"', 'string_value: "9"')
        (tmp_path / name / "config.pbtxt").write_text(text)
    with pytest.raises(ValueError, match="different devices"):
        read_models(tmp_path)


def test_a_config_without_a_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="per_row_ms"):
        parse_model_config(
            'name: "m"\nmax_batch_size: 8\n'
            'parameters [{ key: "fixed_ms", value: { string_value: "1" } }]'
        )


def test_a_batcher_without_a_delay_waits_none() -> None:
    text = (MODEL_REPOSITORY / BATCHED_MODEL / "config.pbtxt").read_text()
    text = text.replace("max_queue_delay_microseconds: 1000", "")
    assert parse_model_config(text).max_queue_delay_us == 0


def test_the_bench_repository_links_only_the_two_models(tmp_path: Path) -> None:
    repository = bench_repository(tmp_path)
    assert sorted(p.name for p in repository.iterdir()) == [GATEWAY_MODEL, BATCHED_MODEL]
    for name in (GATEWAY_MODEL, BATCHED_MODEL):
        assert (repository / name).resolve() == (MODEL_REPOSITORY / name).resolve()


def test_a_triton_config_takes_the_true_device_and_runs_every_grid_point() -> None:
    sim, _ = read_models(MODEL_REPOSITORY)
    config = GoodputConfig(runtime="triton", fixed_ms=1.0, per_row_ms=2.0, grid=(0.8, 0.9, 1.0))
    got = triton_config(config, replace(sim, fixed_ms=7.0))
    assert (got.pods, got.modes) == ((1,), SIDES)
    assert (got.fixed_ms, got.per_row_ms, got.max_batch) == (7.0, 0.25, 32)
    assert got.stop_after >= len(got.grid)


def test_sides_are_named_for_reports() -> None:
    assert side_label("gateway") == "gateway → triton"
    assert side_label("gateway", 2) == "2 gw → triton"
    assert side_label("triton", delay_us=1000) == "triton batcher 1000 µs"


TRITON_METRICS = """\
# TYPE nv_inference_count counter
nv_inference_count{{model="sim_batched",version="1"}} {rows}
nv_inference_count{{model="sim",version="1"}} 999
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{{model="sim_batched",version="1"}} {batches}
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{{model="sim_batched",version="1"}} {pending}
"""


def test_tritons_counters_give_the_batches_it_executed() -> None:
    scrape = parse_metrics(TRITON_METRICS.format(rows=640, batches=25, pending=3))
    assert triton_counter(scrape, "nv_inference_count", BATCHED_MODEL) == 640
    assert triton_counter(scrape, "nv_inference_exec_count", BATCHED_MODEL) == 25
    assert triton_counter(scrape, "nv_inference_exec_count", "identity_fp32") is None
    assert triton_pending(scrape, BATCHED_MODEL) == 3
    assert triton_pending(None, BATCHED_MODEL) is None


def test_each_side_probes_what_serves_it() -> None:
    gateway = SweepTarget((), (), {"gateway": "http://127.0.0.1:1/metrics"}, {}, model="sim")
    probe = gateway.probe()
    assert type(probe) is GatewaysProbe and probe.model == "sim"
    batcher = TritonBatcherTarget(
        (), (), {}, {}, model=BATCHED_MODEL, triton_metrics="http://127.0.0.1:1/metrics"
    )
    probe = batcher.probe()
    assert isinstance(probe, TritonProbe) and probe.model == BATCHED_MODEL
    assert probe.metrics == {}  # no gateway to read


def sweeps() -> list[Sweep]:
    fit = GatewayFigures("gateway", 100, 2800, 100, 8.12, 0.2612)
    gw = [step(0.8, 1470, 30.0, 25.0), replace(step(0.9, 1650, 45.0, 28.0), per_gateway=(fit,))]
    tb = [step(0.8, 1460, 48.0, 20.0), step(0.9, 1500, 90.0, 22.0), step(0.85, 1520, 49.0)]
    return [
        Sweep(1, "gateway", 1800.0, steps=gw, goodput=gw[1], label="gateway → triton"),
        Sweep(1, "triton", 1800.0, steps=tb, goodput=tb[2], gateways=0, label="triton batcher"),
    ]


def test_the_rate_table_has_each_side_at_every_offered_rate() -> None:
    rows = rate_rows(sweeps(), SLO_MS, TOL)
    assert [r[0] for r in rows] == ["1,440 (0.800)", "1,530 (0.850)", "1,620 (0.900)"]
    assert rows[1][1:4] == ["-", "-", "-"]  # the gateway did not bisect there
    assert rows[1][4:] == ["1,520", "49.0 ms", "-"]
    assert rows[2][1:] == ["1,650", "45.0 ms", "28.0", "1,500 ✗", "90.0 ms", "22.0"]


def test_a_side_is_its_median_run() -> None:
    runs = sweeps()
    worse = replace(runs[0], run=1, goodput=step(0.8, 1000))
    best = replace(runs[0], run=2, goodput=step(0.9, 1700))
    assert sides([runs[0], worse, best, runs[1]])["gateway → triton"] is runs[0]


def test_the_fitted_cost_is_each_gateways() -> None:
    one = GatewayFigures("gateway", 1, 1, 1, 8.12, 0.2612)
    two = GatewayFigures("gateway1", 1, 1, 1, None, None)
    assert fitted_cost(replace(step(0.9, 1), per_gateway=(one,))) == "8.12 / 0.261"
    assert fitted_cost(replace(step(0.9, 1), per_gateway=(one, two))) == "8.12 / 0.261; - / -"
    assert fitted_cost(step(0.9, 1)) == fitted_cost(None) == "-"


def test_the_summary_shows_goodput_of_the_stricter_limit_and_the_true_cost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim, batched = read_models(MODEL_REPOSITORY)
    runs = sweeps()
    for s in runs:
        s.limit_rows_s = 1840.0
    before = MeasuredLimit(1800.0, 32, 2, "grpc", 160, 0, 36_000)
    limits = [before, replace(before, rows_s=1840.0)]
    print_triton_summary(runs, GoodputConfig(runtime="triton"), limits, sim, batched)
    out = " ".join(capsys.readouterr().out.split())
    assert "1,650 (0.897)" in out and "1,520 (0.826)" in out
    assert "8.12 / 0.261" in out
    assert "F 8 ms, c 0.25 ms/row" in out
    assert "1,800 (p99 36.0 ms, errors 0) and 1,840" in out
