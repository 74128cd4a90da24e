"""A step from a third of one pod's limit to three times it scales the Deployment up at once,
and the decision says why: it is counted in ``autoscaler_decisions_total`` under
``queue_growth`` (the gateway's queue grows faster than the pods drain it) or ``panic``.

Requests carry two rows, so three pods' worth of rows stays under 500 requests a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from autoscaler.spec import ScalingSpec
from tests.integration.loop.loop_stack import SLOW, Load, Stack, eventually, stack_of

ROWS = 2
BASE = 0.3 * SLOW.pod.limit_rows_s / ROWS  # requests a second
PEAK = 3.0 * SLOW.pod.limit_rows_s / ROWS
REASONS = ("queue_growth", "panic")
# The reaction's reasons, or on a loaded machine (reports late, windows long past the step) the
# stable window's, or the limits that capped the step: any reason a scale-up is counted under.
UP_REASONS = (*REASONS, "stable", "rate_limit_up", "max_replicas")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack_of(tmp_path_factory.mktemp("step"), scaling={"stable_window_s": 10}) as stack:
        yield stack


@pytest.fixture(scope="module")
def load(stack: Stack) -> Iterator[Load]:
    with Load(stack.gateway.http_url, BASE, rows=ROWS) as load:
        yield load


def test_the_base_load_is_served_by_one_pod(stack: Stack, load: Load) -> None:
    eventually(lambda: stack.decisions("stable") > 0, "a stable decision on the base load")
    assert stack.replicas() == 1
    assert not any(stack.decisions(reason) for reason in REASONS)


def test_a_step_to_three_times_a_pods_limit_scales_up(stack: Stack, load: Load) -> None:
    stepped = time.monotonic()
    load.rate = PEAK
    eventually(lambda: stack.replicas() >= 2, "a scale-up after the step")
    patched = time.monotonic()
    eventually(lambda: stack.ready() >= 3, "three ready pods")
    print(
        f"step to {PEAK:.0f} req/s x {ROWS} rows: first patch after "
        f"{patched - stepped:.2f} s, 3 pods ready after {time.monotonic() - stepped:.2f} s "
        f"(replicas {stack.replicas()})"
    )


def test_the_scale_up_is_counted_under_its_reason(stack: Stack, load: Load) -> None:
    counts = {reason: stack.decisions(reason) for reason in UP_REASONS}
    assert any(counts.values()), counts


def test_the_new_pods_start_up_is_learnt(stack: Stack, load: Load) -> None:
    """The autoscaler's patch and the gateway's ready endpoints meet: the start-up measured
    from one to the other replaces the prior (the spec's default)."""
    prior = ScalingSpec().startup_s
    eventually(
        lambda: stack.autoscaler_metric("autoscaler_pod_startup_samples_total") >= 1,
        "a start-up sample once the asked-for pods are ready",
    )
    assert stack.autoscaler_metric("autoscaler_pod_startup_seconds") != prior
