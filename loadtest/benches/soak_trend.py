"""The soak's resource figures, pure: readings of the processes under test, the reading at each
interval's end, and the least-squares trend of each figure with the rule that calls it flat.

A reading holds, per process, its RSS (bytes), open fds, and for the gateway the established
connections on its HTTP port and its event-loop tasks, at ``t_s`` seconds after the measurement
window opened. A figure's trend is the least-squares slope through all its readings (per
minute); its growth is that slope times the window. The rule: a figure is **flat** when its
growth over the window is at most the larger of 10% of its mean and a floor (RSS 2 MiB, fds 8,
tasks 16: what one reading's noise can be, a few in-flight connections or requests more or
fewer). A figure that falls is flat: nothing leaks.

The fds of a process whose HTTP connections were counted are judged less those connections:
the clients hold them (a keep-alive pool grows after a latency spike and its idle connections
stay until the server's keep-alive closes them, 75 s by default), so they are not the server's
to leak; a socket whose peer has gone (CLOSE_WAIT) still counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FLOORS",
    "METRICS",
    "RELATIVE_LIMIT",
    "Reading",
    "Trend",
    "at_interval_ends",
    "judged",
    "slope_per_min",
    "trend",
    "trends",
]

METRICS = ("rss_bytes", "fds", "tasks")
FLOORS: Mapping[str, float] = {"rss_bytes": 2 * 1024**2, "fds": 8, "tasks": 16}
RELATIVE_LIMIT = 0.10

Figures = dict[str, float | None]  # by metric; None: not read


@dataclass(frozen=True, slots=True)
class Reading:
    """The processes' figures ``t_s`` seconds after the window opened, by process name."""

    t_s: float
    procs: dict[str, Figures]

    def as_dict(self) -> dict[str, Any]:
        return {"t_s": round(self.t_s, 3), **self.procs}


@dataclass(frozen=True, slots=True)
class Trend:
    """One figure of one process over the window: its readings' mean, the fitted slope (per
    minute) and growth over ``minutes``, the growth allowed, and whether it is flat."""

    process: str
    metric: str
    readings: int
    first: float
    last: float
    mean: float
    slope_per_min: float
    growth: float
    allowed: float
    minutes: float
    less_http_conns: bool = False  # fds: less the established connections on the HTTP port

    @property
    def flat(self) -> bool:
        return self.growth <= self.allowed

    def as_dict(self) -> dict[str, Any]:
        return {
            "process": self.process,
            "metric": self.metric,
            "readings": self.readings,
            "first": self.first,
            "last": self.last,
            "mean": round(self.mean, 3),
            "slope_per_min": round(self.slope_per_min, 4),
            "growth": round(self.growth, 3),
            "allowed": round(self.allowed, 3),
            "flat": self.flat,
            "less_http_conns": self.less_http_conns,
        }


def slope_per_min(times_s: Sequence[float], values: Sequence[float]) -> float | None:
    """The least-squares slope of ``values`` against ``times_s``, per minute; None with fewer
    than two readings or all at one time."""
    n = len(times_s)
    if n < 2 or n != len(values):
        return None
    mean_t, mean_v = sum(times_s) / n, sum(values) / n
    var = sum((t - mean_t) ** 2 for t in times_s)
    if var <= 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in zip(times_s, values, strict=True))
    return cov / var * 60.0


def judged(figures: Figures, metric: str) -> float | None:
    """The value of ``metric`` that is judged: as read, but fds less the HTTP connections."""
    value = figures.get(metric)
    if metric == "fds" and value is not None:
        return value - (figures.get("http_conns") or 0.0)
    return value


def trend(readings: Sequence[Reading], process: str, metric: str, window_s: float) -> Trend | None:
    """``metric`` of ``process`` over the window (``window_s`` long); None when fewer than two
    readings of it were taken."""
    figures = [(r.t_s, r.procs.get(process, {})) for r in readings]
    less = metric == "fds" and any(f.get("http_conns") is not None for _, f in figures)
    points = [(t, value) for t, f in figures if (value := judged(f, metric)) is not None]
    slope = slope_per_min([t for t, _ in points], [v for _, v in points])
    if slope is None:
        return None
    values = [v for _, v in points]
    mean = sum(values) / len(values)
    minutes = window_s / 60.0
    return Trend(
        process=process,
        metric=metric,
        readings=len(points),
        first=values[0],
        last=values[-1],
        mean=mean,
        slope_per_min=slope,
        growth=slope * minutes,
        allowed=max(RELATIVE_LIMIT * mean, FLOORS[metric]),
        minutes=minutes,
        less_http_conns=less,
    )


def trends(readings: Sequence[Reading], window_s: float) -> list[Trend]:
    """Every figure of every process that was read at least twice, processes in first-seen
    order."""
    names = list(dict.fromkeys(name for r in readings for name in r.procs))
    found = (trend(readings, name, metric, window_s) for name in names for metric in METRICS)
    return [t for t in found if t is not None]


def at_interval_ends(
    readings: Sequence[Reading], interval_s: float, intervals: int, slack_s: float = 0.5
) -> list[Reading | None]:
    """For each interval, the last reading taken by its end (``slack_s`` late allowed; the last
    interval's end is the last reading); None for an interval with no reading of its own."""
    ends: list[Reading | None] = []
    for k in range(intervals):
        start, end = k * interval_s, (k + 1) * interval_s
        last = k == intervals - 1
        mine = [r for r in readings if start < r.t_s and (last or r.t_s <= end + slack_s)]
        ends.append(mine[-1] if mine else None)
    return ends
