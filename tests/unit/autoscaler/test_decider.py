"""The decider as a specification: scenarios on a moving fake clock, one behaviour each.

Each scenario drives ``decide`` tick by tick with a load function of time; the Deployment
follows the decision at once (``current`` is the last desired count) unless a scenario says
otherwise. Nothing sleeps: time is the ``now`` argument.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from autoscaler.decider import Decision, Reason, ScalerState, decide
from autoscaler.load import Cost, ModelLoad, Observations
from autoscaler.spec import Mode, ScalingSpec

T0 = 10_000.0
# Concurrency target 10 rows per pod at full utilisation: demand in pods = rows / 10; the
# default windows and rates, no restart hold.
TEN_ROWS = ScalingSpec(target_per_pod=10, target_utilisation=1.0, restart_hold_s=0)
# The scenarios' spec: shorter windows, Knative's scale-up rate.
BASE = replace(
    TEN_ROWS,
    stable_window_s=20,
    panic_window_s=4,
    scale_down_stabilization_s=30,
    rate_period_s=10,
    scale_up_factor=1000,
    scale_to_zero_grace_s=15,
)

LoadFn = Callable[[float], ModelLoad | None]


def rows(n: int, **extra: float) -> LoadFn:
    """A steady load of ``n`` rows in the system (in flight)."""
    return lambda now: ModelLoad(at=now, reporters=1, inflight_rows=n, **extra)  # type: ignore[arg-type]


def nothing(now: float) -> ModelLoad | None:
    return None


@dataclass
class Run:
    """Ticks of one scenario: (time, decision)."""

    ticks: list[tuple[float, Decision]] = field(default_factory=list)
    state: ScalerState = field(default_factory=ScalerState)

    def desired(self) -> list[int]:
        return [d.desired for _, d in self.ticks]

    def between(self, a: float, b: float) -> list[Decision]:
        return [d for t, d in self.ticks if T0 + a <= t < T0 + b]

    @property
    def last(self) -> Decision:
        return self.ticks[-1][1]

    def direction_changes(self) -> int:
        moves = [b - a for a, b in itertools.pairwise(self.desired()) if b != a]
        return sum(1 for x, y in itertools.pairwise(moves) if (x > 0) != (y > 0))


def simulate(
    spec: ScalingSpec,
    phases: list[tuple[float, LoadFn]],
    *,
    replicas: int,
    tick_s: float = 1.0,
    run: Run | None = None,
    start: float = 0.0,
    follow: bool = True,
) -> Run:
    """Drive the decider through ``phases`` (seconds, load) from T0 + ``start``."""
    run = run or Run()
    now = T0 + start
    current = replicas
    for seconds, load in phases:
        end = now + seconds
        while now < end - 1e-9:
            obs = Observations(load(now), current)
            decision, run.state = decide(spec, obs, run.state, now)
            run.ticks.append((now, decision))
            if follow:
                current = decision.desired
            now += tick_s
    return run


# -- windows and panic ----------------------------------------------------------------------


def test_step_up_within_the_panic_threshold_follows_the_stable_window() -> None:
    run = simulate(BASE, [(30, rows(40)), (40, rows(60))], replicas=4)
    after = run.between(30, 70)
    assert all(not d.panicking for d in after)
    assert run.desired() == sorted(run.desired()), "a step up never scales down on the way"
    assert run.last.desired == 6 and run.last.reason in (Reason.STABLE, Reason.WITHIN_TOLERANCE)
    assert after[0].desired == 4, "the stable window averages the step in, it does not jump"


def test_step_up_past_twice_the_pods_panics_and_scales_at_once() -> None:
    run = simulate(BASE, [(30, rows(20)), (10, rows(100))], replicas=2)
    spike = run.between(30, 40)
    # The first spiked tick: the 4 s panic window averages (2+2+2+10)/4 = 4 pods = 2 x 2 pods.
    assert (spike[0].reason, spike[0].desired, spike[0].panicking) == (Reason.PANIC, 4, True)
    assert spike[0].stable_pods is not None and spike[0].stable_pods < 3
    assert run.last.desired == 10 and run.last.panicking


def test_panic_never_scales_down_and_ends_a_stable_window_after_the_last_crossing() -> None:
    run = simulate(BASE, [(20, rows(20)), (6, rows(100)), (80, rows(20))], replicas=2)
    during = [d for t, d in run.ticks if d.panicking]
    peak = max(d.desired for d in during)
    first_peak = next(i for i, d in enumerate(during) if d.desired == peak)
    assert all(d.desired == peak for d in during[first_peak:]), "no scale-down while panicking"
    spike_start = T0 + 20
    calm = [(t, d) for t, d in run.ticks if t > spike_start and not d.panicking]
    assert calm, "panic ends"
    assert calm[0][0] - spike_start > BASE.stable_window_s
    assert all(d.panicking for t, d in run.ticks if spike_start <= t < calm[0][0])
    assert run.last.desired == 2


def test_pods_still_starting_count_against_panic() -> None:
    """Knative divides by ready pods only and over-provisions while pods start; not here."""

    def starting(now: float) -> ModelLoad:
        return ModelLoad(
            at=now, reporters=1, inflight_rows=70, ready_endpoints=1, starting_endpoints=3
        )

    run = simulate(BASE, [(20, starting)], replicas=4, follow=False)
    assert not any(d.panicking for _, d in run.ticks)


def test_pods_terminating_are_no_capacity_on_the_way() -> None:
    """Pods on their way out (a scale-down) never hide demand the ready pods cannot carry."""

    def terminating(now: float) -> ModelLoad:
        return ModelLoad(
            at=now, reporters=1, inflight_rows=30, ready_endpoints=1, terminating_endpoints=3
        )

    run = simulate(BASE, [(1, terminating)], replicas=1, follow=False)
    assert (run.last.panicking, run.last.desired) == (True, 3)


def test_leaving_panic_keeps_the_peak_through_the_stabilization_window() -> None:
    """Knative serving#3153: leaving panic undid the scale-up; the HPA window prevents it."""
    run = simulate(BASE, [(20, rows(20)), (6, rows(100)), (60, rows(20))], replicas=2)
    exit_t = next(t for t, d in run.ticks if t > T0 + 26 and not d.panicking)
    right_after = [d for t, d in run.ticks if exit_t <= t < exit_t + 5]
    assert all(d.desired == 10 for d in right_after)
    assert all(d.reason is Reason.STABILIZING for d in right_after)


# -- scale-down, tolerance, rate limits, min/max --------------------------------------------


def test_step_down_waits_out_the_stabilization_window_then_steps_by_the_rate_limit() -> None:
    run = simulate(BASE, [(40, rows(80)), (120, rows(10))], replicas=8)
    first_drop = next(t for t, d in run.ticks if d.desired < 8) - T0
    assert first_drop >= 40 + BASE.scale_down_stabilization_s
    reasons = {d.reason for d in run.between(40, 160)}
    assert Reason.STABILIZING in reasons and Reason.RATE_LIMIT_DOWN in reasons
    assert run.last.desired == 1
    assert run.desired() == sorted(run.desired(), reverse=True), "no step back up"


def test_changes_within_the_tolerance_are_no_change() -> None:
    run = simulate(BASE, [(60, rows(105))], replicas=10)
    assert {d.desired for _, d in run.ticks} == {10}
    assert run.last.reason is Reason.WITHIN_TOLERANCE


@pytest.mark.parametrize(
    ("spec_change", "start", "demand_rows", "expected", "reason"),
    [
        ({"scale_up_factor": 2.0, "scale_up_pods": 1}, 3, 400, 6, Reason.RATE_LIMIT_UP),
        ({"scale_up_factor": 1.5, "scale_up_pods": 4}, 3, 400, 7, Reason.RATE_LIMIT_UP),
        ({"scale_down_stabilization_s": 0}, 16, 10, 8, Reason.RATE_LIMIT_DOWN),
        ({"max_replicas": 5}, 3, 400, 5, Reason.MAX_REPLICAS),
        ({"min_replicas": 4}, 6, 10, 4, Reason.MIN_REPLICAS),
    ],
)
def test_first_decision_respects_rate_limits_and_bounds(
    spec_change: dict[str, float], start: int, demand_rows: int, expected: int, reason: Reason
) -> None:
    spec = replace(BASE, panic_threshold=100.0, **spec_change)  # type: ignore[arg-type]
    run = simulate(spec, [(1, rows(demand_rows))], replicas=start)
    assert (run.last.desired, run.last.reason) == (expected, reason)


def test_rate_limit_counts_from_the_start_of_the_period() -> None:
    spec = replace(BASE, scale_up_factor=2.0, scale_up_pods=0, panic_threshold=100.0)
    run = simulate(spec, [(25, rows(1000))], replicas=2)
    by_time = [(round(t - T0), d.desired) for t, d in run.ticks]
    assert by_time[0] == (0, 4)
    assert all(n == 4 for t, n in by_time if t < 10), "no second doubling within the period"
    assert dict(by_time)[10] == 8


# -- zero ------------------------------------------------------------------------------------


def test_a_queued_request_scales_from_zero_at_once_even_right_after_a_restart() -> None:
    spec = replace(BASE, min_replicas=0, restart_hold_s=60)

    def queued(now: float) -> ModelLoad:
        return ModelLoad(at=now, reporters=1, queued_requests=1, queued_rows=1)

    run = simulate(spec, [(1, queued)], replicas=0)
    assert (run.last.desired, run.last.reason) == (1, Reason.SCALE_FROM_ZERO)


def test_shed_load_alone_scales_from_zero() -> None:
    spec = replace(BASE, min_replicas=0)
    run = simulate(spec, [(1, rows(0, rejected_requests_per_s=5.0))], replicas=0)
    assert run.last.desired >= 1


def test_scale_to_zero_only_after_the_grace_period_without_demand() -> None:
    spec = replace(BASE, min_replicas=0, scale_down_stabilization_s=0, stable_window_s=10)
    run = simulate(spec, [(20, rows(5)), (60, rows(0))], replicas=1)
    zero_at = next(t for t, d in run.ticks if d.desired == 0) - T0
    assert zero_at >= 20 + spec.scale_to_zero_grace_s - 1
    assert Reason.ZERO_GRACE in {d.reason for d in run.between(20, zero_at)}
    assert run.last.desired == 0
    stays = simulate(spec, [(30, rows(0))], replicas=0, run=run, start=80)
    assert stays.last.desired == 0


def test_min_replicas_above_zero_never_reaches_zero() -> None:
    run = simulate(replace(BASE, scale_down_stabilization_s=0), [(120, rows(0))], replicas=3)
    assert run.last.desired == 1 and run.last.reason is Reason.MIN_REPLICAS


# -- holds -----------------------------------------------------------------------------------


def test_missing_data_holds_the_current_count() -> None:
    run = simulate(BASE, [(30, nothing)], replicas=7)
    assert {(d.desired, d.reason) for _, d in run.ticks} == {(7, Reason.HOLD_NO_DATA)}


def test_stale_reports_hold_and_add_no_sample() -> None:
    run = simulate(BASE, [(30, rows(80))], replicas=8)
    frozen_at = T0 + 29

    def stale(now: float) -> ModelLoad:
        return ModelLoad(at=frozen_at, reporters=1, inflight_rows=0)

    run = simulate(BASE, [(120, stale)], replicas=8, run=run, start=30)
    held = run.between(30 + BASE.stale_after_s + 1, 150)
    assert {(d.desired, d.reason) for d in held} == {(8, Reason.HOLD_STALE)}
    assert run.state.samples[-1][0] <= frozen_at + BASE.stale_after_s


def test_a_vanished_gateway_holds_scale_down() -> None:
    spec = replace(BASE, scale_down_stabilization_s=0)
    run = simulate(spec, [(60, rows(10, missing=1))], replicas=8)
    assert {(d.desired, d.reason) for _, d in run.ticks} == {(8, Reason.HOLD_MISSING_GATEWAY)}


def test_a_restart_holds_scale_down_but_not_scale_up() -> None:
    spec = replace(BASE, restart_hold_s=30, scale_down_stabilization_s=0)
    run = simulate(spec, [(60, rows(10))], replicas=6)
    assert {d.reason for d in run.between(0, 30)} == {Reason.HOLD_RESTART}
    assert {d.desired for d in run.between(0, 30)} == {6}
    assert run.last.desired == 1
    up = simulate(spec, [(3, rows(100))], replicas=2)
    assert up.last.desired == 10


# -- oscillation -----------------------------------------------------------------------------


def square_wave(high: int, low: int, period_s: float) -> LoadFn:
    return lambda now: ModelLoad(
        at=now, reporters=1, inflight_rows=high if (now - T0) % period_s < period_s / 2 else low
    )


def test_a_square_wave_does_not_flap() -> None:
    run = simulate(TEN_ROWS, [(900, square_wave(60, 10, 60))], replicas=3, tick_s=2)
    assert run.direction_changes() == 0
    assert max(run.desired()) <= 6 + 1


def test_the_same_square_wave_flaps_without_the_stabilization_window() -> None:
    """The control for the test above: the window is what keeps it still."""
    spec = replace(TEN_ROWS, stable_window_s=10, panic_window_s=2, scale_down_stabilization_s=0)
    run = simulate(spec, [(900, square_wave(60, 10, 60))], replicas=3, tick_s=2)
    assert run.direction_changes() > 10


# -- capacity mode ---------------------------------------------------------------------------


def capacity_load(rate: float, **extra: object) -> LoadFn:
    def load(now: float) -> ModelLoad:
        base = ModelLoad(
            at=now,
            reporters=1,
            arrival_rows_per_s=rate,
            cost=Cost(0.010, 0.001),
            slots_per_pod=2,  # as a real gateway reports a one-device pod: devices + 1
            devices_per_pod=1,
            max_batch_size=32,
        )
        return replace(base, **extra)  # type: ignore[arg-type]

    return load


CAPACITY = replace(BASE, mode=Mode.CAPACITY, latency_target_s=0.1, target_utilisation=0.8)


def test_capacity_mode_sizes_from_arrival_rate_and_batch_cost() -> None:
    # The 100 ms target allows batches of (50 - 10) / 1 = 40 rows, capped at 32: 32 rows per
    # 42 ms per device, 761.9 rows/s, 609.5 at 80%: 3000 rows/s need 4.92 pods.
    run = simulate(CAPACITY, [(30, capacity_load(3000.0))], replicas=5)
    assert run.last.mode is Mode.CAPACITY
    assert run.last.desired == 5
    assert run.last.stable_pods == pytest.approx(3000 / (32 / 0.042 * 0.8))


POD_LIMIT = 32 / 0.042  # rows/s one device of capacity_load serves flat out at the target


@pytest.mark.parametrize(
    ("slots", "devices", "rate", "pods"),
    [
        (2, 1, 1.1 * POD_LIMIT, 2),  # the slot beyond the device adds no throughput
        (3, 2, 2.2 * POD_LIMIT, 2),  # two devices: twice the throughput
        (1, 1, 1.1 * POD_LIMIT, 2),  # a configured limit of one in-flight batch
        (3, 0, 1.1 * POD_LIMIT, 2),  # an older gateway without devices_per_pod: one device
    ],
)
def test_capacity_mode_sizes_on_devices_never_on_slots(
    slots: int, devices: int, rate: float, pods: int
) -> None:
    load = capacity_load(rate, slots_per_pod=slots, devices_per_pod=devices)
    run = simulate(CAPACITY, [(30, load)], replicas=1)
    assert run.last.stable_pods == pytest.approx(rate / (max(1, devices) * POD_LIMIT * 0.8))
    assert run.last.desired == pods


def test_capacity_mode_counts_backlog_as_demand_and_shed_rows_once() -> None:
    base = simulate(CAPACITY, [(1, capacity_load(1000.0))], replicas=2).last.stable_pods
    shed = simulate(  # the arrival rate already includes the shed rows
        CAPACITY,
        [(1, capacity_load(1000.0, rejected_requests_per_s=500.0, arrived_requests_per_s=1000.0))],
        replicas=2,
    ).last.stable_pods
    backlog = simulate(
        CAPACITY, [(1, capacity_load(1000.0, queued_requests=10, queued_rows=2000))], replicas=2
    ).last.stable_pods
    assert base is not None and shed is not None and backlog is not None
    assert shed == pytest.approx(base)
    # The backlog drains in the headroom above the 80% target: 1400 rows/s at 100%.
    drain = (1000 + 2000 / CAPACITY.backlog_drain_s) / 1000
    assert backlog == pytest.approx(base * drain * CAPACITY.target_utilisation)


def test_capacity_mode_asks_for_no_pod_that_the_headroom_drains_the_backlog_without() -> None:
    """1000 rows/s on 2 pods of 609.5 rows/s at 80% (761.9 flat out): a small backlog drains
    in the 20% headroom, a large one needs a pod more."""
    small = capacity_load(1000.0, queued_requests=10, queued_rows=2000)
    large = capacity_load(1000.0, queued_requests=10, queued_rows=4000)
    assert simulate(CAPACITY, [(1, small)], replicas=2).last.desired == 2
    assert simulate(CAPACITY, [(1, large)], replicas=2).last.desired == 3


def test_capacity_mode_falls_back_to_concurrency_without_a_cost_fit() -> None:
    run = simulate(CAPACITY, [(1, capacity_load(3000.0, cost=None, inflight_rows=30))], replicas=3)
    assert run.last.mode is Mode.CONCURRENCY
    assert run.last.stable_pods == pytest.approx(30 / (10 * 0.8))


def test_a_tighter_latency_target_needs_more_pods() -> None:
    loose = simulate(CAPACITY, [(1, capacity_load(3000.0))], replicas=5).last.stable_pods
    tight_spec = replace(CAPACITY, latency_target_s=0.03)
    tight = simulate(tight_spec, [(1, capacity_load(3000.0))], replicas=5).last.stable_pods
    assert loose is not None and tight is not None and tight > loose * 1.5


def test_spec_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="min_replicas"):
        ScalingSpec(min_replicas=5, max_replicas=2)
    with pytest.raises(ValueError, match="panic_window_s"):
        ScalingSpec(panic_window_s=120, stable_window_s=60)
