"""A run's load spread over gateway replicas, without servers: how many generator processes,
which target each sends to, and that every target gets the same share."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from loadtest.clients.base import ClientSpec
from loadtest.generators.closed_loop import ClosedLoopConfig
from loadtest.generators.open_loop import OpenLoopConfig
from loadtest.results.load_result import LoadResult
from loadtest.stack import spread
from loadtest.stack.spread import (
    run_closed_loop_spread,
    run_open_loop_spread,
    spread_processes,
    spread_specs,
    target_of,
)


def test_one_target_keeps_the_processes_asked_for_even_none() -> None:
    assert [spread_processes(p, 1) for p in (0, 1, 3)] == [0, 1, 3]


def test_several_targets_round_the_processes_up_to_a_multiple() -> None:
    assert [spread_processes(p, 2) for p in (0, 1, 2, 3)] == [2, 2, 2, 4]
    assert [spread_processes(p, 3) for p in (1, 4, 6)] == [3, 6, 6]


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        spread_processes(1, 0)
    with pytest.raises(ValueError):
        spread_processes(-1, 2)
    with pytest.raises(ValueError):
        spread_specs(ClientSpec("grpc", "a:1"), [])


@pytest.mark.parametrize(("asked", "targets"), [(1, 2), (3, 2), (1, 3), (5, 3), (2, 4)])
def test_every_target_gets_the_same_number_of_generator_processes(asked: int, targets: int) -> None:
    processes = spread_processes(asked, targets)
    per_target = Counter(target_of(i, targets) for i in range(processes))
    assert sorted(per_target) == list(range(targets))
    assert len(set(per_target.values())) == 1  # each process offers rate / processes


def test_each_spec_differs_only_in_its_target() -> None:
    spec = ClientSpec("http-binary", "http://a:1", verify_every=5, timeout_s=2.0)
    specs = spread_specs(spec, ["http://a:1", "http://b:2"])
    assert [s.target for s in specs] == ["http://a:1", "http://b:2"]
    assert {(s.kind, s.verify_every, s.timeout_s) for s in specs} == {("http-binary", 5, 2.0)}


async def test_a_generator_process_runs_the_job_with_its_targets_spec() -> None:
    specs = spread_specs(ClientSpec("grpc", "x:0"), ["g0:1", "g1:1"])
    seen: list[tuple[str, Any, int]] = []

    async def job(arg: tuple[ClientSpec, str], index: int, ready: Any) -> LoadResult:
        seen.append((arg[0].target, arg[1], index))
        return LoadResult()

    async def ready() -> float:
        return 0.0

    for index in range(4):
        await spread._spread_job((job, specs, ("config",)), index, ready)
    assert [target for target, _, _ in seen] == ["g0:1", "g1:1", "g0:1", "g1:1"]
    assert [(rest, index) for _, rest, index in seen] == [("config", i) for i in range(4)]


def test_an_uneven_split_is_refused_before_any_process_starts() -> None:
    specs = spread_specs(ClientSpec("grpc", "x:0"), ["g0:1", "g1:1"])
    with pytest.raises(ValueError, match="evenly"):
        run_open_loop_spread(specs, OpenLoopConfig(rate=10.0, processes=3))
    with pytest.raises(ValueError, match="evenly"):
        run_closed_loop_spread(specs, ClosedLoopConfig(processes=0))


def test_one_target_is_the_plain_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []

    def plain(spec: ClientSpec, config: Any, *rest: object) -> LoadResult:
        calls.append((spec.target, config.processes))
        return LoadResult(ok=7)

    monkeypatch.setattr(spread, "run_open_loop", plain)
    monkeypatch.setattr(spread, "run_closed_loop", plain)
    [spec] = spread_specs(ClientSpec("grpc", "x:0"), ["g0:1"])
    assert run_open_loop_spread([spec], OpenLoopConfig(rate=10.0, processes=0)).ok == 7
    assert run_closed_loop_spread([spec], ClosedLoopConfig(processes=0)).ok == 7
    assert calls == [("g0:1", 0), ("g0:1", 0)]  # in this process: not raised to a multiple
