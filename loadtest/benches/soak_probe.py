"""What the soak reads from the processes under test while the load runs.

A ``WindowProbe``: from the window's opening to its close, a thread reads every process's RSS
and open fds (``probes.procfs``) and, for the gateway, the established connections on its HTTP
port and its event-loop task count (the ``gateway_event_loop_tasks`` gauge on its
``/metrics``) every ``sample_s``, and tells ``on_interval`` at the end of each interval what it
read last. The readings go into ``soak_trend`` at the end.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadtest.benches.soak_trend import Figures, Reading
from loadtest.probes.metrics import fetch_metrics
from loadtest.probes.procfs import established_on, read_proc

__all__ = ["TASKS_METRIC", "SoakSampler", "Watched", "read_figures"]

TASKS_METRIC = "gateway_event_loop_tasks"
_SCRAPE_TIMEOUT_S = 2.0
_END_MARGIN_S = 0.1  # the last reading, before the window closes


@dataclass(frozen=True, slots=True)
class Watched:
    """A process under test: its name in reports, its pid (None: not read from /proc), the
    metrics URL its task count is scraped from and the port whose established connections are
    counted (None: it has none)."""

    name: str
    pid: int | None
    metrics_url: str | None = None
    http_port: int | None = None  # its HTTP connections are counted (the clients hold them)


def read_figures(watched: Watched) -> Figures:
    """``watched``'s RSS, fds and tasks now; None for each that cannot be read."""
    stats = None if watched.pid is None else read_proc(watched.pid)
    tasks = None
    if watched.metrics_url is not None:
        scrape = fetch_metrics(watched.metrics_url, _SCRAPE_TIMEOUT_S)
        tasks = None if scrape is None else scrape.total(TASKS_METRIC)
    figures: Figures = {
        "rss_bytes": None if stats is None else float(stats.rss_bytes),
        "fds": None if stats is None else float(stats.fds),
        "tasks": tasks,
    }
    if watched.http_port is not None:
        conns = established_on(watched.http_port)
        figures["http_conns"] = None if conns is None else float(conns)
    return figures


class SoakSampler:
    """Reads ``watched`` at the window's opening, every ``sample_s``, and last just before the
    window (``window_s``) closes, while the load still runs: the generator's clients close their
    connections once it is over. ``on_interval(k, reading)`` is called once interval k (of
    ``interval_s``) has ended, the last one with the last reading."""

    def __init__(
        self,
        watched: Sequence[Watched],
        interval_s: float,
        window_s: float,
        sample_s: float = 1.0,
        on_interval: Callable[[int, Reading], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval_s > 0 or not sample_s > 0 or not window_s > 0:
            raise ValueError("the interval, window and sample period must be > 0")
        self.watched = tuple(watched)
        self.interval_s = interval_s
        self.window_s = window_s
        self.intervals = max(1, math.ceil(window_s / interval_s - 1e-9))
        self.sample_s = min(sample_s, interval_s)
        self.readings: list[Reading] = []
        self._on_interval = on_interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened = 0.0
        self._reported = 0  # intervals told to on_interval

    def schedule(self) -> list[float]:
        """When the readings after the first are due, seconds after the window opened."""
        end = self.window_s - min(_END_MARGIN_S, self.sample_s / 2)
        n = math.ceil(end / self.sample_s - 1e-9)
        return [k * self.sample_s for k in range(1, n)] + [end]

    def read(self) -> Reading:
        """Read every process now and keep the reading."""
        t = self._clock() - self._opened
        reading = Reading(t, {w.name: read_figures(w) for w in self.watched})
        self.readings.append(reading)
        return reading

    def start(self) -> None:
        self._opened = self._clock()
        self.read()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        due = self.schedule()
        for i, at in enumerate(due):
            if self._stop.wait(max(0.0, self._opened + at - self._clock())):
                return
            reading = self.read()
            last = i == len(due) - 1
            while self._reported < self.intervals and (
                last or (self._reported + 1) * self.interval_s <= at + 1e-6
            ):
                self._tell(reading)

    def _tell(self, reading: Reading) -> None:
        if self._on_interval is not None:
            self._on_interval(self._reported, reading)
        self._reported += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        while self._reported < self.intervals and self.readings:  # what a late thread missed
            self._tell(self.readings[-1])
