"""What a trace run watches once a second while the load runs, and the live display it feeds.

``Monitor`` is the run's ``WindowProbe``: when the measurement window opens it starts a thread
that, at the end of every second of the window, reads the CPU seconds of each process under test
(``probes.cpu``), scrapes every metrics URL (``scrape``), and drains the generator
processes' ``Progress`` queue, then hands the second's figures to the ``LiveView``. The
generator's hot path does nothing for it beyond putting one small message a second on a queue.
Its figures are by wall-clock second; the report's latencies are by scheduled second
(``per_second``); second k of both covers ``[opens + k, opens + k + 1)``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from loadtest.probes.cpu import CpuWindow, PidCpu
from loadtest.probes.metrics import Scrape, fetch_metrics, figures
from loadtest.results.per_second import Progress

__all__ = ["LiveSecond", "LiveView", "Monitor", "ServerSecond"]

_TICK_AFTER_S = 0.1  # tick a little after each second, once the workers' progress is in


@dataclass(slots=True)
class ServerSecond:
    """One wall-clock second of the window: CPU seconds per process, figures per metrics URL.

    ``at_s``: when it was sampled (s after the window opened), a little after the second's end;
    gauges are as they were then, CPU and counters cover the ``dt_s`` seconds before.
    """

    second: int
    cpu_s: dict[str, float | None]
    metrics: dict[str, dict[str, Any]]
    at_s: float = 0.0
    dt_s: float = 1.0


@dataclass(slots=True)
class LiveSecond:
    """The generators' figures for one wall-clock second, added over processes."""

    second: int
    due: int = 0
    sent: int = 0
    ok: int = 0
    errors: int = 0
    latencies_us: list[np.ndarray] = field(default_factory=list)

    def add(self, p: Progress) -> None:
        self.due += p.due
        self.sent += p.sent
        self.ok += p.ok
        self.errors += p.errors
        if len(p.latencies_us):
            self.latencies_us.append(p.latencies_us)

    @property
    def p99_us(self) -> float | None:
        if not self.latencies_us:
            return None
        return float(np.percentile(np.concatenate(self.latencies_us), 99))


class LiveView:
    """A rich Live panel in a terminal; elsewhere a plain line every ``every_s`` seconds."""

    def __init__(self, console: Console, title: str, total_s: float, every_s: int = 5) -> None:
        self.console = console
        self.title = title
        self.total_s = total_s
        self.every_s = every_s
        self.errors = 0
        self._live: Live | None = None

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self._live = Live(
                Text(f"{self.title}: starting ..."), console=self.console, refresh_per_second=4
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, live: LiveSecond, offered: float, server: ServerSecond) -> None:
        self.errors += live.errors
        gateway = next((m for m in server.metrics.values() if "queue_requests" in m), {})
        cells = {
            "elapsed": f"{live.second + 1}/{self.total_s:g} s",
            "offered": f"{offered:,.0f}/s",
            "achieved": f"{live.ok:,}/s",
            "p99 (last s)": "-" if live.p99_us is None else f"{live.p99_us / 1000:.1f} ms",
            "errors": f"{live.errors} (total {self.errors})",
            "queue": _num(gateway.get("queue_requests")),
            "batch": _num(gateway.get("mean_batch_rows"), 1),
        }
        if self._live is not None:
            table = Table(title=self.title, title_justify="left")
            for name in cells:
                table.add_column(name, justify="right")
            table.add_row(*cells.values())
            bar = ProgressBar(total=self.total_s, completed=live.second + 1, width=60)
            self._live.update(Group(table, bar))
        elif (live.second + 1) % self.every_s == 0 or live.second + 1 >= self.total_s:
            line = "  ".join(f"{k} {v}" for k, v in cells.items())
            self.console.print(line, highlight=False, soft_wrap=True)


def _num(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class Monitor:
    """Per-second CPU, metrics and generator progress over the window (a ``WindowProbe``).

    ``sources``: metrics URL by name; ``pids``: process id by name; ``offered(k)``: the trace's
    requests due in second k (for the display). ``stop`` returns at once (it may be called on
    the generator's event loop); ``finish`` waits for the last second's figures.
    """

    def __init__(
        self,
        *,
        seconds: int,
        sources: dict[str, str],
        pids: dict[str, int],
        model: str = "sim",
        progress: Any = None,
        view: LiveView | None = None,
        offered: Callable[[int], float] = lambda _k: 0.0,
    ) -> None:
        self.seconds = seconds
        self.sources = sources
        self.pids = pids
        self.model = model
        self.progress = progress
        self.view = view
        self.offered = offered
        self.records: list[ServerSecond] = []
        self.live: dict[int, LiveSecond] = {}
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None
        self._scrapes: dict[str, Scrape | None] = {}
        self._cpu = CpuWindow({name: PidCpu(pid) for name, pid in pids.items()})
        self._t0 = 0.0
        self._last = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="trace-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The window closed; the thread ends after its last tick."""

    def finish(self, timeout_s: float = 10.0) -> None:
        """Wait for the last tick (bounded), then take what progress is still queued."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                self._abort.set()
                self._thread.join()
        self._drain()

    def close(self) -> None:
        """Stop ticking now (a failed run)."""
        self._abort.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        self._last = time.monotonic()  # the baseline, off the caller's thread
        self._cpu.lap()
        self._scrapes = {name: fetch_metrics(url) for name, url in self.sources.items()}
        for k in range(self.seconds):
            wait = self._t0 + k + 1 + _TICK_AFTER_S - time.monotonic()
            if wait > 0 and self._abort.wait(wait):
                return
            self._tick(k)

    def _tick(self, k: int) -> None:
        now = time.monotonic()
        dt, self._last = now - self._last, now
        used = self._cpu.lap()
        metrics: dict[str, dict[str, Any]] = {}
        for name, url in self.sources.items():
            scrape = fetch_metrics(url)
            if scrape is not None:
                metrics[name] = figures(self._scrapes.get(name), scrape, dt, self.model)
            self._scrapes[name] = scrape
        record = ServerSecond(k, used, metrics, round(now - self._t0, 3), round(dt, 3))
        self.records.append(record)
        self._drain()
        if self.view is not None:
            self.view.update(self.live.get(k, LiveSecond(k)), self.offered(k), record)

    def _drain(self) -> None:
        if self.progress is None:
            return
        while True:
            try:
                item = self.progress.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return
            if isinstance(item, Progress):
                self.live.setdefault(item.second, LiveSecond(item.second)).add(item)
