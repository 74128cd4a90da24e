"""The reconnect backoff shared by discovery and the load reporter: capped, jittered, reset."""

from __future__ import annotations

import random

import pytest

from gateway.backoff import Backoff


@pytest.mark.parametrize("attempt", [0, 1, 3, 10, 100])
def test_backoff_is_capped_and_jittered(attempt: int) -> None:
    rng = random.Random(attempt)
    delays = [Backoff(base_s=0.2, cap_s=5.0, rng=rng, failures=attempt).next() for _ in range(50)]
    ceiling = min(5.0, 0.2 * 2**attempt)
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    b = Backoff(base_s=0.1, cap_s=1.0, rng=random.Random(5))
    delays = [b.next() for _ in range(8)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(0.5 <= d <= 1.0 for d in delays[4:])
    assert len(set(delays)) == len(delays)
    b.reset()
    assert b.next() <= 0.1
