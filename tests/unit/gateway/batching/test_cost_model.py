"""The batch cost fit stays true when batch sizes barely vary, and follows a pod that changes.

The model reads no clock: its window moves with each batch and its anchor only with batches of
varied sizes, so a week is its batches. A week at one 32-row batch per 36 ms is 16.8 M of them;
the tests feed ``WEEK`` (200 windows' turnover): once the window holds one size, the anchor no
longer moves, so more batches of that size change nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from gateway.batching.cost_model import BatchCost, CostModel

TRUE = BatchCost(fixed_s=0.008, per_row_s=0.00025)  # the pod: 8 ms + 0.25 ms/row
WEEK = 20_000
Sizes = Callable[[random.Random], int]


def spread(rng: random.Random) -> int:
    return rng.randint(1, 32)


def full(rng: random.Random) -> int:
    return 32


def mostly_full(rng: random.Random) -> int:
    """Overload: full batches, and one in a hundred cut short by a moment's lull."""
    return 32 if rng.random() >= 0.01 else rng.randint(24, 31)


def feed(
    model: CostModel,
    rng: random.Random,
    batches: int,
    sizes: Sizes,
    pod: BatchCost = TRUE,
    noise_s: float = 0.0005,
) -> None:
    for _ in range(batches):
        rows = sizes(rng)
        model.observe(rows, max(0.0, pod.seconds(rows) + rng.gauss(0.0, noise_s)))


def close(fit: BatchCost | None, pod: BatchCost, rel: float) -> bool:
    assert fit is not None
    return fit.fixed_s == pytest.approx(pod.fixed_s, rel=rel) and fit.per_row_s == pytest.approx(
        pod.per_row_s, rel=rel
    )


@pytest.mark.parametrize("sizes", [full, mostly_full], ids=["full", "mostly-full"])
def test_a_week_of_full_batches_keeps_f_and_c_from_an_earlier_spread(sizes: Sizes) -> None:
    rng = random.Random(1)
    model = CostModel()
    feed(model, rng, 1000, spread)
    assert model.slope_identified and close(model.fit(), TRUE, 0.05)
    for _ in range(WEEK // 500):  # checked all along, not only at the end
        feed(model, rng, 500, sizes)
        assert close(model.fit(), TRUE, 0.10), model.fit()


def test_noisy_times_of_a_few_short_batches_do_not_drag_the_slope() -> None:
    # The trace: mostly full batches timed with 2 ms of noise (an eighth of a batch).
    # A decayed least squares over them alone (the fit before) put c anywhere from 0 to 2x.
    rng = random.Random(2)
    model = CostModel()
    feed(model, rng, 2000, spread, noise_s=0.002)
    for _ in range(WEEK // 100):
        feed(model, rng, 100, mostly_full, noise_s=0.002)
        assert close(model.fit(), TRUE, 0.15), model.fit()


def test_with_one_size_only_its_time_is_right_and_f_and_c_are_not_negative() -> None:
    rng = random.Random(3)
    model = CostModel()
    feed(model, rng, 500, full)
    fit = model.fit()
    assert fit is not None and not model.slope_identified
    assert fit.seconds(32) == pytest.approx(TRUE.seconds(32), rel=0.02)
    assert fit.fixed_s >= 0 and fit.per_row_s == 0.0  # unidentified: c is the prior's, 0


def test_with_one_size_only_a_prior_c_is_kept_and_f_takes_the_rest() -> None:
    model = CostModel(prior_per_row_s=TRUE.per_row_s, min_batches=1)
    model.observe(32, TRUE.seconds(32))
    assert model.fit() == BatchCost(TRUE.fixed_s, TRUE.per_row_s)
    too_steep = CostModel(prior_per_row_s=0.001, min_batches=1)  # 32 ms of rows in 16 ms
    too_steep.observe(32, 0.016)
    assert too_steep.fit() == BatchCost(0.0, 0.0005)  # through the origin: F never negative


def test_two_sizes_identify_the_line_through_them() -> None:
    model = CostModel(min_batches=2)
    model.observe(4, TRUE.seconds(4))
    assert not model.slope_identified
    model.observe(28, TRUE.seconds(28))
    assert model.slope_identified and close(model.fit(), TRUE, 1e-9)


@pytest.mark.parametrize("after", [spread, full], ids=["spread-after", "full-after"])
def test_a_pod_twice_as_slow_at_all_sizes_is_followed_within_a_few_windows(after: Sizes) -> None:
    rng = random.Random(4)
    model = CostModel()
    feed(model, rng, 2000, spread)
    feed(model, rng, 2000, full)
    slower = BatchCost(2 * TRUE.fixed_s, 2 * TRUE.per_row_s)
    feed(model, rng, 300, after, slower)  # six windows
    assert close(model.fit(), slower, 0.06), model.fit()


def test_a_new_shape_seen_with_a_spread_of_sizes_replaces_the_old_one() -> None:
    rng = random.Random(5)
    model = CostModel()
    feed(model, rng, 5000, spread)
    heavier = BatchCost(TRUE.fixed_s, 2 * TRUE.per_row_s)  # c doubles, F stays
    feed(model, rng, 4000, spread, heavier)
    assert close(model.fit(), heavier, 0.05), model.fit()


def test_a_free_pod_fits_zero_and_a_negative_slope_is_cut_to_zero() -> None:
    free = CostModel(min_batches=1)
    for rows in (4, 8, 4, 8):
        free.observe(rows, 0.0)
    assert free.fit() == BatchCost(0.0, 0.0)
    odd = CostModel(min_batches=1)  # bigger batches that took less time
    for rows, seconds in ((4, 0.012), (8, 0.010), (16, 0.009)):
        odd.observe(rows, seconds)
    fit = odd.fit()
    assert fit is not None and fit.per_row_s == 0.0 and fit.fixed_s > 0


def test_the_fit_is_kept_until_the_next_batch() -> None:
    model = CostModel(min_batches=1)
    model.observe(8, 0.010)
    first = model.fit()
    assert model.fit() is first
    model.observe(16, 0.012)
    assert model.fit() is not first
