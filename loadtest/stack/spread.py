"""One run's load spread evenly over several targets (the gateway replicas of a stack).

Generator process i sends only to target i mod N, over its own connections, and every process
offers the same share of the arrivals (``generators.arrivals.process_spec``) or runs the same
number of closed-loop workers; so with a process count that is a multiple of N
(``spread_processes``), each target gets exactly 1/N of the load. With one target this is the
plain generator, unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from loadtest.clients.base import ClientSpec
from loadtest.generators.closed_loop import ClosedLoopConfig, closed_loop_job, run_closed_loop
from loadtest.generators.open_loop import (
    OpenLoopConfig,
    ProgressSink,
    open_loop_job,
    run_open_loop,
)
from loadtest.generators.workers import Job, Ready, WindowProbe, run_in_processes
from loadtest.results.load_result import LoadResult
from loadtest.results.open_loop_result import OpenLoopResult

__all__ = [
    "run_closed_loop_spread",
    "run_open_loop_spread",
    "spread_processes",
    "spread_specs",
    "target_of",
]


def spread_specs(spec: ClientSpec, targets: Sequence[str]) -> tuple[ClientSpec, ...]:
    """``spec`` once per target (everything else the same)."""
    if not targets:
        raise ValueError("no target to send to")
    return tuple(dataclasses.replace(spec, target=t) for t in targets)


def spread_processes(processes: int, targets: int) -> int:
    """Generator processes to run when ``processes`` are asked for and the load goes to
    ``targets`` targets: as asked for one target (0 runs it in this process), else the least
    multiple of ``targets`` at or above it, so every target gets the same share."""
    if targets < 1 or processes < 0:
        raise ValueError(f"need targets >= 1 and processes >= 0, got {targets}, {processes}")
    if targets == 1:
        return processes
    return -(-max(processes, 1) // targets) * targets


def target_of(process: int, targets: int) -> int:
    """The target generator process ``process`` sends to: round-robin over the processes."""
    return process % targets


async def _spread_job(
    arg: tuple[Job, tuple[ClientSpec, ...], tuple[Any, ...]], index: int, ready: Ready
) -> LoadResult:
    """A ``workers`` job: ``job`` with process ``index``'s spec (``target_of``) and the rest of
    its argument."""
    job, specs, rest = arg
    return await job((specs[target_of(index, len(specs))], *rest), index, ready)


def _checked(specs: Sequence[ClientSpec], processes: int) -> tuple[ClientSpec, ...]:
    if not specs:
        raise ValueError("no target to send to")
    if processes < 1 or processes % len(specs):
        raise ValueError(
            f"{processes} generator process(es) cannot split the load evenly over "
            f"{len(specs)} targets (see spread_processes)"
        )
    return tuple(specs)


def run_open_loop_spread(
    specs: Sequence[ClientSpec],
    config: OpenLoopConfig,
    probe: WindowProbe | None = None,
    progress: ProgressSink | None = None,
) -> OpenLoopResult:
    """``run_open_loop`` with the load spread over ``specs`` (one each per target);
    ``config.processes`` must be a multiple of their count unless there is one."""
    if len(specs) == 1:
        return run_open_loop(specs[0], config, probe, progress)
    rest: tuple[Any, ...] = (config,) if progress is None else (config, progress)
    results = run_in_processes(
        _spread_job,
        (open_loop_job, _checked(specs, config.processes), rest),
        config.processes,
        config.window,
        probe,
        result_timeout_s=config.drain_s + 30.0,
    )
    return OpenLoopResult.merge_parallel(r for r in results if isinstance(r, OpenLoopResult))


def run_closed_loop_spread(
    specs: Sequence[ClientSpec], config: ClosedLoopConfig, probe: WindowProbe | None = None
) -> LoadResult:
    """``run_closed_loop`` with the load spread over ``specs`` (one each per target);
    ``config.processes`` must be a multiple of their count unless there is one."""
    if len(specs) == 1:
        return run_closed_loop(specs[0], config, probe)
    results = run_in_processes(
        _spread_job,
        (closed_loop_job, _checked(specs, config.processes), (config,)),
        config.processes,
        config.window,
        probe,
        result_timeout_s=config.drain_s + max(s.timeout_s for s in specs) + 30.0,
    )
    return LoadResult.combine(results, sequential=False)
