"""``loadtest autoscale``'s figures from a run's seconds and samples (pure), and its options."""

from __future__ import annotations

import pytest

from loadtest.benches.loop_autoscale import AutoscaleConfig, autoscale_traces
from loadtest.benches.loop_figures import SecondRow, first_rise, loop_figures, time_integral
from loadtest.benches.loop_run import policy_config
from loadtest.benches.loop_sampler import LoopSample, patched_count
from loadtest.cli import build_parser
from loadtest.stack.loop import LoopConfig
from loadtest.traces.shapes import spike, square, step


def _samples() -> list[LoopSample]:
    # 1 pod until 5 s; patched to 3 at 5.5 s; 3 ready at 9 s.
    return [
        LoopSample(0.0, 1, 1, 0),
        LoopSample(5.0, 1, 1, 0),
        LoopSample(5.5, 3, 1, 1),
        LoopSample(9.0, 3, 3, 1),
    ]


def test_first_rise_of_each_trace_shape() -> None:
    assert first_rise(step(10, 100, 30, at_s=10)) == (10, 30)
    assert first_rise(spike(10, 100, 30, at_s=10, width_s=3)) == (10, 13)
    assert first_rise(square(10, 100, 40, period_s=20)) == (10, 20)


def test_time_integral_holds_each_sample_until_the_next() -> None:
    samples = _samples()
    assert time_integral(samples, "replicas", 10.0) == pytest.approx(5.5 * 1 + 4.5 * 3)
    assert time_integral(samples, "ready", 10.0) == pytest.approx(9 * 1 + 1 * 3)


def test_figures_count_violations_and_time_the_reaction() -> None:
    trace = step(10, 100, 10, at_s=5)
    rows = [SecondRow(k, 10, 10, 10, 20.0, 0, 0) for k in range(10)]
    rows[6] = SecondRow(6, 100, 100, 90, 250.0, 10, 10)  # over the SLO
    rows[7] = SecondRow(7, 100, 100, 0, None, 100, 100)  # nothing answered
    figures = loop_figures(trace, rows, _samples(), slo_ms=100.0)
    assert figures["slo_violation_s"] == 2
    assert figures["rejected_429"] == 110
    assert figures["scale_changes"] == 1
    assert figures["max_replicas"] == 3
    reaction = figures["reaction"]
    assert reaction["to_first_patch_s"] == pytest.approx(0.5)
    assert reaction["to_capacity_s"] == pytest.approx(4.0)
    assert reaction["new_replicas"] == 3


def test_a_first_patch_after_the_rise_ended_is_still_timed() -> None:
    # a 1 s spike from 5 s; the patch lands at 6.5 s, its pods are ready at 9 s
    figures = loop_figures(spike(10, 100, 10, at_s=5, width_s=1), [], _samples_late(), 100.0)
    reaction = figures["reaction"]
    assert (reaction["rise_s"], reaction["new_replicas"]) == (5, 3)
    assert reaction["to_first_patch_s"] == pytest.approx(1.5)
    assert reaction["to_capacity_s"] == pytest.approx(4.0)


def _samples_late() -> list[LoopSample]:
    return [LoopSample(0.0, 1, 1, 0), LoopSample(6.5, 3, 1, 1), LoopSample(9.0, 3, 3, 1)]


def test_patched_count_reads_the_autoscalers_counter() -> None:
    text = (
        'autoscaler_scale_changes_total{model="sim",result="patched"} 3.0\n'
        'autoscaler_scale_changes_total{model="sim",result="failed"} 1.0\n'
    )
    assert patched_count(text) == 3.0
    assert patched_count("") == 0.0


def test_the_concurrency_policy_is_knative_style_on_the_same_windows() -> None:
    loop = LoopConfig()
    capacity = policy_config(loop, "capacity")["models"][0]["scaling"]
    concurrency = policy_config(loop, "concurrency")["models"][0]["scaling"]
    assert capacity["mode"] == "capacity"
    assert concurrency["mode"] == "concurrency"
    assert concurrency["target_per_pod"] == loop.max_batch
    for key in ("stable_window_s", "panic_window_s", "max_replicas", "min_replicas"):
        assert concurrency[key] == capacity[key]
    with pytest.raises(ValueError):
        policy_config(loop, "hpa")


def test_options_and_traces() -> None:
    args = build_parser().parse_args(
        ["autoscale", "--traces", "spike,step", "--policies", "concurrency", "--duration", "30"]
    )
    assert (args.traces, args.policies, args.duration, args.slo_ms) == (
        ("spike", "step"),
        ("concurrency",),
        30.0,
        100.0,
    )
    config = AutoscaleConfig(traces=args.traces, duration_s=30.0)
    assert [t.name for t in autoscale_traces(config)] == ["spike", "step"]
    assert max(autoscale_traces(config)[0].rates) == 800.0
    with pytest.raises(ValueError):
        AutoscaleConfig(base_rate=200.0, peak_factor=10.0)  # over one generator's reach
