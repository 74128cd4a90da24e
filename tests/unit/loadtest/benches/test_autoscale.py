"""The autoscaling simulation benchmark: it runs every policy on every trace, deterministically."""

from __future__ import annotations

import pytest

from autoscaler.spec import Mode
from loadtest.benches.autoscale import BenchConfig, ThisDecider, run_bench, simulate
from loadtest.cli import build_parser


def test_every_policy_runs_on_every_trace_and_the_figures_are_deterministic() -> None:
    config = BenchConfig(duration_s=240.0, startup_s=10.0)
    first = run_bench(config, show=False)
    again = run_bench(config, show=False)
    assert len(first) == 3 * 4
    assert [(o.above_target_s, o.replica_s) for o in first] == [
        (o.above_target_s, o.replica_s) for o in again
    ]
    assert all(o.replica_s > 0 and o.peak_replicas <= config.max_replicas for o in first)


def test_a_step_is_followed_up_and_a_pod_start_up_costs_seconds_above_target() -> None:
    config = BenchConfig(duration_s=240.0, startup_s=10.0)
    [capacity] = [
        o
        for o in run_bench(config, show=False)
        if o.trace == "step x10" and o.policy == "this decider (capacity)"
    ]
    needed = 10 * config.base_rows_per_s / config.pod_rows_per_s
    assert capacity.peak_replicas >= needed
    assert capacity.above_target_s >= config.startup_s


@pytest.mark.parametrize("devices", [1, 2])
def test_the_simulated_pods_have_a_slot_beyond_their_devices_and_are_sized_on_devices(
    devices: int,
) -> None:
    """As the gateway reports a real pod: slots = devices + 1, throughput from the devices.
    A step from 0.3x to 1.1x one pod's limit needs 2 pods at 70% (counting the slots as
    throughput: 1, and 20% of the load shed)."""
    config = BenchConfig(duration_s=120.0, startup_s=5.0, devices_per_pod=devices)
    assert config.slots_per_pod == devices + 1
    assert config.pod_rows_per_s == pytest.approx(devices * 32 / 0.016)
    limit = config.pod_rows_per_s
    policy = ThisDecider(config, Mode.CAPACITY)
    out = simulate(config, lambda t: limit * (1.1 if t >= 20 else 0.3), policy, "step to x1.1")
    assert out.desired[:20] == [1] * 20
    assert out.desired[-1] == 2 and out.direction_changes == 0
    assert out.desired.index(2) <= 22, "within a tick or two of the step, then it stays"


def test_the_cli_has_the_sub_command() -> None:
    args = build_parser().parse_args(["autoscale-bench", "--startup-s", "5"])
    assert (args.command, args.startup_s) == ("autoscale-bench", 5.0)
