"""Routing: power of two choices by least outstanding rows, randomness injected."""

from __future__ import annotations

import random
from dataclasses import dataclass

from gateway.routing.pick import pick_pod


@dataclass
class FakePod:
    name: str
    outstanding_rows: int


def test_no_candidate_gives_none_and_one_gives_it() -> None:
    rng = random.Random(1)
    assert pick_pod([], rng) is None
    only = FakePod("a", 100)
    assert pick_pod([only], rng) is only


def test_of_two_pods_the_less_loaded_always_wins() -> None:
    busy, idle = FakePod("busy", 64), FakePod("idle", 0)
    rng = random.Random(7)
    assert all(pick_pod([busy, idle], rng) is idle for _ in range(50))


def test_the_most_loaded_of_many_is_never_picked_and_ties_spread() -> None:
    pods = [FakePod(str(i), 0) for i in range(4)] + [FakePod("hot", 99)]
    rng = random.Random(3)
    picks = [pick_pod(pods, rng) for _ in range(400)]
    assert all(p is not None and p.name != "hot" for p in picks)
    assert {p.name for p in picks if p is not None} == {"0", "1", "2", "3"}
