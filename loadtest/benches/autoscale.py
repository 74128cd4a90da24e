"""Autoscaling policies on the same traces, simulated: this decider vs HPA- and KPA-style.

A fluid model of one model's pods, stepped every ``dt``: rows arrive at the trace's rate, ready
pods serve up to their throughput at the latency target's batch size, the rest queues. A pod is
what the gateway sees of a real one: ``devices_per_pod`` devices, each running one batch at a
time (the throughput), and one slot more (a batch waiting on the pod, which adds none). Rows
queued longer than the deadline are shed (the gateway's answer is an error; the decider sees
them as rejections). A request's latency is two batch times plus the queue's drain time; a
second is "above target" when that exceeds the latency target (or no pod is ready while rows
wait). Every policy is capped at the same ``max_replicas``. Pods ordered by a
policy become ready after the start-up delay; removed pods go at once (starting ones first).

Policies, each fed what it would see in production:
- this decider (``autoscaler.decider``), capacity mode and concurrency mode, ticking every 1 s
  on the gateway's reported load (queue and its growth, in-flight rows, arrival and completion
  rates, batch cost, slots and devices per pod, endpoints);
- HPA-style: every 15 s, ``ceil(concurrency / target)``, tolerance 0.1, scale-up at most
  max(100%, 4 pods) per 15 s, scale-down stabilization 300 s; unready pods not counted;
- KPA-style (Knative): every 2 s, stable 60 s and panic 6 s averages of concurrency, panic at
  200% of the *ready* pods, no scale-down while panicking, max scale-down rate 2.
All concurrency policies share one target per pod: the rows a pod holds at 70% of its
throughput at the latency target.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from autoscaler.decider import ScalerState, decide
from autoscaler.demand import batch_rows_for_latency
from autoscaler.load import Cost, ModelLoad, Observations
from autoscaler.spec import Mode, ScalingSpec

__all__ = ["BenchConfig", "Outcome", "autoscale_doc", "run_bench", "simulate", "traces"]

Trace = Callable[[float], float]


@dataclass(frozen=True, slots=True)
class BenchConfig:
    duration_s: float = 600.0  # of each trace
    startup_s: float = 15.0  # a new pod's start-up delay
    base_rows_per_s: float = 1500.0  # the traces' low rate
    fixed_ms: float = 8.0  # pod F: device ms per batch
    per_row_ms: float = 0.25  # pod c: device ms per row
    max_batch: int = 32
    devices_per_pod: int = 1  # batches a pod runs at once; its slots are one more
    latency_target_ms: float = 100.0  # the capacity mode's target
    dt_s: float = 0.1  # the simulation's step
    deadline_s: float = 1.0  # rows queued longer are shed (expire): the queue holds at most this
    max_replicas: int = 100  # for every policy

    @property
    def cost(self) -> Cost:
        return Cost(self.fixed_ms / 1000, self.per_row_ms / 1000)

    @property
    def batch_rows(self) -> int:
        return batch_rows_for_latency(self.cost, self.latency_target_ms / 1000, self.max_batch)

    @property
    def slots_per_pod(self) -> int:
        """In-flight batches a pod takes, as the gateway sizes them: one per device, plus one
        waiting on the pod."""
        return self.devices_per_pod + 1

    @property
    def pod_rows_per_s(self) -> float:
        """A pod's limit at the latency target's batch size: its devices' throughput."""
        return self.devices_per_pod * self.batch_rows / self.cost.seconds(self.batch_rows)

    @property
    def base_latency_s(self) -> float:
        return 2 * self.cost.seconds(self.batch_rows)

    @property
    def target_rows_per_pod(self) -> float:
        """Rows in the system a pod holds at full throughput (Little's law)."""
        return self.pod_rows_per_s * self.base_latency_s


def traces(c: BenchConfig) -> dict[str, Trace]:
    base = c.base_rows_per_s
    return {
        "step x10": lambda t: base * (10 if t >= 60 else 1),
        "spike x8 (20 s)": lambda t: base * (8 if 120 <= t < 140 else 1),
        "square x4 (60 s)": lambda t: base * (4 if (t // 60) % 2 == 1 else 1),
    }


@dataclass(frozen=True, slots=True)
class View:
    """What a policy sees at a tick."""

    now: float
    arrival_rows_per_s: float
    queued_rows: float
    inflight_rows: float
    shed_rows_per_s: float
    ready: int
    starting: int
    # Over the last step, as the gateway reports them over its last interval:
    completed_rows_per_s: float = 0.0
    queue_growth_rows_per_s: float = 0.0

    @property
    def concurrency(self) -> float:
        return self.queued_rows + self.inflight_rows


class Policy(Protocol):
    name: str
    tick_s: float

    def __call__(self, v: View, current: int) -> int: ...


class ThisDecider:
    def __init__(self, c: BenchConfig, mode: Mode) -> None:
        self.name = f"this decider ({mode.value})"
        self.tick_s = 1.0
        self.cost = c.cost
        self.max_batch = c.max_batch
        self.spec = ScalingSpec(
            mode=mode,
            target_per_pod=c.target_rows_per_pod,
            latency_target_s=c.latency_target_ms / 1000,
            max_replicas=c.max_replicas,
            restart_hold_s=0,
        )
        self.slots = c.slots_per_pod
        self.devices = c.devices_per_pod
        self.state = ScalerState()

    def __call__(self, v: View, current: int) -> int:
        load = ModelLoad(
            at=v.now,
            reporters=1,
            queued_requests=math.ceil(v.queued_rows),
            queued_rows=round(v.queued_rows),
            inflight_rows=round(v.inflight_rows),
            arrival_rows_per_s=v.arrival_rows_per_s,
            arrived_requests_per_s=v.arrival_rows_per_s,
            rejected_requests_per_s=v.shed_rows_per_s,
            completed_rows_per_s=v.completed_rows_per_s,
            queue_growth_rows_per_s=v.queue_growth_rows_per_s,
            cost=self.cost,
            slots_per_pod=self.slots,
            devices_per_pod=self.devices,
            max_batch_size=self.max_batch,
            ready_endpoints=v.ready,
            starting_endpoints=v.starting,
        )
        decision, self.state = decide(self.spec, Observations(load, current), self.state, v.now)
        return decision.desired


class _OnConcurrency:
    """A policy on concurrency, ticking every ``tick_s``: one target per pod for all of them,
    the rows a pod holds at 70% of its throughput at the latency target."""

    def __init__(self, c: BenchConfig, name: str, tick_s: float) -> None:
        self.name = name
        self.tick_s = tick_s
        self.max_replicas = c.max_replicas
        self.target = c.target_rows_per_pod * 0.7


class HpaStyle(_OnConcurrency):
    def __init__(self, c: BenchConfig) -> None:
        super().__init__(c, "HPA-style", 15.0)
        self.recs: list[tuple[float, int]] = []
        self.changes: list[tuple[float, int]] = []

    def __call__(self, v: View, current: int) -> int:
        ratio = v.concurrency / max(1, v.ready) / self.target
        rec = (
            current
            if abs(ratio - 1) <= 0.1 and v.ready == current
            else math.ceil(v.concurrency / self.target)
        )
        rec = max(1, rec)
        self.recs = [(t, n) for t, n in self.recs if t > v.now - 300] + [(v.now, rec)]
        if rec < current:
            rec = min(current, max(n for _, n in self.recs))
        up_limit = max(2 * current, current + 4)
        return min(rec, up_limit, self.max_replicas)


class KpaStyle(_OnConcurrency):
    def __init__(self, c: BenchConfig) -> None:
        super().__init__(c, "KPA-style", 2.0)
        self.samples: list[tuple[float, float]] = []
        self.panic_since: float | None = None
        self.max_panic = 0

    def __call__(self, v: View, current: int) -> int:
        self.samples = [(t, x) for t, x in self.samples if t > v.now - 60] + [
            (v.now, v.concurrency)
        ]
        stable = sum(x for _, x in self.samples) / len(self.samples)
        recent = [x for t, x in self.samples if t > v.now - 6]
        panic = sum(recent) / len(recent)
        want_stable = math.ceil(stable / self.target)
        want_panic = math.ceil(panic / self.target)
        ready = max(1, v.ready)
        if want_panic / ready >= 2.0:
            self.panic_since = v.now
        elif self.panic_since is not None and v.now - self.panic_since > 60:
            self.panic_since, self.max_panic = None, 0
        want = want_stable
        if self.panic_since is not None:
            want = max(want_stable, want_panic, self.max_panic)
            self.max_panic = want
        want = max(want, math.floor(ready / 2))  # max scale-down rate 2
        return max(1, min(want, ready * 1000, self.max_replicas))


@dataclass
class Outcome:
    trace: str
    policy: str
    above_target_s: float = 0.0
    replica_s: float = 0.0
    direction_changes: int = 0
    peak_replicas: int = 0
    desired: list[int] = field(default_factory=list)


def simulate(c: BenchConfig, trace: Trace, policy: Policy, trace_name: str) -> Outcome:
    out = Outcome(trace_name, policy.name)
    initial = max(1, math.ceil(trace(0) / (c.pod_rows_per_s * 0.7)))
    ready_at: list[float] = [0.0] * initial  # when each pod is (or will be) ready
    queue = 0.0
    next_tick = 0.0
    last_move = 0
    steps = round(c.duration_s / c.dt_s)
    for i in range(steps):
        now = i * c.dt_s
        ready = sum(1 for t in ready_at if t <= now)
        rate = trace(now)
        capacity = ready * c.pod_rows_per_s
        served = min(capacity, rate + queue / c.dt_s)
        before = queue
        queue = max(0.0, queue + (rate - served) * c.dt_s)
        limit = rate * c.deadline_s
        shed = max(0.0, queue - limit) / c.dt_s
        queue = min(queue, limit)
        growth = (queue - before) / c.dt_s
        inflight = served * c.base_latency_s
        if now >= next_tick - 1e-9:
            next_tick += policy.tick_s
            starting = len(ready_at) - ready
            view = View(now, rate, queue, inflight, shed, ready, starting, served, growth)
            desired = policy(view, len(ready_at))
            if desired != len(ready_at):
                move = 1 if desired > len(ready_at) else -1
                out.direction_changes += 1 if last_move and move != last_move else 0
                last_move = move
            if desired > len(ready_at):
                ready_at += [now + c.startup_s] * (desired - len(ready_at))
            elif desired < len(ready_at):
                ready_at = sorted(ready_at)[:desired]  # starting pods (latest) go first
            out.desired.append(desired)
        latency = c.base_latency_s + (queue / capacity if capacity else math.inf)
        if (queue > 0 or rate > 0) and latency > c.latency_target_ms / 1000:
            out.above_target_s += c.dt_s
        out.replica_s += len(ready_at) * c.dt_s
        out.peak_replicas = max(out.peak_replicas, len(ready_at))
    return out


def policies(c: BenchConfig) -> list[Policy]:
    return [
        ThisDecider(c, Mode.CAPACITY),
        ThisDecider(c, Mode.CONCURRENCY),
        HpaStyle(c),
        KpaStyle(c),
    ]


def run_bench(c: BenchConfig, *, show: bool = True) -> list[Outcome]:
    """Every policy on every trace; prints one table."""
    outcomes = [
        simulate(c, trace, policy, name)
        for name, trace in traces(c).items()
        for policy in policies(c)
    ]
    if show:
        from loadtest.results.report import print_table

        print_table(
            f"Autoscaling on the same traces ({c.duration_s:g} s, pod start-up "
            f"{c.startup_s:g} s, latency target {c.latency_target_ms:g} ms)",
            ["trace", "policy", "s above target", "replica-s", "direction changes", "peak"],
            [
                [
                    o.trace,
                    o.policy,
                    f"{o.above_target_s:.1f}",
                    f"{o.replica_s:.0f}",
                    str(o.direction_changes),
                    str(o.peak_replicas),
                ]
                for o in outcomes
            ],
            [
                f"pod: F {c.fixed_ms:g} ms + {c.per_row_ms:g} ms/row, batches of "
                f"{c.batch_rows} at the target: {c.pod_rows_per_s:.0f} rows/s per pod; base "
                f"load {c.base_rows_per_s:g} rows/s; a simulation (fluid queue), not a "
                "measurement"
            ],
        )
    return outcomes


def autoscale_doc(c: BenchConfig, outcomes: list[Outcome]) -> dict[str, Any]:
    """The JSON report of a run (a simulation, not a measurement)."""
    return {
        "benchmark": "autoscale",
        "config": asdict(c),
        "batch_rows_at_target": c.batch_rows,
        "pod_rows_per_s": round(c.pod_rows_per_s, 1),
        "note": "a simulation (fluid queue), not a measurement",
        "outcomes": [
            {
                "trace": o.trace,
                "policy": o.policy,
                "above_target_s": round(o.above_target_s, 2),
                "replica_s": round(o.replica_s, 1),
                "direction_changes": o.direction_changes,
                "peak_replicas": o.peak_replicas,
            }
            for o in outcomes
        ],
    }
