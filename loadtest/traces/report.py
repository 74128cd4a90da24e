"""A trace run's report: the per-second series, the summary by phase, the table and the JSON.

The series joins, second by second, what the generators measured (by scheduled second:
``per_second``) with what the stack showed (by wall-clock second: ``traces.monitor``). A phase
(``traces.Phase``) holds the seconds whose middle falls in it; the summary gives, per phase and
overall: the offered load (the trace's integral), served and goodput rates, latency percentiles,
errors by kind, CPU-µs per request of each process, and whether the generator kept its
schedule. Goodput is the rate of requests answered within the SLO.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from loadtest.results.histogram import LatencySummary
from loadtest.results.open_loop_result import OpenLoopResult, invalid_reason
from loadtest.results.per_second import SecondFigures, combine_seconds
from loadtest.results.report import fmt_rate, fmt_us, print_table
from loadtest.traces.monitor import ServerSecond
from loadtest.traces.shapes import Trace

__all__ = ["PhaseFigures", "fmt_errors", "phase_of", "print_summary", "series", "summarize"]

OVERALL = "overall"


def _width(trace: Trace, second: int) -> float:
    return max(0.0, min(1.0, trace.duration_s - second))


def phase_of(trace: Trace, second: int) -> str | None:
    """The phase holding the middle of ``second``, if any."""
    middle = second + _width(trace, second) / 2
    return next((p.name for p in trace.phases if p.start_s <= middle < p.end_s), None)


def gateways_of(server: ServerSecond) -> list[dict[str, Any]]:
    """Each gateway replica's figures of a second (none when none was scraped)."""
    return [m for m in server.metrics.values() if "queue_requests" in m]


def fmt_errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "0"


@dataclass(frozen=True, slots=True)
class PhaseFigures:
    """A phase's (or the whole run's) figures; rates are per second of the phase."""

    name: str
    seconds: float
    offered: float  # requests the trace offered (its integral)
    due: int
    ok: int
    goodput: int  # answered within the SLO
    errors: dict[str, int]
    latency: LatencySummary
    lag: LatencySummary
    cpu_s: dict[str, float]
    batch_rows: float
    batches: float
    max_queue: float | None
    invalid: str

    def rate(self, count: float) -> float:
        return count / self.seconds if self.seconds > 0 else 0.0

    def cpu_us_per_req(self, process: str) -> float | None:
        cpu = self.cpu_s.get(process)
        return None if cpu is None or not self.ok else cpu * 1e6 / self.ok

    @property
    def mean_batch_rows(self) -> float | None:
        return self.batch_rows / self.batches if self.batches else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.name,
            "seconds": self.seconds,
            "offered_rps": round(self.rate(self.offered), 1),
            "due_rps": round(self.rate(self.due), 1),
            "served_rps": round(self.rate(self.ok), 1),
            "goodput_rps": round(self.rate(self.goodput), 1),
            "due": self.due,
            "ok": self.ok,
            "ok_within_slo": self.goodput,
            "errors": self.errors,
            "latency_us": self.latency.as_dict(),
            "lag_us": self.lag.as_dict(),
            "cpu_us_per_req": {
                name: None if (v := self.cpu_us_per_req(name)) is None else round(v, 1)
                for name in self.cpu_s
            },
            "mean_batch_rows": self.mean_batch_rows,
            "max_queue_requests": self.max_queue,
            "valid": not self.invalid,
            "invalid_reason": self.invalid,
        }


def _phase(
    name: str,
    trace: Trace,
    seconds: Sequence[SecondFigures],
    servers: dict[int, ServerSecond],
    slo_us: float,
    lag_limit_us: int,
    end_lag_us: int,
) -> PhaseFigures:
    merged = combine_seconds(seconds, 0)
    cpu: Counter[str] = Counter()
    rows = batches = 0.0
    queues: list[float] = []
    for s in seconds:
        server = servers.get(s.second)
        if server is None:
            continue
        cpu.update({k: v for k, v in server.cpu_s.items() if v is not None})
        gateways = gateways_of(server)  # every replica's batches and queue, together
        rows += sum(g.get("batch_rows") or 0.0 for g in gateways)
        batches += sum(g.get("batches") or 0.0 for g in gateways)
        queued = [g["queue_requests"] for g in gateways if g.get("queue_requests") is not None]
        if queued:
            queues.append(sum(queued))
    lag = merged.lag()
    return PhaseFigures(
        name=name,
        seconds=sum(_width(trace, s.second) for s in seconds),
        offered=sum(trace.expected(s.second, s.second + _width(trace, s.second)) for s in seconds),
        due=merged.due,
        ok=merged.ok,
        goodput=merged.ok_within(slo_us),
        errors=merged.errors,
        latency=merged.summary(),
        lag=lag,
        cpu_s=dict(cpu),
        batch_rows=rows,
        batches=batches,
        max_queue=max(queues, default=None),
        invalid=invalid_reason(lag, end_lag_us, lag_limit_us),
    )


def summarize(
    trace: Trace, result: OpenLoopResult, servers: Sequence[ServerSecond], slo_ms: float
) -> list[PhaseFigures]:
    """The whole run first, then each phase in the order it first comes.

    A phase's validity judges its own lag; only the whole run's also judges the lag at the end.
    """
    by_second = {s.second: s for s in servers}
    slo_us = slo_ms * 1000
    limit = result.lag_limit_us
    out = [_phase(OVERALL, trace, result.seconds, by_second, slo_us, limit, result.end_lag_us)]
    groups: dict[str, list[SecondFigures]] = {}
    for s in result.seconds:
        name = phase_of(trace, s.second)
        if name is not None:
            groups.setdefault(name, []).append(s)
    for name, seconds in groups.items():
        out.append(_phase(name, trace, seconds, by_second, slo_us, limit, 0))
    return out


def series(
    trace: Trace, result: OpenLoopResult, servers: Sequence[ServerSecond], slo_ms: float
) -> list[dict[str, Any]]:
    """One JSON record a second: the load (by scheduled second) beside the stack's figures."""
    by_second = {s.second: s for s in servers}
    out = []
    for s in result.seconds:
        width = _width(trace, s.second)
        rate = 1.0 / width if width > 0 else 0.0
        server = by_second.get(s.second)
        latency = s.summary()
        out.append(
            {
                "second": s.second,
                "phase": phase_of(trace, s.second),
                "width_s": width,
                "offered_rps": round(trace.expected(s.second, s.second + width) * rate, 2),
                "due_rps": round(s.due * rate, 2),
                "served_rps": round(s.ok * rate, 2),
                "goodput_rps": round(s.ok_within(slo_ms * 1000) * rate, 2),
                "due": s.due,
                "sent": s.sent,
                "ok": s.ok,
                "errors": s.errors,
                "latency_us": {
                    "p50": latency.p50_us,
                    "p90": latency.p90_us,
                    "p99": latency.p99_us,
                    "p999": latency.p999_us,
                    "max": latency.max_us,
                },
                "lag_p99_us": s.lag().p99_us,
                "cpu_s": None if server is None else server.cpu_s,
                "metrics": None if server is None else server.metrics,
                "sampled_at_s": None if server is None else server.at_s,
                "sampled_over_s": None if server is None else server.dt_s,
            }
        )
    return out


def print_summary(
    title: str,
    phases: Sequence[PhaseFigures],
    result: OpenLoopResult,
    notes: Sequence[str] = (),
    console: Console | None = None,
) -> None:
    """The summary table: one row per phase, the whole run first; why a phase is not valid
    goes below it."""
    processes = list(phases[0].cpu_s) if phases else []
    columns = ["phase", "offered", "served", "goodput", "p50", "p90", "p99", "p99.9", "max"]
    columns += ["errors", "batch", *(f"{p} µs/req" for p in processes), "gen µs/req", "valid"]
    rows = []
    for ph in phases:
        gen = result.cpu_us_per_request if ph.name == OVERALL else None
        batch = ph.mean_batch_rows
        rows.append(
            [
                ph.name,
                fmt_rate(ph.rate(ph.offered)),
                fmt_rate(ph.rate(ph.ok)),
                fmt_rate(ph.rate(ph.goodput)),
                fmt_us(ph.latency.p50_us),
                fmt_us(ph.latency.p90_us),
                fmt_us(ph.latency.p99_us),
                fmt_us(ph.latency.p999_us),
                fmt_us(ph.latency.max_us),
                fmt_errors(ph.errors),
                "-" if batch is None else f"{batch:.1f}",
                *(fmt_rate(ph.cpu_us_per_req(p)) for p in processes),
                fmt_rate(gen),
                "yes" if not ph.invalid else "NO",
            ]
        )
    reasons = [f"{ph.name} is not valid: {ph.invalid}" for ph in phases if ph.invalid]
    print_table(title, columns, rows, [*reasons, *notes], console)
