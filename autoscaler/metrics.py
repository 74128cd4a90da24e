"""Prometheus metrics of the autoscaler, in its own registry, served on its metrics port.

Labelled by model. A Deployment that serves several models is decided once: each of its
models' series carries that one decision (replicas, demand, panic, and the decisions and
scale changes counted under each model), ``autoscaler_model_deployment_info`` names the
Deployment of each model, and ``autoscaler_model_demand_pods`` is each model's own share.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from autoscaler import __version__
from autoscaler.decider import Decision
from autoscaler.startup import StartupSample

__all__ = ["AutoscalerMetrics"]


class AutoscalerMetrics:
    """Replica counts, demand, panic, decisions by reason, report staleness, actuation."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ("model",)) -> Gauge:
            return Gauge(name, doc, labels, registry=r)

        def counter(name: str, doc: str, labels: tuple[str, ...] = ("model",)) -> Counter:
            return Counter(name, doc, labels, registry=r)

        self.desired = gauge("autoscaler_desired_replicas", "Replicas decided")
        self.current = gauge("autoscaler_current_replicas", "The Deployment's spec.replicas")
        self.ready = gauge("autoscaler_ready_replicas", "Ready pods the gateways see (largest)")
        self.demand = gauge(
            "autoscaler_demand_pods",
            "Observed demand in pods, by window (stable, panic)",
            ("model", "window"),
        )
        self.panic = gauge("autoscaler_panic_mode", "1 while in panic mode")
        self.decisions = counter(
            "autoscaler_decisions", "Decisions, by the rule that won", ("model", "reason")
        )
        self.staleness = gauge(
            "autoscaler_report_staleness_seconds", "Age of the newest load report of the model"
        )
        self.reporters = gauge("autoscaler_reporting_gateways", "Gateways whose reports are live")
        self.missing = gauge(
            "autoscaler_missing_gateways",
            "Gateways whose reports expired without a goodbye (demand unknown)",
        )
        self.reports = counter("autoscaler_reports", "Load reports received")
        self.gateway_reports = counter(
            "autoscaler_gateway_reports",
            "Load reports received, by gateway replica and rpc (Exchange, StreamLoad)",
            ("gateway", "rpc"),
        )
        self.scale_changes = counter(
            "autoscaler_scale_changes",
            "Scale changes decided, by result (patched, dry_run, failed, keda: left to KEDA)",
            ("model", "result"),
        )
        self.startup = gauge(
            "autoscaler_pod_startup_seconds",
            "Pod start-up time, learnt from scale-up patch to ready (the prior until measured)",
        )
        self.startup_samples = counter(
            "autoscaler_pod_startup_samples",
            "Start-up samples taken, by kind (full, partial)",
            ("model", "kind"),
        )
        self.lost = gauge(
            "autoscaler_lost_pods", "Pods asked for, not ready long past the start-up time"
        )
        self.model_demand = gauge(
            "autoscaler_model_demand_pods",
            "The model's own demand in pods at the latest tick with a fresh report (a "
            "Deployment serving several models is sized on their sum)",
        )
        self.deployment_info = gauge(
            "autoscaler_model_deployment_info",
            "1, labelled with the Deployment that serves the model (decided with its others)",
            ("model", "namespace", "deployment"),
        )
        self.leader = gauge("autoscaler_leader", "1 while this replica holds the Lease", ())
        build = gauge(
            "autoscaler_build_info", "1, labelled with the autoscaler's version", ("version",)
        )
        build.labels(__version__).set(1)

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
        self.lost.labels(model).set(decision.lost_pods)
        self.decisions.labels(model, decision.reason.value).inc()
        if staleness_s is not None:
            self.staleness.labels(model).set(staleness_s)
        self.reporters.labels(model).set(reporters)
        self.missing.labels(model).set(missing)

    def observe_share(
        self, model: str, pods: float | None, namespace: str, deployment: str
    ) -> None:
        """The model's own demand in pods (None: no fresh report, left as it was) and its
        Deployment."""
        if pods is not None:
            self.model_demand.labels(model).set(pods)
        self.deployment_info.labels(model, namespace, deployment).set(1)

    def observe_startup(self, model: str, estimate_s: float, sample: StartupSample | None) -> None:
        """The model's start-up estimate, and the sample just taken if any."""
        self.startup.labels(model).set(estimate_s)
        if sample is not None:
            kind = "partial" if sample.partial else "full"
            self.startup_samples.labels(model, kind).inc()
