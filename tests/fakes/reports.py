"""Stand-ins for the gateway's load signals, shared by the reporter's tests."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from gateway.reporter import ModelSnapshot

__all__ = ["Snapshots", "snap", "until"]


def snap(model: str = "sim", **fields: object) -> ModelSnapshot:
    """A snapshot of an idle model on one ready pod; ``fields`` override."""
    zero: dict[str, object] = {f.name: 0 for f in dataclasses.fields(ModelSnapshot)}
    ready = {
        "fixed_s": None,
        "per_row_s": None,
        "slots_per_pod": 2,
        "devices_per_pod": 1,
        "max_batch_size": 32,
    }
    base = {**zero, **ready, "model": model, "ready_endpoints": 1}
    return ModelSnapshot(**{**base, **fields})  # type: ignore[arg-type]


class Snapshots:
    """A gateway stand-in whose load the test sets; counts how often it was read."""

    def __init__(self) -> None:
        self.current = snap(inflight_rows=7, queued_requests=1, queued_rows=2)
        self.calls = 0

    def __call__(self, now: float) -> list[ModelSnapshot]:
        self.calls += 1
        return [self.current]


async def until(predicate: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Wait for a condition (a bound on a hang, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)
