"""The batch-formation policy: Triton's rules and the cost-model rule, with time passed in."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.batching.cost_model import BatchCost, CostModel
from gateway.batching.policy import (
    ALL_SEND_REASONS,
    SEND_REASONS,
    BatchingPolicy,
    LoadView,
    decide,
    rows_to_keep_up,
)

SIM = BatchCost(fixed_s=0.008, per_row_s=0.00025)  # the simulated pod: 2000 rows/s at 32
NO_FIT = LoadView(arrival_rows_per_s=0.0, cost=None, devices=1)


def at(
    policy: BatchingPolicy,
    load: LoadView,
    rows: int,
    *,
    now: float = 10.0,
    oldest: float = 10.0,
    deadline: float = math.inf,
    send_at: float | None = None,
) -> tuple[int, str, float]:
    """The decision for a batch of ``rows`` (its rows, reason and wait) at ``now``."""
    d = decide(
        policy,
        load,
        now=now,
        batch_rows=rows,
        oldest_enqueued=oldest,
        earliest_deadline=deadline,
        send_at=send_at,
    )
    return d.rows, d.reason, d.wait_until


def test_a_full_batch_goes_at_once() -> None:
    policy = BatchingPolicy(max_batch_size=32, max_queue_delay_s=0.1)
    assert at(policy, NO_FIT, 40)[:2] == (32, "full")


def test_preferred_size_goes_at_once_as_the_largest_reached() -> None:
    policy = BatchingPolicy(32, preferred_batch_sizes=(4, 8), max_queue_delay_s=0.1)
    assert at(policy, NO_FIT, 9)[:2] == (8, "preferred")
    assert at(policy, NO_FIT, 5)[:2] == (4, "preferred")


def test_below_preferred_waits_until_max_queue_delay_of_the_oldest() -> None:
    policy = BatchingPolicy(32, preferred_batch_sizes=(8,), max_queue_delay_s=0.005)
    assert at(policy, NO_FIT, 3, now=10.001, oldest=10.0) == (0, "", 10.005)
    assert at(policy, NO_FIT, 3, now=10.005, oldest=10.0)[:2] == (3, "max_queue_delay")


def test_zero_max_queue_delay_sends_whatever_is_there() -> None:
    assert at(BatchingPolicy(32), NO_FIT, 1)[:2] == (1, "max_queue_delay")


def test_a_deadline_that_waiting_would_break_sends_now() -> None:
    policy = BatchingPolicy(32, max_queue_delay_s=0.1, use_cost_model=False)
    load = LoadView(0.0, SIM, 1)
    # 4 rows take 9 ms; the earliest deadline is 9.5 ms away: it must go within 0.5 ms.
    rows, _, until = at(policy, load, 4, now=10.0, deadline=10.0095)
    assert (rows, until) == (0, 10.0095 - SIM.seconds(4))
    assert at(policy, load, 4, now=10.0092, deadline=10.0095)[:2] == (4, "deadline")


def test_cost_model_sends_single_requests_at_once_when_load_is_light() -> None:
    policy = BatchingPolicy(32, max_queue_delay_s=0.01)
    light = LoadView(arrival_rows_per_s=20.0, cost=SIM, devices=1)
    assert rows_to_keep_up(policy, light) == 1
    assert at(policy, light, 1)[:2] == (1, "cost_model")


def test_cost_model_waits_for_the_rows_it_needs_under_heavy_load() -> None:
    policy = BatchingPolicy(32, max_queue_delay_s=0.01, target_utilisation=0.85)
    heavy = LoadView(arrival_rows_per_s=1500.0, cost=SIM, devices=1)
    # n* = rate*F / (slots*utilisation - rate*c) = 12 / (0.85 - 0.375) = 25.3, so 26 rows
    assert rows_to_keep_up(policy, heavy) == 26
    rows, _, until = at(policy, heavy, 20, now=10.0, oldest=10.0)
    assert rows == 0
    assert math.isclose(until, 10.0 + 6 / 1500.0)
    assert at(policy, heavy, 26)[:2] == (26, "cost_model")


def test_a_lone_request_to_a_pod_that_holds_nothing_goes_at_once_whatever_the_load() -> None:
    policy = BatchingPolicy(32, max_queue_delay_s=0.005, target_utilisation=0.85)
    closed_loop = LoadView(arrival_rows_per_s=110.0, cost=SIM, devices=1)  # 88% of one device
    assert rows_to_keep_up(policy, closed_loop) == 2  # alone it would wait for a second row
    assert at(policy, closed_loop, 1)[0] == 0
    d = decide(
        policy,
        closed_loop,
        now=10.0,
        batch_rows=1,
        oldest_enqueued=10.0,
        earliest_deadline=math.inf,
        alone=True,
    )
    assert (d.rows, d.reason) == (1, "idle_pod")


def test_without_the_cost_model_a_lone_request_still_waits_as_triton_s_rules_say() -> None:
    policy = BatchingPolicy(32, (8,), max_queue_delay_s=0.005, use_cost_model=False)
    d = decide(
        policy,
        LoadView(110.0, SIM, 1),
        now=10.0,
        batch_rows=1,
        oldest_enqueued=10.0,
        earliest_deadline=math.inf,
        alone=True,
    )
    assert (d.rows, d.wait_until) == (0, 10.005)


def test_cost_model_counts_every_device_of_every_pod() -> None:
    policy = BatchingPolicy(32, max_queue_delay_s=0.01)
    one = LoadView(1500.0, SIM, 1)
    four = LoadView(1500.0, SIM, 4)
    assert rows_to_keep_up(policy, four) < rows_to_keep_up(policy, one)


def test_overload_asks_for_the_largest_batch() -> None:
    policy = BatchingPolicy(32, max_queue_delay_s=0.01)
    assert rows_to_keep_up(policy, LoadView(5000.0, SIM, 1)) == 32


def test_max_queue_delay_bounds_the_cost_model_wait() -> None:
    policy = BatchingPolicy(32, max_queue_delay_s=0.002)
    slow_arrivals = LoadView(arrival_rows_per_s=1500.0, cost=SIM, devices=1)
    _, _, until = at(policy, slow_arrivals, 2, now=10.0, oldest=9.9995)
    assert math.isclose(until, 10.0015)


def test_cost_model_fits_f_and_c_from_observed_batches() -> None:
    model = CostModel(min_batches=3)
    assert model.fit() is None
    for n in (1, 8, 16, 32, 4, 24):
        model.observe(n, SIM.seconds(n))
    fit = model.fit()
    assert fit is not None
    assert math.isclose(fit.fixed_s, 0.008, rel_tol=1e-6)
    assert math.isclose(fit.per_row_s, 0.00025, rel_tol=1e-6)
    assert math.isclose(fit.throughput(32, 1), 2000.0, rel_tol=1e-6)


def test_cost_model_with_one_batch_size_puts_it_all_in_f() -> None:
    model = CostModel(min_batches=2)
    for _ in range(5):
        model.observe(8, 0.01)
    fit = model.fit()
    assert fit is not None
    assert math.isclose(fit.fixed_s, 0.01) and fit.per_row_s == 0.0


def test_admission_rejects_a_wait_beyond_the_limit_or_the_deadline() -> None:
    from gateway.batching.admission import estimated_wait_s, rejection_reason

    assert estimated_wait_s(100, None, 1, 32) is None  # unknown cost: admit
    wait = estimated_wait_s(4000, SIM, 1, 32)  # 4000 rows at 2000 rows/s
    assert wait is not None and math.isclose(wait, 2.0)
    assert rejection_reason(now=0.0, deadline=10.0, wait_s=wait, max_wait_s=None) is None
    reason = rejection_reason(now=0.0, deadline=10.0, wait_s=wait, max_wait_s=1.0)
    assert reason == "estimated queue wait 2000 ms exceeds 1000 ms"
    reason = rejection_reason(now=0.0, deadline=1.5, wait_s=wait, max_wait_s=None)
    assert reason is not None and "remaining 1500 ms" in reason


def test_a_batch_for_a_busy_pod_gathers_rows_until_just_before_it_must_leave() -> None:
    policy = BatchingPolicy(32, preferred_batch_sizes=(8,), max_queue_delay_s=0.001)
    load = LoadView(1500.0, SIM, 1)
    # The oldest request waited past max_queue_delay and a preferred size is reached, yet the
    # pod cannot start the batch for 10 ms: it waits, and more rows can join.
    held = at(policy, load, 9, now=10.0, oldest=9.9, send_at=10.010)
    assert held[0] == 0
    assert held[2] == 10.010 - policy.send_lead_s
    # Once it is time to leave, Triton's rules apply again.
    due = at(policy, load, 9, now=10.0096, oldest=9.9, send_at=10.010)
    assert due[:2] == (8, "preferred")


def test_a_busy_pod_still_gets_a_full_batch_or_one_a_deadline_needs_at_once() -> None:
    policy = BatchingPolicy(32, max_queue_delay_s=0.005)
    load = LoadView(1500.0, SIM, 1)
    full = at(policy, load, 32, now=10.0, oldest=10.0, send_at=10.010)
    assert full[:2] == (32, "full")
    urgent = at(
        policy, load, 4, now=10.0, oldest=10.0, send_at=10.010, deadline=10.0 + SIM.seconds(4)
    )
    assert urgent[:2] == (4, "deadline")
    # A deadline between now and the planned send bounds the wait.
    waits = at(
        policy,
        load,
        4,
        now=10.0,
        oldest=10.0,
        send_at=10.010,
        deadline=10.0 + SIM.seconds(4) + 0.003,
    )
    assert waits[0] == 0 and math.isclose(waits[2], 10.003)


def test_cost_model_tracks_the_quick_end_of_noisy_batches() -> None:
    # Device time is exact; a tenth of the batches lose 0-6 ms more to noise (a late arrival
    # at the pod, a stalled answer). The mean fit absorbs the noise; quick_seconds does not.
    import random

    rng = random.Random(7)
    model = CostModel()
    for _ in range(3000):
        rows = rng.randint(1, 32)
        noise = rng.uniform(0.0, 0.006) if rng.random() < 0.5 else 0.0
        model.observe(rows, SIM.seconds(rows) + noise)
    fit = model.fit()
    assert fit is not None
    assert fit.seconds(20) > SIM.seconds(20) + 0.001  # the mean is pulled up by the noise
    assert abs(fit.quick_seconds(20) - SIM.seconds(20)) < 0.0008


def test_a_pod_too_fast_to_time_never_divides_by_zero() -> None:
    from gateway.batching.admission import estimated_wait_s

    free = BatchCost(0.0, 0.0)  # answers as fast as the round trip: no device time seen
    assert free.throughput(32, 1) == math.inf
    assert estimated_wait_s(100, free, 1, 32) == 0.0
    assert rows_to_keep_up(BatchingPolicy(32), LoadView(5000.0, free, 1)) == 1
    model = CostModel(min_batches=1)
    model.observe(4, 0.0)
    model.observe(8, 0.0)
    fit = model.fit()
    assert fit is not None and fit.quick_seconds(8) == 0.0


@settings(max_examples=300, deadline=None)
@given(
    rows=st.integers(0, 40),
    waited=st.floats(0, 0.02),
    slack=st.floats(0, 0.2),
    lead=st.floats(-0.01, 0.03),
    rate=st.floats(0, 5000),
    fitted=st.booleans(),
    alone=st.booleans(),
)
def test_every_batch_sent_names_one_of_the_reasons_the_metrics_count(
    rows: int, waited: float, slack: float, lead: float, rate: float, fitted: bool, alone: bool
) -> None:
    policy = BatchingPolicy(32, preferred_batch_sizes=(8,), max_queue_delay_s=0.005)
    now = 10.0
    d = decide(
        policy,
        LoadView(rate, SIM if fitted else None, 1),
        now=now,
        batch_rows=rows,
        oldest_enqueued=now - waited,
        earliest_deadline=now + slack,
        send_at=now + lead,
        alone=alone,
    )
    if d.rows:
        assert d.reason in SEND_REASONS and d.rows <= min(rows, 32)
    else:
        assert d.reason == "" and d.wait_until > now


# A batch of each reason decide gives (rows, its keyword arguments), in SEND_REASONS' order.
ONE_OF_EACH: dict[str, tuple[int, dict[str, Any]]] = {
    "full": (40, {}),
    "deadline": (3, {"earliest_deadline": 10.001}),  # 8.75 ms of service left 1 ms
    "preferred": (9, {}),
    "max_queue_delay": (3, {"oldest_enqueued": 9.99}),  # waited 10 ms of 5
    "idle_pod": (3, {"alone": True}),
    "cost_model": (3, {}),  # at 100 rows/s one row a batch keeps up
}


@pytest.mark.parametrize("reason", ONE_OF_EACH)
def test_each_reason_to_send_is_given_where_its_rule_holds(reason: str) -> None:
    policy = BatchingPolicy(32, preferred_batch_sizes=(8,), max_queue_delay_s=0.005)
    rows, kwargs = ONE_OF_EACH[reason]
    args: dict[str, Any] = {"oldest_enqueued": 10.0, "earliest_deadline": math.inf, **kwargs}
    d = decide(policy, LoadView(100.0, SIM, 1), now=10.0, batch_rows=rows, **args)
    assert d.reason == reason and d.rows > 0


def test_the_reasons_counted_are_the_policys_and_the_docs_name_each() -> None:
    assert tuple(ONE_OF_EACH) == SEND_REASONS  # every rule of decide's has its case above
    root = Path(__file__).resolve().parents[4]
    for doc in ("README.md", "docs/observability.md"):
        text = (root / doc).read_text()
        missing = [r for r in ALL_SEND_REASONS if not re.search(rf"\b{r}\b", text)]
        assert not missing, f"{doc} does not name {missing}"
