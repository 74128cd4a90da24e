"""Load traces: each shape's rate function and exact integral, trace files (and their errors),
and the non-homogeneous Poisson arrivals a trace thins out of Poisson arrivals at its peak:
counts per window match the integral (chi-square), the time-rescaled gaps are exponential
(Kolmogorov-Smirnov), a seed replays, and K generator processes add up to the whole."""

from __future__ import annotations

import math
import pickle
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from loadtest.generators.arrivals import ArrivalSpec, Delayed, offsets, process_spec
from loadtest.generators.open_loop import OpenLoopConfig
from loadtest.traces.shapes import (
    Trace,
    TraceFileError,
    build_trace,
    diurnal,
    parse_trace_file,
    ramp,
    spike,
    square,
    step,
)

# chi-square(df) critical value at significance 0.001, Wilson-Hilferty approximation
Z_999 = 3.09


def chi2_critical(df: int) -> float:
    return float(df * (1 - 2 / (9 * df) + Z_999 * math.sqrt(2 / (9 * df))) ** 3)


def numeric_integral(trace: Trace, a: float, b: float) -> float:
    t = np.linspace(a, b, 200_001)
    return float(np.trapezoid(trace.rate(t), t))


def arrivals(trace: Trace, seed: int) -> np.ndarray:
    return offsets(ArrivalSpec(trace.peak, trace.duration_s, "poisson", seed, trace.relative))


# -- shapes --------------------------------------------------------------------------------------


def test_a_step_holds_the_base_rate_then_the_peak() -> None:
    trace = step(100.0, 300.0, 10.0, at_s=4.0)
    assert trace.rate(np.array([0.0, 3.99, 4.0, 9.9])).tolist() == [100, 100, 300, 300]
    assert trace.expected(0.0, 10.0) == pytest.approx(400 + 1800)
    assert [p.name for p in trace.phases] == ["before", "after"]


def test_a_step_defaults_to_half_way() -> None:
    assert step(1.0, 2.0, 30.0).times == (0.0, 15.0)


def test_a_ramp_climbs_in_a_straight_line() -> None:
    trace = ramp(100.0, 500.0, 8.0)
    assert trace.rate(np.array([0.0, 2.0, 4.0, 8.0])).tolist() == [100, 200, 300, 500]
    assert trace.expected(0.0, 8.0) == pytest.approx(300 * 8)
    assert len(trace.phases) == 4


def test_a_spike_rises_for_its_width_only() -> None:
    trace = spike(100.0, 1000.0, 20.0, at_s=10.0, width_s=2.0)
    assert trace.rate(np.array([9.9, 10.0, 11.9, 12.0])).tolist() == [100, 1000, 1000, 100]
    assert trace.expected(0.0, 20.0) == pytest.approx(18 * 100 + 2 * 1000)
    assert [p.name for p in trace.phases] == ["before", "spike", "after"]


def test_a_square_wave_alternates_low_and_high_half_periods() -> None:
    trace = square(100.0, 300.0, 20.0, period_s=4.0)
    t = np.array([0.0, 1.9, 2.0, 3.9, 4.0, 6.0, 19.9])
    assert trace.rate(t).tolist() == [100, 100, 300, 300, 100, 300, 300]
    assert trace.expected(0.0, 20.0) == pytest.approx(10 * 100 + 10 * 300)
    assert {p.name for p in trace.phases} == {"low", "high"}


@pytest.mark.parametrize(
    "trace",
    [
        step(50.0, 250.0, 7.0, at_s=2.5),
        ramp(10.0, 90.0, 5.0),
        spike(20.0, 400.0, 9.0, at_s=3.3, width_s=1.2),
        square(30.0, 60.0, 11.0, period_s=3.0),
        diurnal(),
        diurnal("hold"),
    ],
    ids=lambda t: t.name + "-" + t.interpolation,
)
def test_the_expected_count_is_the_integral_of_the_rate(trace: Trace) -> None:
    for a, b in [(0.0, trace.duration_s), (0.3, 1.7), (1.0, 2.0), (2.2, trace.duration_s - 0.4)]:
        assert trace.expected(a, b) == pytest.approx(numeric_integral(trace, a, b), rel=2e-3)
    assert trace.expected(3.0, 3.0) == 0.0


def test_scaling_stretches_time_and_rates() -> None:
    trace = step(100.0, 200.0, 10.0, at_s=5.0).scaled(duration_s=20.0, peak=400.0)
    assert trace.duration_s == 20.0
    assert trace.times == (0.0, 10.0)
    assert trace.rates == (200.0, 400.0)
    assert trace.phases[1].start_s == 10.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: step(1.0, 2.0, 10.0, at_s=10.0),
        lambda: spike(1.0, 2.0, 10.0, at_s=9.0, width_s=2.0),
        lambda: square(1.0, 2.0, 10.0, period_s=0.0),
        lambda: Trace("x", (0.0, 0.0), (1.0, 2.0), 1.0),
        lambda: Trace("x", (0.0,), (0.0,), 1.0),
        lambda: Trace("x", (0.0,), (-1.0,), 1.0),
        lambda: build_trace("sawtooth"),
    ],
)
def test_bad_traces_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_build_trace_gives_the_default_shapes() -> None:
    trace = build_trace("square")
    assert (trace.duration_s, min(trace.rates), trace.peak) == (30.0, 200.0, 600.0)
    assert build_trace("file").name == "diurnal"


# -- trace files ---------------------------------------------------------------------------------


def test_a_trace_file_is_read_with_its_header_comments_and_blank_lines() -> None:
    text = "# a comment\ntimestamp_s,rate\n\n0, 10\n5,30  # inline\n10,20\n"
    trace = parse_trace_file(text, name="t")
    assert (trace.times, trace.rates, trace.duration_s) == ((0, 5, 10), (10, 30, 20), 10.0)
    assert trace.rate(np.array([2.5])).tolist() == [20.0]  # linear between lines
    held = parse_trace_file(text, interpolation="hold")
    assert held.rate(np.array([2.5])).tolist() == [10.0]


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("0,1\n1,2,3\n", ":2", "expected 'timestamp_s,rate'"),
        ("0,1\n1,fast\n", ":2", "not a number"),
        ("0,1\n2,1\n1,1\n", ":3", "not after the previous"),
        ("0,1\n1,-5\n", ":2", ">= 0"),
        ("0,1\n1,nan\n", ":2", "finite"),
        ("0,5\n", "", "at least two"),
        ("0,0\n1,0\n", "", "every rate is 0"),
    ],
)
def test_bad_trace_file_lines_are_named_in_the_error(text: str, where: str, words: str) -> None:
    with pytest.raises(TraceFileError) as info:
        parse_trace_file(text, source="day.csv")
    assert f"day.csv{where}" in str(info.value)
    assert words in str(info.value)


def test_a_missing_trace_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TraceFileError, match=r"missing\.csv"):
        build_trace("file", path=tmp_path / "missing.csv")


def test_a_trace_file_is_named_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "burst.csv"
    path.write_text("0,10\n4,40\n")
    trace = build_trace("file", path=path, duration_s=8.0)
    assert (trace.name, trace.duration_s, trace.times) == ("burst", 8.0, (0.0, 8.0))


def test_the_packaged_diurnal_trace_is_a_day_in_120_seconds() -> None:
    trace = diurnal()
    assert trace.duration_s == 120.0
    assert [p.name for p in trace.phases] == ["night", "morning", "afternoon", "evening"]
    night, evening = trace.mean_rate(0, 30), trace.mean_rate(90, 120)
    assert night < trace.mean_rate() < evening


# -- non-homogeneous Poisson arrivals ------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "trace",
    [
        square(200.0, 600.0, 20.0, period_s=4.0),
        ramp(100.0, 900.0, 20.0),
        diurnal().scaled(duration_s=24.0),
    ],
    ids=lambda t: t.name,
)
def test_counts_per_window_match_the_integral_of_the_rate(trace: Trace, seed: int) -> None:
    times = arrivals(trace, seed)
    edges = np.arange(0.0, trace.duration_s + 1e-9, 0.5)
    counts, _ = np.histogram(times, edges)
    expected = np.array([trace.expected(a, b) for a, b in pairwise(edges)])
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < chi2_critical(len(counts)), (chi2, chi2_critical(len(counts)))
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_the_time_rescaled_gaps_are_exponential() -> None:
    # Time-rescaling theorem: Λ(t_i) of an NHPP with integrated rate Λ is a unit Poisson process.
    trace = spike(100.0, 1500.0, 10.0, at_s=4.0, width_s=2.0)
    times = arrivals(trace, 7)
    rescaled = np.array([trace.expected(0.0, t) for t in times])
    gaps = np.diff(np.concatenate([[0.0], rescaled]))
    x = np.sort(gaps)
    n = len(x)
    cdf = 1.0 - np.exp(-x)
    d = max(float((np.arange(1, n + 1) / n - cdf).max()), float((cdf - np.arange(n) / n).max()))
    assert d < 1.628 / math.sqrt(n)


def test_a_seed_replays_the_trace_arrivals_and_another_differs() -> None:
    trace = step(100.0, 300.0, 5.0)
    assert np.array_equal(arrivals(trace, 3), arrivals(trace, 3))
    assert not np.array_equal(arrivals(trace, 3)[:20], arrivals(trace, 4)[:20])


def test_a_shape_survives_pickling_to_generator_processes() -> None:
    trace = square(1.0, 3.0, 10.0, period_s=2.0)
    spec = ArrivalSpec(trace.peak, 10.0, "poisson", 1, trace.relative)
    assert np.array_equal(offsets(pickle.loads(pickle.dumps(spec))), offsets(spec))


def test_split_over_processes_the_arrivals_add_up_to_the_trace() -> None:
    trace = step(300.0, 900.0, 10.0, at_s=5.0)
    total = ArrivalSpec(trace.peak, trace.duration_s, "poisson", 11, trace.relative)
    parts = [offsets(process_spec(total, i, 3)) for i in range(3)]
    assert not np.array_equal(parts[0][:10], parts[1][:10])
    merged = np.concatenate(parts)
    for a, b in [(0.0, 5.0), (5.0, 10.0)]:
        n = int(np.sum((merged >= a) & (merged < b)))
        expected = trace.expected(a, b)
        assert abs(n - expected) < 4 * math.sqrt(expected), (a, b, n, expected)


def test_the_open_loop_config_runs_the_shape_after_the_warm_up() -> None:
    trace = step(200.0, 800.0, 4.0, at_s=2.0)
    cfg = OpenLoopConfig(
        rate=trace.peak, duration_s=4.0, warmup_s=1.0, processes=2, seed=5, shape=trace.relative
    )
    due_s = np.concatenate([np.array(cfg.schedule(i)) / 1e9 for i in range(2)])
    for (a, b), rate in [((0.0, 1.0), 200.0), ((1.0, 3.0), 200.0), ((3.0, 5.0), 800.0)]:
        n = int(np.sum((due_s >= a) & (due_s < b)))
        expected = rate * (b - a)
        assert abs(n - expected) < 4 * math.sqrt(expected), (a, b, n)
    assert cfg.offered_rate == pytest.approx(500.0, rel=1e-3)


def test_delayed_holds_the_first_value_until_its_start() -> None:
    shape = Delayed(step(1.0, 2.0, 4.0, at_s=1.0).relative, 2.0)
    assert shape(np.array([0.0, 2.5, 3.5])).tolist() == [0.5, 0.5, 1.0]


def test_a_shape_needs_poisson_arrivals() -> None:
    with pytest.raises(ValueError):
        ArrivalSpec(10.0, 1.0, "constant", shape=step(1.0, 2.0, 1.0).relative)


# -- the command line ----------------------------------------------------------------------------


def test_the_trace_command_parses_its_shape_and_target_options() -> None:
    from loadtest.cli import build_parser

    target = ["--target", "http://127.0.0.1:1", "--metrics", "http://127.0.0.1:2/metrics"]
    args = build_parser().parse_args(
        ["trace", "--trace", "square", "--period-s", "4", *target, "--pid", "gateway=12"]
    )
    assert (args.trace, args.period_s, args.slo_ms, args.processes) == ("square", 4.0, 50.0, 1)
    assert args.metrics == ["http://127.0.0.1:2/metrics"]
    assert args.pid == [("gateway", 12)]


@pytest.mark.parametrize("bad", [["--pid", "gateway"], ["--duration", "0"], ["--trace", "saw"]])
def test_the_trace_command_refuses_bad_options(bad: list[str]) -> None:
    from loadtest.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["trace", *bad])


def test_the_trace_command_stops_early_on_a_bad_trace_or_target(tmp_path: Path) -> None:
    from loadtest.cli import main

    assert main(["trace", "--trace", "file", "--trace-file", str(tmp_path / "none.csv")]) == 2
    assert main(["trace", "--metrics", "http://127.0.0.1:2/metrics"]) == 2  # without --target
