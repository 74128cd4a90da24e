"""The simulated pod's pure core: batch cost, device assignment on a fake clock, computations."""

from __future__ import annotations

import random

import numpy as np
import pytest

from loadtest.simpod.core import (
    DevicePool,
    Faults,
    Outcome,
    batch_cost_s,
    capacity_rows_per_s,
    choose_outcome,
    double_fp32,
    identity,
)


def test_batch_cost_is_fixed_plus_per_row() -> None:
    assert batch_cost_s(32, 8.0, 0.25) == pytest.approx(0.016)
    assert batch_cost_s(1, 8.0, 0.25) == pytest.approx(0.00825)
    assert batch_cost_s(0, 8.0, 0.25) == pytest.approx(0.008)
    with pytest.raises(ValueError):
        batch_cost_s(-1, 8.0, 0.25)


def test_capacity_is_the_physical_limit() -> None:
    assert capacity_rows_per_s(32, 8.0, 0.25) == pytest.approx(2000.0)
    assert capacity_rows_per_s(32, 8.0, 0.25, devices=3) == pytest.approx(6000.0)
    assert capacity_rows_per_s(1, 8.0, 0.25) == pytest.approx(1000 / 8.25)


def test_idle_device_starts_at_arrival() -> None:
    pool = DevicePool(1)
    slot = pool.reserve(5.0, 0.016)
    assert (slot.device, slot.start, slot.end) == (0, 5.0, pytest.approx(5.016))
    assert slot.duration == pytest.approx(0.016)


def test_queued_batches_run_back_to_back_fifo() -> None:
    pool = DevicePool(1)
    slots = [pool.reserve(0.0, 0.016) for _ in range(4)]
    assert [s.start for s in slots] == pytest.approx([0.0, 0.016, 0.032, 0.048])
    assert pool.free_at(0) == pytest.approx(0.064)
    assert pool.running(0.01) == 1
    assert pool.running(0.064) == 0


def test_back_to_back_batches_of_32_sustain_2000_rows_per_s_without_drift() -> None:
    """Closed loop on a fake clock: each client resubmits when it wakes, always late.

    Two clients keep the queue non-empty; wake-ups come 0.7 ms after each end (timer
    lateness). Because starts derive from the previous absolute end, the device never idles
    and the rate is exactly the physical limit.
    """
    pool = DevicePool(1)
    cost = batch_cost_s(32, 8.0, 0.25)
    lateness = 0.0007
    wake = [0.0, 0.0]  # when each client next submits
    ends: list[float] = []
    for i in range(2000):
        client = i % 2
        slot = pool.reserve(wake[client], cost)
        ends.append(slot.end)
        wake[client] = slot.end + lateness
    rows = 32 * len(ends)
    assert rows / ends[-1] == pytest.approx(2000.0, rel=1e-9)
    gaps = np.diff(ends)
    assert np.allclose(gaps, cost)


def test_a_single_late_client_loses_only_its_own_lateness() -> None:
    """One client, always 1 ms late: the device idles exactly that long, no more."""
    pool = DevicePool(1)
    cost = batch_cost_s(32, 8.0, 0.25)
    now = 0.0
    for _ in range(100):
        slot = pool.reserve(now, cost)
        assert slot.start == pytest.approx(now)
        now = slot.end + 0.001
    assert pool.free_at(0) == pytest.approx(100 * cost + 99 * 0.001)


def test_devices_run_batches_in_parallel_and_later_arrivals_never_start_first() -> None:
    pool = DevicePool(2)
    a = pool.reserve(0.0, 0.010)
    b = pool.reserve(0.0, 0.020)
    c = pool.reserve(0.001, 0.010)
    d = pool.reserve(0.002, 0.010)
    assert (a.device, a.start) == (0, 0.0)
    assert (b.device, b.start) == (1, 0.0)
    assert (c.device, c.start) == (0, pytest.approx(0.010))  # device 0 frees first
    assert d.start == pytest.approx(0.020)  # both devices free at 0.020: the lower index
    starts = [s.start for s in (a, b, c, d)]
    assert starts == sorted(starts)
    assert pool.running(0.015) == 2
    assert d.device == 0
    assert pool.busy_s(0) == pytest.approx(0.030)
    assert pool.busy_s(1) == pytest.approx(0.020)


def test_at_most_d_batches_run_at_once() -> None:
    pool = DevicePool(3)
    slots = [pool.reserve(0.0, 1.0) for _ in range(10)]
    for t in np.arange(0.0, 4.0, 0.05):
        running = sum(1 for s in slots if s.start <= t < s.end)
        assert running <= 3


def test_release_gives_back_only_the_last_unstarted_reservation() -> None:
    pool = DevicePool(1)
    first = pool.reserve(0.0, 0.010)
    second = pool.reserve(0.0, 0.010)
    third = pool.reserve(0.0, 0.010)
    assert not pool.release(first, 0.005)  # already running
    assert not pool.release(second, 0.005)  # a later reservation follows it
    assert pool.release(third, 0.005)
    assert pool.free_at(0) == pytest.approx(0.020)
    assert pool.busy_s(0) == pytest.approx(0.020)
    again = pool.reserve(0.006, 0.010)
    assert again.start == pytest.approx(0.020)


def test_pool_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        DevicePool(0)
    with pytest.raises(ValueError):
        DevicePool(1).reserve(0.0, -1.0)


def test_outcomes_follow_the_rates() -> None:
    rng = random.Random(7)
    assert {choose_outcome(Faults(), rng) for _ in range(100)} == {Outcome.OK}
    assert {choose_outcome(Faults(error_rate=1.0), rng) for _ in range(50)} == {Outcome.ERROR}
    assert {choose_outcome(Faults(stall_rate=1.0), rng) for _ in range(50)} == {Outcome.STALL}
    assert {choose_outcome(Faults(crash_rate=1.0), rng) for _ in range(50)} == {Outcome.CRASH}
    draws = [choose_outcome(Faults(error_rate=0.25), rng) for _ in range(4000)]
    assert 800 < draws.count(Outcome.ERROR) < 1200


def test_outcomes_are_reproducible_with_a_seed() -> None:
    faults = Faults(error_rate=0.3, stall_rate=0.1, crash_rate=0.05)
    rng_a, rng_b = random.Random(42), random.Random(42)
    a = [choose_outcome(faults, rng_a) for _ in range(200)]
    b = [choose_outcome(faults, rng_b) for _ in range(200)]
    assert a == b
    assert set(a) == set(Outcome)


@pytest.mark.parametrize("field", ["error_rate", "stall_rate", "crash_rate"])
def test_faults_reject_rates_outside_0_1(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Faults(**{field: 1.5})


def test_double_fp32() -> None:
    values = np.arange(-8, 8, dtype="<f4").reshape(1, 16) / 3
    out = np.frombuffer(double_fp32(values.tobytes()), dtype="<f4")
    assert np.array_equal(out, (values * 2).ravel())


def test_identity_returns_the_same_bytes() -> None:
    data = b"\x00\x01\xff abc"
    assert identity(data) == data
