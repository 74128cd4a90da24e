"""The ideal batcher's simulation: its figures follow the device's cost and the load."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.benches.ideal_batcher import ideal_batcher, simulate
from loadtest.cli import main


def test_each_batch_takes_every_row_waiting_when_the_device_frees_up_to_the_max() -> None:
    # F 10 ms, c 1 ms/row, max 2. Row 0 alone at 0: runs 0-11. Rows 1-3 (at 1, 2, 11) wait:
    # at 11 the two oldest go (11-23), row 3 at 23 alone (23-34); row 4 at 40 finds it idle.
    arrivals = np.array([0.0, 1.0, 2.0, 11.0, 40.0])
    latency, firsts = simulate(arrivals, 10.0, 1.0, 2)
    assert firsts.tolist() == [0, 1, 3, 4]
    assert latency.tolist() == [11.0, 22.0, 21.0, 23.0, 11.0]


def test_a_light_load_is_served_a_row_at_a_time_in_about_the_devices_time() -> None:
    figures = ideal_batcher(5.0, 8.0, 0.25, 32, seconds=200.0)
    assert figures.mean_batch == pytest.approx(1.0, abs=0.1)
    assert figures.p50_ms == pytest.approx(8.25, abs=0.1)  # F + c, no waiting


def test_batches_grow_with_the_load_and_so_does_the_tail() -> None:
    limit = 32 * 1e3 / (8.0 + 0.25 * 32)
    low, high = (ideal_batcher(f * limit, 8.0, 0.25, 32, seconds=60.0) for f in (0.5, 0.95))
    assert low.mean_batch < high.mean_batch <= 32
    assert low.p99_ms < high.p99_ms
    assert high.p50_ms <= high.p99_ms


def test_a_batch_never_exceeds_the_max_even_past_the_limit() -> None:
    assert ideal_batcher(3000.0, 8.0, 0.25, 32, seconds=20.0).mean_batch == pytest.approx(
        32, abs=0.1
    )


def test_the_same_seed_gives_the_same_figures() -> None:
    assert ideal_batcher(1500.0, 8.0, 0.25, 32, seconds=20.0, seed=4) == ideal_batcher(
        1500.0, 8.0, 0.25, 32, seconds=20.0, seed=4
    )


@pytest.mark.parametrize("args", [(0.0, 8.0, 0.25, 32), (100.0, 8.0, 0.25, 0)])
def test_bad_figures_are_refused(args: tuple[float, float, float, int]) -> None:
    with pytest.raises(ValueError):
        ideal_batcher(*args)


def test_the_command_prints_a_row_per_fraction(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ideal-batcher", "--fractions", "0.5,0.9", "--seconds", "5", "--seeds", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # fractions of the default limit, full batches back to back: 32 / (8 + 0.25 * 32) ms
    assert "0.500" in out and "1,000" in out and "0.900" in out and "1,800" in out
