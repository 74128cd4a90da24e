"""A Deployment that serves several models, as pure rules: how the models' specs combine, how
their demands in pods sum, and what the decider makes of the sum (time is the ``now`` passed)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from autoscaler.decider import Reason, ScalerState, decide
from autoscaler.demand import wanted_pods
from autoscaler.load import Cost, DeploymentDemand, ModelLoad, Observations
from autoscaler.sharing import (
    DEPLOYMENT_FIELDS,
    MODEL_FIELDS,
    Member,
    combine,
    deployment_spec,
    merge_loads,
    set_fields_of,
    share_of,
)
from autoscaler.spec import Mode, ScalingSpec

T0 = 5_000.0
WHERE = "models/shared"
# Demand in pods = rows / 10 (concurrency mode, full utilisation), no restart hold.
TEN = ScalingSpec(target_per_pod=10, target_utilisation=1.0, restart_hold_s=0)


def member(model: str, **fields: object) -> Member:
    """A model that set exactly ``fields`` in its scaling block."""
    return Member(model, replace(ScalingSpec(), **fields), frozenset(fields))  # type: ignore[arg-type]


def test_the_fields_split_into_each_models_own_and_the_deployments() -> None:
    assert MODEL_FIELDS.isdisjoint(DEPLOYMENT_FIELDS)
    assert {"min_replicas", "max_replicas", "stable_window_s"} <= set(DEPLOYMENT_FIELDS)
    assert {"mode", "target_per_pod", "latency_target_s"} <= MODEL_FIELDS


def test_one_model_keeps_its_spec() -> None:
    spec = replace(TEN, max_replicas=7)
    assert deployment_spec([Member("a", spec, frozenset({"max_replicas"}))], WHERE) is spec


def test_the_floor_is_the_highest_set_and_the_cap_the_lowest_set() -> None:
    spec = deployment_spec(
        [
            member("a", min_replicas=0, max_replicas=8),
            member("b", min_replicas=2, max_replicas=5),
            member("c"),  # sets neither: its defaults (1 and 100) do not count
        ],
        WHERE,
    )
    assert (spec.min_replicas, spec.max_replicas) == (2, 5)


def test_a_floor_set_by_one_model_alone_is_the_deployments() -> None:
    """Scale to zero set on one model is not undone by the other's default floor of 1."""
    spec = deployment_spec([member("a", min_replicas=0), member("b")], WHERE)
    assert spec.min_replicas == 0


def test_unset_everywhere_the_defaults_apply() -> None:
    spec = deployment_spec([member("a"), member("b")], WHERE)
    for name in DEPLOYMENT_FIELDS:
        assert getattr(spec, name) == getattr(ScalingSpec(), name), name


def test_a_window_set_in_one_model_applies_to_the_deployment() -> None:
    spec = deployment_spec(
        [member("a", stable_window_s=20.0), member("b", stable_window_s=20.0, tolerance=0.2)],
        WHERE,
    )
    assert (spec.stable_window_s, spec.tolerance) == (20.0, 0.2)


def test_the_first_models_own_fields_are_kept_in_the_deployments_spec() -> None:
    spec = deployment_spec(
        [member("a", target_per_pod=4.0), member("b", target_per_pod=9.0)], WHERE
    )
    assert spec.target_per_pod == 4.0, "per model: never combined, never refused"


@pytest.mark.parametrize(
    ("field", "a", "b"),
    [
        ("stable_window_s", 30.0, 60.0),
        ("scale_down_stabilization_s", 10.0, 300.0),
        ("rate_period_s", 5.0, 15.0),
        ("startup_s", 5.0, 10.0),
    ],
)
def test_two_models_setting_a_deployment_field_apart_are_refused(
    field: str, a: float, b: float
) -> None:
    with pytest.raises(ValueError) as caught:
        deployment_spec([member("a", **{field: a}), member("b", **{field: b})], WHERE)
    message = str(caught.value)
    assert "'a'" in message and "'b'" in message and f"scaling.{field}" in message
    assert WHERE in message


def test_a_floor_above_a_cap_is_refused_naming_both_models() -> None:
    with pytest.raises(ValueError) as caught:
        deployment_spec([member("a", min_replicas=5), member("b", max_replicas=3)], WHERE)
    message = str(caught.value)
    assert "min_replicas 5 (model 'a')" in message
    assert "max_replicas 3 (model 'b')" in message


def test_fields_valid_in_each_model_but_not_together_are_refused() -> None:
    with pytest.raises(ValueError, match=r"'a', 'b' share the Deployment models/shared.*panic"):
        deployment_spec(
            [member("a", panic_window_s=50.0), member("b", stable_window_s=40.0)], WHERE
        )


def test_a_spec_built_in_code_counts_its_non_defaults_as_set() -> None:
    assert set_fields_of(ScalingSpec()) == frozenset()
    assert set_fields_of(replace(ScalingSpec(), max_replicas=3)) == {"max_replicas"}


def load(rows: int, now: float = T0, **extra: object) -> ModelLoad:
    fields: dict[str, object] = {"reporters": 1, "ready_endpoints": 1, **extra}
    return ModelLoad(at=now, inflight_rows=rows, **fields)  # type: ignore[arg-type]


def test_each_model_is_sized_under_its_own_spec_and_the_shares_sum() -> None:
    heavy = replace(TEN, target_per_pod=5)  # 15 rows: 3 pods
    shares = [
        share_of("a", TEN, load(15), T0, 2.0),  # 1.5 pods
        share_of("b", heavy, load(15), T0, 2.0),
    ]
    assert [s.pods for s in shares] == [1.5, 3.0]
    merged, demand = combine(shares)
    assert demand == DeploymentDemand(4.5, Mode.CONCURRENCY, None, ())
    assert merged is not None and merged.inflight_rows == 30 and merged.ready_endpoints == 1


def test_a_model_without_a_fresh_report_is_silent() -> None:
    stale = share_of("b", TEN, load(50, now=T0 - 3), T0, 2.0)
    none = share_of("c", TEN, None, T0, 2.0)
    assert not stale.fresh and not none.fresh
    merged, demand = combine([share_of("a", TEN, load(15), T0, 2.0), stale, none])
    assert (demand.pods, demand.silent) == (1.5, ("b", "c"))
    assert merged is not None and merged.inflight_rows == 15, "only the fresh models' load"


def test_with_every_model_silent_the_load_is_the_live_ones_and_it_holds() -> None:
    merged, demand = combine([share_of("a", TEN, load(15, now=T0 - 3), T0, 2.0)])
    assert merged is not None and merged.at == T0 - 3
    assert demand.silent == ("a",) and demand.pods == 0
    assert combine([share_of("a", TEN, None, T0, 2.0)])[0] is None


def test_the_merged_load_counts_the_pods_once() -> None:
    a = load(4, ready_endpoints=3, starting_endpoints=1, queued_requests=2, reporters=2)
    b = load(6, ready_endpoints=3, starting_endpoints=1, queued_requests=1, cost=Cost(0.01, 0.001))
    merged = merge_loads([a, b])
    assert merged is not None
    assert (merged.ready_endpoints, merged.starting_endpoints) == (3, 1)
    assert (merged.queued_requests, merged.inflight_rows, merged.reporters) == (3, 10, 2)
    assert merged.cost is None, "each model has its own cost fit"


CAPACITY = ScalingSpec(mode=Mode.CAPACITY, target_utilisation=0.5, latency_target_s=0.2)
COST = Cost(0.01, 0.0)  # batches of max 10 rows in 10 ms: 1000 rows/s per device


def growing(arrivals: float, growth: float) -> ModelLoad:
    return ModelLoad(
        at=T0,
        reporters=1,
        arrival_rows_per_s=arrivals,
        completed_rows_per_s=arrivals,
        queue_growth_rows_per_s=growth,
        cost=COST,
        devices_per_pod=1,
        max_batch_size=10,
        ready_endpoints=1,
    )


def test_one_models_overload_is_the_deployments_when_the_intakes_together_overflow() -> None:
    # a takes 0.6 of a pod's limit and grows; b takes 0.6 and does not: together 1.2 > 1 pod.
    a = share_of("a", CAPACITY, growing(500, 100), T0, 2.0)
    b = share_of("b", CAPACITY, growing(600, 0), T0, 2.0)
    assert a.surge_pods == pytest.approx(1.2) and b.surge_pods is None
    _, demand = combine([a, b])
    assert demand.surge == pytest.approx(1.2 + (b.pods or 0))
    assert b.pods == pytest.approx(wanted_pods(CAPACITY, growing(600, 0))[0])


def test_an_overload_the_ready_pods_can_take_is_no_surge() -> None:
    a = share_of("a", CAPACITY, growing(300, 100), T0, 2.0)  # 0.4 of a pod, growing
    b = share_of("b", CAPACITY, growing(300, 0), T0, 2.0)  # 0.3: together under one pod
    assert combine([a, b])[1].surge is None


def decide_sum(shares: list[float], current: int, silent: tuple[str, ...] = ()) -> Reason | int:
    spec = replace(TEN, scale_down_stabilization_s=0, scale_down_factor=100)
    total = sum(shares)
    demand = DeploymentDemand(total, Mode.CONCURRENCY, None, silent)
    merged = load(int(total * 10))
    obs = Observations(merged, current, 1, demand=demand)
    decision, _ = decide(spec, obs, ScalerState(started_at=T0 - 100), T0)
    return decision.desired if decision.reason is not Reason.HOLD_MISSING_MODEL else decision.reason


def test_the_decider_sizes_the_deployment_on_the_summed_demand() -> None:
    assert decide_sum([1.5, 1.5], current=1) == 3, "each model alone would ask for 2"


def test_a_silent_model_holds_scale_down_but_not_scale_up() -> None:
    assert decide_sum([0.2], current=4, silent=("b",)) is Reason.HOLD_MISSING_MODEL
    assert decide_sum([0.2], current=4) == 1
    assert decide_sum([6.0], current=4, silent=("b",)) == 6
