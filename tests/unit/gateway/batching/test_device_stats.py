"""Device time per batch size from a pod's cumulative ModelStatistics."""

from __future__ import annotations

import pytest

from gateway.batching.device_stats import BatchStatsDelta, SizeSample, batch_stats
from protos.statistics import Statistics


def reading(stats: Statistics) -> list[tuple[int, int, int]]:
    return batch_stats(stats.to_proto("sim", "1"))


def test_the_first_reading_is_a_baseline_and_later_ones_are_the_batches_since() -> None:
    stats = Statistics()
    stats.batch_size(4).add(9_000_000, 500_000, 500_000)  # 10 ms in all
    delta = BatchStatsDelta()
    assert delta.update(reading(stats)) == []
    stats.batch_size(4).add(11_000_000)
    stats.batch_size(4).add(13_000_000)
    stats.batch_size(32).add(16_000_000)
    samples = delta.update(reading(stats))
    assert samples == [SizeSample(4, 2, pytest.approx(0.012)), SizeSample(32, 1, 0.016)]
    assert delta.update(reading(stats)) == []  # nothing ran since


def test_a_restarted_pod_starts_a_new_baseline() -> None:
    stats = Statistics()
    for _ in range(3):
        stats.batch_size(8).add(10_000_000)
    delta = BatchStatsDelta()
    delta.update(reading(stats))
    fresh = Statistics()
    fresh.batch_size(8).add(10_000_000)
    assert delta.update(reading(fresh)) == []
    fresh.batch_size(8).add(20_000_000)
    assert delta.update(reading(fresh)) == [SizeSample(8, 1, 0.02)]
