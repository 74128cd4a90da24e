"""What the decider observes: a model's load summed over the gateways, and its replica counts."""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.spec import Mode

__all__ = ["Cost", "DeploymentDemand", "LoadGauges", "ModelLoad", "Observations"]


@dataclass(frozen=True, slots=True)
class Cost:
    """The gateways' fit of one batch's device time: ``fixed_s + per_row_s · rows``."""

    fixed_s: float
    per_row_s: float

    def seconds(self, rows: float) -> float:
        return self.fixed_s + self.per_row_s * rows


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadGauges:
    """A model's load as it stands at one instant, in one gateway's report or summed over them:
    the queue, the rows in flight, the arrival rate, the batch cost fit, and the pods.

    A pod's ``slots_per_pod`` (in-flight batches: its devices plus one queued on the pod) is
    not its throughput; ``devices_per_pod`` (batches it runs at once) is. Pods are ready,
    starting (on their way in) or terminating (on their way out), never two of these.
    """

    queued_requests: int = 0
    queued_rows: int = 0
    inflight_rows: int = 0
    arrival_rows_per_s: float = 0.0  # shed rows included (the scheduler counts them)
    cost: Cost | None = None
    slots_per_pod: int = 0
    devices_per_pod: int = 0  # 0: unknown (a gateway older than the field)
    max_batch_size: int = 0
    ready_endpoints: int = 0
    starting_endpoints: int = 0
    terminating_endpoints: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelLoad(LoadGauges):
    """One model's load, summed over the gateway replicas whose reports are live.

    ``missing`` counts gateways whose reports expired without a goodbye: their demand is unknown,
    not zero, so the decider never scales down while any is missing. Endpoint counts are the
    largest any gateway sees (they all see the same pods). ``queue_growth_rows_per_s`` is how
    fast the gateways' queues grew over their latest report intervals (negative: draining).
    """

    at: float  # when the newest counted report arrived (the receiver's clock)
    reporters: int
    missing: int = 0
    arrived_requests_per_s: float = 0.0
    completed_rows_per_s: float = 0.0
    rejected_requests_per_s: float = 0.0
    queue_growth_rows_per_s: float = 0.0

    @property
    def in_system_rows(self) -> int:
        return self.inflight_rows + self.queued_rows

    @property
    def rows_per_request(self) -> float:
        """Rows in an average request: queued ones, else arrivals, else 1."""
        if self.queued_requests:
            return self.queued_rows / self.queued_requests
        if self.arrived_requests_per_s > 0 and self.arrival_rows_per_s > 0:
            return max(1.0, self.arrival_rows_per_s / self.arrived_requests_per_s)
        return 1.0

    @property
    def shed_rows_per_s(self) -> float:
        """Rows per second the gateways turned away: demand, too."""
        return self.rejected_requests_per_s * self.rows_per_request

    @property
    def has_demand(self) -> bool:
        return bool(
            self.queued_requests
            or self.inflight_rows
            or self.arrival_rows_per_s > 1e-6
            or self.rejected_requests_per_s > 0
        )


@dataclass(frozen=True, slots=True)
class DeploymentDemand:
    """The demand of a Deployment that serves several models (``autoscaler.sharing``): each
    model's demand in pods, summed (its pods' devices serve them all).

    ``surge``: the pods an overload needs now (``demand.overload``, summed), None without
    one; ``silent``: the models with no fresh report, whose demand is unknown (no scale-down).
    """

    pods: float
    mode: Mode  # the mode that sized the most of it
    surge: float | None = None
    silent: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Observations:
    """What the decider sees at one tick: the load (None: no live report), the replicas, and
    the scale-up on its way (``autoscaler.startup``: its patch time and the start-up time)."""

    load: ModelLoad | None
    current_replicas: int  # the Deployment's spec.replicas (what was last asked for)
    ready_replicas: int | None = None  # the Deployment's ready count, when known
    startup_s: float | None = None  # the learnt pod start-up time (None: the spec's prior)
    asked_at: float | None = None  # when the scale-up still waiting for its pods was patched
    # A Deployment of several models: their summed demand (``load`` is then their loads
    # merged, ``autoscaler.sharing``); None: the demand of ``load`` under the spec.
    demand: DeploymentDemand | None = None
