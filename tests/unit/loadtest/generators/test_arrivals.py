"""The open-loop arrival schedules: Poisson inter-arrival times are exponential (a
Kolmogorov-Smirnov goodness-of-fit test, numpy only), a steady schedule holds exactly the count
its rate asks for, seeded, and split across processes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loadtest.generators.arrivals import ArrivalSpec, offsets, process_spec

# Critical value of the one-sample KS statistic at significance 0.01 for large n: 1.628 / sqrt(n).
KS_COEFFICIENT_1PCT = 1.628


def ks_statistic_exponential(samples: np.ndarray, rate: float) -> float:
    """sup |F_n(x) - F(x)| against the exponential CDF F(x) = 1 - exp(-rate x)."""
    x = np.sort(samples)
    n = len(x)
    cdf = 1.0 - np.exp(-rate * x)
    above = np.arange(1, n + 1) / n - cdf
    below = cdf - np.arange(0, n) / n
    return float(max(above.max(), below.max()))


def ks_critical(n: int) -> float:
    return KS_COEFFICIENT_1PCT / math.sqrt(n)


def gaps(times: np.ndarray) -> np.ndarray:
    return np.diff(np.concatenate([[0.0], times]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poisson_inter_arrival_times_are_exponential(seed: int) -> None:
    rate = 1000.0
    times = offsets(ArrivalSpec(rate, 5.0, "poisson", seed))
    d = ks_statistic_exponential(gaps(times), rate)
    assert d < ks_critical(len(times)), (d, ks_critical(len(times)))


def test_the_ks_check_rejects_evenly_spaced_and_wrong_rate_arrivals() -> None:
    rate = 1000.0
    constant = offsets(ArrivalSpec(rate, 5.0, "constant"))
    assert ks_statistic_exponential(gaps(constant), rate) > ks_critical(len(constant))
    poisson = offsets(ArrivalSpec(rate, 5.0, "poisson", 0))
    assert ks_statistic_exponential(gaps(poisson), rate * 1.2) > ks_critical(len(poisson))


@pytest.mark.parametrize("seed", range(8))
def test_a_steady_poisson_schedule_offers_exactly_rate_times_duration(seed: int) -> None:
    times = offsets(ArrivalSpec(1775.37, 8.0, "poisson", seed))
    assert len(times) == round(1775.37 * 8.0)  # not 14,203 ± 119
    assert np.all(np.diff(times) >= 0)
    assert times[0] >= 0 and times[-1] < 8.0
    assert len(offsets(ArrivalSpec(10.0, 1.0, "poisson", seed, count=3))) == 3


def test_a_shaped_poisson_count_is_near_its_mean_rate_times_duration() -> None:
    times = offsets(ArrivalSpec(2000.0, 3.0, "poisson", 7, lambda t: np.full_like(t, 0.5)))
    expected = 3000
    assert abs(len(times) - expected) < 5 * math.sqrt(expected)
    assert len(offsets(ArrivalSpec(2000.0, 3.0, "poisson", 8, lambda t: t * 0 + 0.5))) != 3000


def test_a_seed_replays_the_same_schedule_and_another_differs() -> None:
    a = offsets(ArrivalSpec(500.0, 2.0, "poisson", 3))
    b = offsets(ArrivalSpec(500.0, 2.0, "poisson", 3))
    c = offsets(ArrivalSpec(500.0, 2.0, "poisson", 4))
    assert np.array_equal(a, b)
    assert not np.array_equal(a[:10], c[:10])


def test_a_long_schedule_needs_more_than_one_draw() -> None:
    times = offsets(ArrivalSpec(10.0, 1000.0, "poisson", 1))  # 10 000 expected
    assert times[-1] > 990.0
    assert ks_statistic_exponential(gaps(times), 10.0) < ks_critical(len(times))


def test_constant_arrivals_are_evenly_spaced() -> None:
    times = offsets(ArrivalSpec(100.0, 1.0, "constant"))
    assert len(times) == 100
    assert np.allclose(np.diff(times), 0.01)


def test_processes_split_the_rate_and_together_stay_poisson() -> None:
    total = ArrivalSpec(1200.0, 4.0, "poisson", 5)
    parts = [process_spec(total, i, 3) for i in range(3)]
    assert all(p.rate == pytest.approx(400.0) for p in parts)
    assert len({p.seed for p in parts}) == 3
    merged = np.sort(np.concatenate([offsets(p) for p in parts]))
    assert len(merged) == 4800  # the shares add up to the count
    d = ks_statistic_exponential(gaps(merged), 1200.0)
    assert d < ks_critical(len(merged))
    odd = [process_spec(ArrivalSpec(10.0, 0.2, "poisson"), i, 3).count for i in range(3)]
    assert sorted(c or 0 for c in odd) == [0, 1, 1] and None not in odd


def test_constant_processes_are_staggered_into_one_even_schedule() -> None:
    total = ArrivalSpec(300.0, 1.0, "constant")
    parts = [offsets(process_spec(total, i, 3), phase_s=i / 300.0) for i in range(3)]
    merged = np.sort(np.concatenate(parts))
    assert len(merged) == 300
    assert np.allclose(np.diff(merged), 1 / 300.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0.0},
        {"rate": -1.0},
        {"duration_s": 0.0},
        {"kind": "bursty"},
        {"count": -1},
        {"count": 3, "shape": np.sqrt},
    ],
)
def test_bad_specs_are_refused(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"rate": 10.0, "duration_s": 1.0, **kwargs}
    with pytest.raises(ValueError):
        ArrivalSpec(**args)  # type: ignore[arg-type]


def test_a_process_index_outside_the_range_is_refused() -> None:
    with pytest.raises(ValueError):
        process_spec(ArrivalSpec(10.0, 1.0), 3, 3)
