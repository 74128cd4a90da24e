"""What the goodput benchmark reads from its gateway replicas over a step's window.

At the window's start and end it scrapes every replica's ``/metrics`` and reads the CPU seconds
of every process under test (``probes.cpu``). Per replica (``GatewayFigures``): the requests it
received, the rows and batches it sent and why (by the batcher's reason), its fitted batch
cost at the end; together (``batches``): the batch counts of all of them, so the mean batch size
is over every batch sent to the pods.
The figures from two scrapes are a pure function (``window_figures``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from loadtest.benches.goodput_sweep import GatewayFigures
from loadtest.probes.cpu import CpuSource, CpuWindow
from loadtest.probes.metrics import Scrape, fetch_metrics
from loadtest.probes.stack import BatchCounts, wait_idle

__all__ = ["GatewaysProbe", "combined", "combined_sends", "wait_all_idle", "window_figures"]

_TIMEOUT_S = 2.0


def _ms(scrape: Scrape, name: str, model: str) -> float | None:
    seconds = scrape.total(name, model=model)
    return None if seconds is None else seconds * 1000


def window_figures(name: str, before: Scrape, after: Scrape, model: str) -> GatewayFigures:
    """Replica ``name``'s figures for ``model`` between two scrapes of its metrics."""

    def grown(sample: str) -> float:
        now, then = after.total(sample, model=model), before.total(sample, model=model)
        return (now or 0.0) - (then or 0.0)

    sends, sent_before = (
        s.by_label("gateway_batch_sends_total", "reason", model=model) for s in (after, before)
    )

    return GatewayFigures(
        name=name,
        requests=grown("gateway_requests_total"),
        batch_rows=grown("gateway_batch_rows_sum"),
        batches=grown("gateway_batch_rows_count"),
        fitted_fixed_ms=_ms(after, "gateway_batch_cost_fixed_seconds", model),
        fitted_per_row_ms=_ms(after, "gateway_batch_cost_per_row_seconds", model),
        sends=tuple(
            (reason, n - sent_before.get(reason, 0.0))
            for reason, n in sorted(sends.items())
            if n > sent_before.get(reason, 0.0)
        ),
    )


def combined(figures: list[GatewayFigures]) -> BatchCounts:
    """The batch counts of every replica together."""
    return BatchCounts(sum(g.batch_rows for g in figures), sum(g.batches for g in figures))


def combined_sends(figures: list[GatewayFigures]) -> tuple[tuple[str, float], ...]:
    """The batches of every replica together by the reason they were sent, by reason."""
    out: dict[str, float] = {}
    for g in figures:
        for reason, n in g.sends:
            out[reason] = out.get(reason, 0.0) + n
    return tuple(sorted(out.items()))


def wait_all_idle(metrics: Mapping[str, str], model: str, timeout_s: float) -> float:
    """Wait (bounded by ``timeout_s`` in all) until no replica holds an admitted request of
    ``model``; returns the seconds waited."""
    start = time.monotonic()
    for url in metrics.values():
        wait_idle(url, model, max(0.0, timeout_s - (time.monotonic() - start)))
    return time.monotonic() - start


class GatewaysProbe:
    """A ``WindowProbe``: CPU seconds of each process, and each gateway replica's figures.

    ``metrics`` names each replica's metrics URL ({}: none is read). ``batches`` is None (and
    ``sends`` empty) unless every replica could be read at both ends of the window.
    """

    def __init__(
        self, procs: Mapping[str, CpuSource], metrics: Mapping[str, str], model: str = "sim"
    ) -> None:
        self.metrics = dict(metrics)
        self.model = model
        self.per_gateway: list[GatewayFigures] = []
        self.batches: BatchCounts | None = None
        self.sends: tuple[tuple[str, float], ...] = ()
        self._cpu = CpuWindow(procs)
        self._before: dict[str, Scrape | None] = {}

    @property
    def cpu_s(self) -> dict[str, float]:
        """CPU seconds each process used over the window."""
        return self._cpu.seconds

    def start(self) -> None:
        # Scraped before the CPU window opens, so the scrapes' own cost is not counted.
        self._before = {n: fetch_metrics(u, _TIMEOUT_S) for n, u in self.metrics.items()}
        self._cpu.start()

    def stop(self) -> None:
        self._cpu.stop()
        self.per_gateway = []
        for name, url in self.metrics.items():
            before, after = self._before.get(name), fetch_metrics(url, _TIMEOUT_S)
            if before is not None and after is not None:
                self.per_gateway.append(window_figures(name, before, after, self.model))
        read_all = self.metrics and len(self.per_gateway) == len(self.metrics)
        self.batches = combined(self.per_gateway) if read_all else None
        self.sends = combined_sends(self.per_gateway) if read_all else ()
