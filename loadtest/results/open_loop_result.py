"""What an open-loop run measured, and whether the generator kept its schedule.

An open-loop result is a ``LoadResult`` (latencies from each request's *scheduled* send time,
counts, errors, generator CPU) plus the generator's own figures: how many requests were due in
the window, how late it sent them (lag = actual send time - scheduled), and the lag of the last
one. A run whose generator fell behind measures the generator, not the server: ``invalid_reason``
says so, by a pure rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from loadtest.results.histogram import (
    HIGHEST_US,
    LatencySummary,
    decode,
    encode,
    merge,
    new_histogram,
)
from loadtest.results.load_result import LoadResult

if TYPE_CHECKING:
    from loadtest.results.per_second import SecondFigures

__all__ = [
    "DEFAULT_LAG_LIMIT_US",
    "OVERFLOW",
    "UNFINISHED",
    "OpenLoopResult",
    "histogram_of_ns",
    "invalid_reason",
]

DEFAULT_LAG_LIMIT_US = 5_000
OVERFLOW = "overflow"  # due while the process had max_outstanding requests in flight: not sent
UNFINISHED = "unfinished"  # still unanswered when the drain ended


def histogram_of_ns(values_ns: Sequence[int] | np.ndarray) -> bytes:
    """An encoded HDR histogram (µs) of nanosecond values, built in one vectorised pass."""
    hist = new_histogram()
    if len(values_ns):
        us = np.clip(np.asarray(values_ns, dtype=np.int64) // 1000, 1, HIGHEST_US)
        for value, count in zip(*np.unique(us, return_counts=True), strict=True):
            hist.record_value(int(value), int(count))
    return encode(hist)


def invalid_reason(lag: LatencySummary, end_lag_us: int, limit_us: int) -> str:
    """Why a run cannot be trusted (the generator did not keep its schedule), or "" if it can.

    The generator must send 99% of its requests within ``limit_us`` of their scheduled time, and
    must not end the window behind by more than that (a generator falling steadily behind).
    """
    if lag.count == 0:
        return ""
    if lag.p99_us > limit_us:
        return f"generator lag p99 {lag.p99_us} µs > {limit_us} µs"
    if end_lag_us > limit_us:
        return f"generator {end_lag_us} µs behind schedule at the end of the window"
    return ""


@dataclass(slots=True)
class OpenLoopResult(LoadResult):
    """A ``LoadResult`` plus the generator's schedule figures.

    ``sent``: requests sent in the window (not overflowed). ``due``: requests scheduled in the
    window. ``lag_histogram``: encoded, µs. ``end_lag_us``: the worst, over processes, lag of
    the last request due in the window. ``offered_rps``: the rate asked for. ``seconds``: the
    window cut into seconds by due time (``results.per_second``), when the run asked for it.
    """

    due: int = 0
    lag_histogram: bytes = field(default_factory=lambda: encode(new_histogram()))
    end_lag_us: int = 0
    lag_limit_us: int = DEFAULT_LAG_LIMIT_US
    offered_rps: float = 0.0
    processes: int = 1
    seconds: list[SecondFigures] = field(default_factory=list)

    def lag(self) -> LatencySummary:
        return LatencySummary.of(decode(self.lag_histogram))

    @property
    def invalid(self) -> str:
        """Why the run is not valid; "" when it is."""
        return invalid_reason(self.lag(), self.end_lag_us, self.lag_limit_us)

    @property
    def valid(self) -> bool:
        return not self.invalid

    @property
    def cpu_us_per_request(self) -> float | None:
        """Generator CPU-µs per request due in the window (all processes)."""
        return self.client_cpu_s * 1e6 / self.due if self.due else None

    @classmethod
    def merge_parallel(cls, results: Iterable[OpenLoopResult]) -> OpenLoopResult:
        """Results of processes that ran the same window side by side."""
        from loadtest.results.per_second import merge_seconds  # it imports this module

        items = list(results)
        base = LoadResult.combine(items, sequential=False)
        return cls(
            **{f.name: getattr(base, f.name) for f in fields(LoadResult)},
            due=sum(r.due for r in items),
            lag_histogram=encode(merge(r.lag_histogram for r in items)),
            end_lag_us=max((r.end_lag_us for r in items), default=0),
            lag_limit_us=min((r.lag_limit_us for r in items), default=DEFAULT_LAG_LIMIT_US),
            offered_rps=sum(r.offered_rps for r in items),
            processes=len(items),
            seconds=merge_seconds(r.seconds for r in items if r.seconds),
        )

    def as_dict(self) -> dict[str, Any]:
        cpu = self.cpu_us_per_request
        return {
            **LoadResult.as_dict(self),
            "offered_rps": round(self.offered_rps, 1),
            "due": self.due,
            "processes": self.processes,
            "generator_cpu_us_per_req": None if cpu is None else round(cpu, 1),
            "lag": self.lag().as_dict(),
            "end_lag_us": self.end_lag_us,
            "valid": self.valid,
            "invalid_reason": self.invalid,
        }
