"""The generator ceiling's reading of a ladder of rates, without a server."""

from __future__ import annotations

import pytest

from loadtest.benches.ceiling import (
    CeilingStep,
    ceiling_of,
    limited_by,
    stop_climbing,
    unsustained_reason,
)


def step(
    rate: float,
    cpu_us: float | None = 100.0,
    *,
    invalid: str = "",
    errors: int = 0,
    answered: float = 1.0,
) -> CeilingStep:
    due = int(rate)
    return CeilingStep(
        rate=rate,
        due=due,
        ok=int(due * answered) - errors,
        errors=errors,
        generator_cpu_us_per_req=cpu_us,
        lag_p99_us=100,
        invalid_reason=invalid,
    )


def test_a_step_is_sustained_when_on_schedule_and_answered() -> None:
    assert unsustained_reason(step(1000), 0.01) == ""
    assert unsustained_reason(step(1000, errors=5), 0.01) == ""  # within 1%


def test_a_lagging_generator_does_not_sustain_the_rate() -> None:
    lagging = step(4000, invalid="generator lag p99 9000 µs > 5000 µs")
    assert "lag" in unsustained_reason(lagging, 0.01)
    assert limited_by(lagging, 0.01) == "generator"


def test_missing_answers_point_to_the_server() -> None:
    unanswered = step(4000, answered=0.9)
    assert "answered" in unsustained_reason(unanswered, 0.01)
    assert limited_by(unanswered, 0.01) == "server"
    assert limited_by(step(4000, errors=100), 0.01) == "server"


def test_the_ceiling_is_the_last_sustained_step_and_its_cpu_estimate() -> None:
    steps = [
        step(500, 200.0),
        step(1000, 125.0),
        step(2000, 100.0, invalid="generator 8000 µs behind schedule at the end of the window"),
    ]
    fig = ceiling_of("grpc", steps, 0.01)
    assert fig.sustained_rps == 1000
    assert fig.cpu_us_per_req == 125.0
    assert fig.estimate_rps == pytest.approx(8000.0)  # 1e6 / 125 µs: one whole core
    assert fig.limited_by == "generator"
    assert "behind schedule" in fig.stopped


def test_a_noisy_failure_below_a_sustained_rate_does_not_hide_it() -> None:
    steps = [
        step(500, invalid="generator lag p99 6 ms"),
        step(1000, 90.0),
        step(2000, answered=0.5),
    ]
    fig = ceiling_of("http-binary", steps, 0.01)
    assert fig.sustained_rps == 1000 and fig.cpu_us_per_req == 90.0
    assert fig.limited_by == "server"  # the first failure above the best


def test_the_climb_stops_after_failed_rates_in_a_row() -> None:
    fail = step(2000, answered=0.5)
    assert not stop_climbing([step(500), fail], 0.01, 2)
    assert not stop_climbing([fail, step(1000)], 0.01, 2)
    assert stop_climbing([step(500), fail, fail], 0.01, 2)


def test_a_ladder_sustained_to_the_top_says_so() -> None:
    fig = ceiling_of("http-json", [step(500, 80.0), step(1000, 50.0)], 0.01)
    assert (fig.sustained_rps, fig.estimate_rps) == (1000, pytest.approx(20000.0))
    assert (fig.stopped, fig.limited_by) == ("top rate", "none")


def test_no_sustained_step_gives_no_ceiling() -> None:
    fig = ceiling_of("grpc", [step(500, invalid="generator lag p99 1 s")], 0.01)
    assert fig.best is None and fig.sustained_rps is None and fig.estimate_rps is None
    doc = fig.as_dict()
    assert doc["estimated_ceiling_rps"] is None and len(doc["steps"]) == 1
