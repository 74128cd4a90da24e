"""The decider: a pure function from a model's observations and state to its replica count.

``decide(spec, observations, state, now) -> (decision, new_state)`` never reads a clock or does
I/O; the state is a frozen value the caller keeps and passes back. The rules, in the order
they apply (the decision's reason names the last rule that changed the count):

1. Hold at the current count when there is no live report, or the newest is stale.
2. From zero: any queued, arriving or shed request scales up at once, past every window.
3. Demand in pods (``autoscaler.demand``) is averaged over a stable and a panic window
   (Knative). Panic starts when the panic-window demand is ≥ ``panic_threshold`` * the pods
   there are or are starting (counting starting pods, so a scale-up already on its way is not
   asked for twice, and never terminating ones); while panicking the count never goes down;
   panic ends one stable window after demand last crossed the threshold. Pods asked for count
   as on their way only while the scale-up is younger than ``LOST_AFTER_STARTUPS`` * the
   start-up time (learnt, ``Observations.startup_s``, else ``spec.startup_s``); after that
   the pods not ready are lost: they are no capacity, and a recommendation above the ready
   pods asks for that many more (``replacing_lost``), so it never waits forever.
4. Queue growth (capacity mode): when rows come in faster than the ready pods can serve them
   flat out (``demand.overload_pods``) and the pods that intake needs are more than there are
   or are starting, that many pods are asked for at once, past the windows' averages, and
   panic starts as in 3 (so the count holds while the windows catch up).
5. Outside panic, a change within ``tolerance`` of the current count is no change (HPA).
6. To zero only with ``min_replicas`` 0, after ``scale_to_zero_grace_s`` without demand.
7. Scale-down stabilization (HPA): never below the highest recommendation in the window.
8. Hold (no scale-down) while a gateway's reports are missing, while a model of a Deployment
   that serves several has no fresh report (``hold_missing_model``), and after a restart.
9. Rate limits per ``rate_period_s``: up to * ``scale_up_factor`` or + ``scale_up_pods``
   (whichever is more), down to ÷ ``scale_down_factor``, from the count at the period's edge.
10. ``min_replicas`` and ``max_replicas``.

Windows average the samples they hold; a tick without data adds no sample (a gap is not zero).
A Deployment that serves several models is decided once: ``Observations.demand`` brings their
summed demand in pods (and surge), the spec is the Deployment's (``autoscaler.sharing``).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from autoscaler.demand import overload_pods, wanted_pods
from autoscaler.load import ModelLoad, Observations
from autoscaler.spec import Mode, ScalingSpec

__all__ = ["LOST_AFTER_STARTUPS", "Decision", "Reason", "ScalerState", "decide"]

_EPS = 1e-9
LOST_AFTER_STARTUPS = 2.0  # pods not ready this many start-up times after the patch are lost


class Reason(enum.StrEnum):
    """Which rule set the count (exported as a metric label)."""

    STABLE = "stable"
    PANIC = "panic"
    QUEUE_GROWTH = "queue_growth"
    REPLACING_LOST = "replacing_lost"
    WITHIN_TOLERANCE = "within_tolerance"
    SCALE_FROM_ZERO = "scale_from_zero"
    SCALE_TO_ZERO = "scale_to_zero"
    ZERO_GRACE = "zero_grace"
    STABILIZING = "stabilizing"
    RATE_LIMIT_UP = "rate_limit_up"
    RATE_LIMIT_DOWN = "rate_limit_down"
    MIN_REPLICAS = "min_replicas"
    MAX_REPLICAS = "max_replicas"
    HOLD_NO_DATA = "hold_no_data"
    HOLD_STALE = "hold_stale"
    HOLD_MISSING_GATEWAY = "hold_missing_gateway"
    HOLD_MISSING_MODEL = "hold_missing_model"  # a Deployment's model has no fresh report
    HOLD_RESTART = "hold_restart"


@dataclass(frozen=True, slots=True)
class Decision:
    """The replica count to run, and why."""

    desired: int
    current: int
    reason: Reason
    panicking: bool = False
    mode: Mode | None = None  # how demand was sized; None without data
    stable_pods: float | None = None  # demand in pods over the stable window
    panic_pods: float | None = None  # ... and over the panic window
    recommendation: int | None = None  # before stabilization, holds, rate limits, min/max
    lost_pods: int = 0  # asked for, not ready long past the start-up time

    @property
    def changes(self) -> bool:
        return self.desired != self.current


@dataclass(frozen=True, slots=True)
class ScalerState:
    """What the decider remembers between ticks; a fresh one means a (re)start."""

    started_at: float | None = None
    samples: tuple[tuple[float, float], ...] = ()  # (time, demand in pods)
    recommendations: tuple[tuple[float, int], ...] = ()  # for scale-down stabilization
    replicas: tuple[tuple[float, int], ...] = ()  # observed counts, for the rate limits
    panic_since: float | None = None  # Knative's panic time: last crossing of the threshold
    max_panic_pods: int = 0
    last_demand_at: float | None = None


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - _EPS))


def _average(samples: tuple[tuple[float, float], ...], since: float) -> float | None:
    values = [v for t, v in samples if t > since]
    return sum(values) / len(values) if values else None


def _clamp(spec: ScalingSpec, n: int, reason: Reason) -> tuple[int, Reason]:
    if n > spec.max_replicas:
        return spec.max_replicas, Reason.MAX_REPLICAS
    if n < spec.min_replicas:
        return spec.min_replicas, Reason.MIN_REPLICAS
    return n, reason


def _hold(
    spec: ScalingSpec, obs: Observations, state: ScalerState, reason: Reason
) -> tuple[Decision, ScalerState]:
    desired, reason = _clamp(spec, obs.current_replicas, reason)
    return Decision(desired, obs.current_replicas, reason), state


def _lost_pods(spec: ScalingSpec, obs: Observations, load: ModelLoad, now: float) -> int:
    """Pods asked for that are still not ready ``LOST_AFTER_STARTUPS`` start-up times after
    the scale-up's patch; 0 while it is younger, or with no scale-up waiting."""
    if obs.asked_at is None:
        return 0
    startup = obs.startup_s if obs.startup_s is not None else spec.startup_s
    if now - obs.asked_at <= LOST_AFTER_STARTUPS * startup:
        return 0
    return max(0, obs.current_replicas - load.ready_endpoints)


def decide(
    spec: ScalingSpec, observations: Observations, state: ScalerState, now: float
) -> tuple[Decision, ScalerState]:
    """The count this model should run now, and the state to pass to the next call."""
    obs = observations
    current = obs.current_replicas
    if state.started_at is None:
        state = replace(state, started_at=now)
    replicas = (
        *((t, n) for t, n in state.replicas if t > now - spec.rate_period_s),
        (now, current),
    )
    state = replace(state, replicas=replicas)
    load = obs.load
    if load is None or load.reporters == 0:
        return _hold(spec, obs, state, Reason.HOLD_NO_DATA)
    if now - load.at > spec.stale_after_s:
        return _hold(spec, obs, state, Reason.HOLD_STALE)

    demand = obs.demand
    if demand is None:
        pods, mode = wanted_pods(spec, load)
    else:
        pods, mode = demand.pods, demand.mode
    samples = (*((t, v) for t, v in state.samples if t > now - spec.stable_window_s), (now, pods))
    last_demand = now if load.has_demand else state.last_demand_at
    state = replace(state, samples=samples, last_demand_at=last_demand)
    stable = _average(samples, now - spec.stable_window_s) or 0.0
    panic = _average(samples, now - spec.panic_window_s) or 0.0

    if current == 0 and (load.queued_requests or load.rejected_requests_per_s > 0 or pods > 0):
        desired, reason = _clamp(spec, max(1, _ceil(pods), _ceil(panic)), Reason.SCALE_FROM_ZERO)
        state = replace(state, recommendations=(*state.recommendations, (now, desired)))
        return Decision(desired, current, reason, False, mode, stable, panic, desired), state

    surge = overload_pods(spec, load) if demand is None else demand.surge
    lost = _lost_pods(spec, obs, load, now)
    rec, reason, state = _recommend(spec, load, state, now, stable, panic, surge, lost)
    if lost and rec > load.ready_endpoints:  # the lost pods serve nothing: ask past them
        rec, reason = rec + lost, Reason.REPLACING_LOST
    panicking = state.panic_since is not None
    window = spec.scale_down_stabilization_s
    recs = (*((t, n) for t, n in state.recommendations if t > now - window), (now, rec))
    state = replace(state, recommendations=recs)
    desired = rec
    if rec < current:  # HPA: not below the highest recommendation in the window
        desired = min(current, max(n for _, n in recs))
        if desired > rec:
            reason = Reason.STABILIZING
    if desired < current:
        if load.missing:
            desired, reason = current, Reason.HOLD_MISSING_GATEWAY
        elif demand is not None and demand.silent:
            desired, reason = current, Reason.HOLD_MISSING_MODEL
        elif state.started_at is not None and now - state.started_at < spec.restart_hold_s:
            desired, reason = current, Reason.HOLD_RESTART
    desired, reason = _rate_limit(spec, replicas, desired, reason)
    desired, reason = _clamp(spec, desired, reason)
    return Decision(desired, current, reason, panicking, mode, stable, panic, rec, lost), state


def _recommend(
    spec: ScalingSpec,
    load: ModelLoad,
    state: ScalerState,
    now: float,
    stable: float,
    panic: float,
    surge: float | None,
    lost: int = 0,
) -> tuple[int, Reason, ScalerState]:
    """Knative's stable/panic recommendation with the queue-growth trigger, then tolerance and
    the zero grace period. ``surge``: the pods an overload needs now (None: no overload);
    ``lost``: pods asked for that are overdue (then only the ready pods are capacity)."""
    current = state.replicas[-1][1]
    want_stable, want_panic = _ceil(stable), _ceil(panic)
    want_surge = _ceil(surge) if surge is not None else 0
    # Pods there are or are on their way in; terminating ones are on their way out.
    capacity = max(1, current, load.ready_endpoints + load.starting_endpoints)
    if lost:
        capacity = max(1, load.ready_endpoints)
    growing = want_surge > capacity
    over = growing or want_panic / capacity >= spec.panic_threshold
    panic_since, max_panic = state.panic_since, state.max_panic_pods
    if over:
        panic_since = now
    elif panic_since is not None and now - panic_since > spec.stable_window_s:
        panic_since, max_panic = None, 0
    if panic_since is not None:
        rec = max(want_stable, want_panic, max_panic, want_surge)
        reason = Reason.QUEUE_GROWTH if growing and want_surge == rec else Reason.PANIC
        state = replace(state, panic_since=panic_since, max_panic_pods=rec)
        return rec, reason, state
    state = replace(state, panic_since=None, max_panic_pods=max_panic)
    rec, reason = want_stable, Reason.STABLE
    if current > 0 and abs(stable / current - 1) <= spec.tolerance:
        rec, reason = current, Reason.WITHIN_TOLERANCE
    if rec == 0 and spec.min_replicas == 0 and current > 0:
        quiet_since = state.last_demand_at if state.last_demand_at is not None else state.started_at
        if quiet_since is not None and now - quiet_since < spec.scale_to_zero_grace_s:
            rec, reason = 1, Reason.ZERO_GRACE
        else:
            reason = Reason.SCALE_TO_ZERO
    return rec, reason, state


def _rate_limit(
    spec: ScalingSpec, replicas: tuple[tuple[float, int], ...], desired: int, reason: Reason
) -> tuple[int, Reason]:
    """HPA-style limits relative to the count at the edge of the rate period."""
    low = min(n for _, n in replicas)
    high = max(n for _, n in replicas)
    up_limit = max(math.ceil(low * spec.scale_up_factor - _EPS), low + spec.scale_up_pods)
    down_limit = math.floor(high / spec.scale_down_factor + _EPS)
    if desired > up_limit and desired > replicas[-1][1]:
        return max(up_limit, replicas[-1][1]), Reason.RATE_LIMIT_UP
    if desired < down_limit and desired < replicas[-1][1]:
        return min(down_limit, replicas[-1][1]), Reason.RATE_LIMIT_DOWN
    return desired, reason
