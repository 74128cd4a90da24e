"""Prometheus metrics of the autoscaler, in its own registry, served on its metrics port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from autoscaler.decider import Decision

__all__ = ["AutoscalerMetrics"]


class AutoscalerMetrics:
    """Replica counts, demand, panic, decisions by reason, report staleness, actuation."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        m = ["model"]
        self.desired = Gauge("autoscaler_desired_replicas", "Replicas decided", m, registry=r)
        self.current = Gauge(
            "autoscaler_current_replicas", "The Deployment's spec.replicas", m, registry=r
        )
        self.ready = Gauge(
            "autoscaler_ready_replicas", "Ready pods the gateways see (largest)", m, registry=r
        )
        self.demand = Gauge(
            "autoscaler_demand_pods",
            "Observed demand in pods, by window (stable, panic)",
            ["model", "window"],
            registry=r,
        )
        self.panic = Gauge("autoscaler_panic_mode", "1 while in panic mode", m, registry=r)
        self.decisions = Counter(
            "autoscaler_decisions",
            "Decisions, by the rule that won",
            ["model", "reason"],
            registry=r,
        )
        self.staleness = Gauge(
            "autoscaler_report_staleness_seconds",
            "Age of the newest load report of the model",
            m,
            registry=r,
        )
        self.reporters = Gauge(
            "autoscaler_reporting_gateways", "Gateways whose reports are live", m, registry=r
        )
        self.missing = Gauge(
            "autoscaler_missing_gateways",
            "Gateways whose reports expired without a goodbye (demand unknown)",
            m,
            registry=r,
        )
        self.reports = Counter("autoscaler_reports", "Load reports received", m, registry=r)
        self.scale_changes = Counter(
            "autoscaler_scale_changes",
            "Scale subresource updates, by result (patched, dry_run, failed)",
            ["model", "result"],
            registry=r,
        )
        self.leader = Gauge("autoscaler_leader", "1 while this replica holds the Lease", registry=r)

    def observe(
        self,
        model: str,
        decision: Decision,
        *,
        staleness_s: float | None,
        reporters: int,
        missing: int,
        ready: int | None,
    ) -> None:
        self.desired.labels(model).set(decision.desired)
        self.current.labels(model).set(decision.current)
        if ready is not None:
            self.ready.labels(model).set(ready)
        if decision.stable_pods is not None:
            self.demand.labels(model, "stable").set(decision.stable_pods)
        if decision.panic_pods is not None:
            self.demand.labels(model, "panic").set(decision.panic_pods)
        self.panic.labels(model).set(1.0 if decision.panicking else 0.0)
        self.decisions.labels(model, decision.reason.value).inc()
        if staleness_s is not None:
            self.staleness.labels(model).set(staleness_s)
        self.reporters.labels(model).set(reporters)
        self.missing.labels(model).set(missing)
