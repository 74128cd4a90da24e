"""The reports of every gateway replica, summed per model; time is passed in, never read.

Each gateway replica's newest report per model counts while it is younger than the TTL. A report
that expires without the gateway saying goodbye (``final``) leaves the replica *missing* for
``missing_hold_s``: its demand is unknown, not zero, and the decider holds scale-down while any
replica is missing. A ``final`` report removes the replica at once.

A replica's queue growth is the change of its queued rows between two consecutive reports
(``seq`` one apart) over the newer one's interval; growth counts once the interval before
confirms it (then the smaller of the two), a shrinking queue at once; 0 without such a pair.
One interval's jump is not growth: a generator catching up after a stall, or a burst the pods
drain in the next interval, would otherwise look like a surge.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.load import Cost, LoadGauges, ModelLoad

__all__ = ["GatewayReport", "ReportStore"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayReport(LoadGauges):
    """One LoadReport, decoded: the gauges, and the counts over the report's interval (see
    protos/autoscaler.proto for the fields; they have its names, ``cost`` is ``batch_cost``)."""

    replica_id: str
    model: str
    seq: int = 0
    interval_s: float = 0.0
    arrived_requests: int = 0
    completed_rows: int = 0
    rejected_requests: int = 0
    final: bool = False
    peer_address: str = ""  # where other replicas may send it requests ("": none)

    def per_s(self, count: int) -> float:
        return count / self.interval_s if self.interval_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _Kept:
    at: float  # when it arrived
    report: GatewayReport
    growth: float  # queued rows per second, confirmed over two report intervals
    latest: float  # over the latest interval alone


class ReportStore:
    """Newest report per (model, gateway replica), with its arrival time."""

    def __init__(self, *, ttl_s: float, missing_hold_s: float) -> None:
        self._ttl = ttl_s
        self._hold = missing_hold_s
        self._reports: dict[str, dict[str, _Kept]] = {}

    def record(self, report: GatewayReport, now: float) -> None:
        replicas = self._reports.setdefault(report.model, {})
        if report.final:
            replicas.pop(report.replica_id, None)
            return
        prev = replicas.get(report.replica_id)
        latest = growth = 0.0
        if prev is not None and report.seq == prev.report.seq + 1 and report.interval_s > 0:
            latest = (report.queued_rows - prev.report.queued_rows) / report.interval_s
            growth = min(latest, max(prev.latest, 0.0)) if latest > 0 else latest
        replicas[report.replica_id] = _Kept(now, report, growth, latest)

    def models(self) -> list[str]:
        return sorted(self._reports)

    def _split(self, model: str, now: float) -> tuple[list[_Kept], int]:
        replicas = self._reports.get(model, {})
        live: list[_Kept] = []
        missing = 0
        for replica, kept in list(replicas.items()):
            age = now - kept.at
            if age <= self._ttl:
                live.append(kept)
            elif age <= self._ttl + self._hold:
                missing += 1
            else:
                del replicas[replica]
        return live, missing

    def replicas(self, model: str, now: float) -> list[str]:
        """The gateway replicas that share the model's pods: live ones and those gone silent
        without a goodbye but still held (one may be serving still; counting it keeps the
        others from taking its slots), sorted."""
        self._split(model, now)  # drops the ones past the hold
        return sorted(self._reports.get(model, {}))

    def peers(self, model: str, now: float) -> list[tuple[str, str]]:
        """``replicas`` with the address each reported last: "" where none, and for a replica
        held without a live report (it may be gone: no pod is left to it alone)."""
        kept = self._reports.get(model, {})
        return [
            (r, kept[r].report.peer_address if now - kept[r].at <= self._ttl else "")
            for r in self.replicas(model, now)
        ]

    def staleness(self, model: str, now: float) -> float | None:
        """Seconds since the newest report of ``model``, live or not; None if none is kept."""
        times = [kept.at for kept in self._reports.get(model, {}).values()]
        return now - max(times) if times else None

    def load(self, model: str, now: float) -> ModelLoad | None:
        """The model's load over the live replicas; None when no replica's report is live."""
        live, missing = self._split(model, now)
        if not live:
            return None
        reports = [kept.report for kept in live]
        return ModelLoad(
            at=max(kept.at for kept in live),
            reporters=len(reports),
            missing=missing,
            queued_requests=sum(r.queued_requests for r in reports),
            queued_rows=sum(r.queued_rows for r in reports),
            inflight_rows=sum(r.inflight_rows for r in reports),
            arrival_rows_per_s=sum(r.arrival_rows_per_s for r in reports),
            arrived_requests_per_s=sum(r.per_s(r.arrived_requests) for r in reports),
            completed_rows_per_s=sum(r.per_s(r.completed_rows) for r in reports),
            rejected_requests_per_s=sum(r.per_s(r.rejected_requests) for r in reports),
            queue_growth_rows_per_s=sum(kept.growth for kept in live),
            cost=_mean_cost(reports),
            slots_per_pod=max(r.slots_per_pod for r in reports),
            devices_per_pod=max(r.devices_per_pod for r in reports),
            max_batch_size=max(r.max_batch_size for r in reports),
            ready_endpoints=max(r.ready_endpoints for r in reports),
            starting_endpoints=max(r.starting_endpoints for r in reports),
            terminating_endpoints=max(r.terminating_endpoints for r in reports),
        )


def _mean_cost(reports: list[GatewayReport]) -> Cost | None:
    """The gateways' fits, weighted by the rows each saw complete (each at least 1)."""
    fits = [(r.cost, 1 + r.completed_rows) for r in reports if r.cost is not None]
    if not fits:
        return None
    total = sum(w for _, w in fits)
    return Cost(
        sum(c.fixed_s * w for c, w in fits) / total,
        sum(c.per_row_s * w for c, w in fits) / total,
    )
