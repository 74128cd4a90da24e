"""The autoscaling simulation benchmark: it runs every policy on every trace, deterministically."""

from __future__ import annotations

from loadtest.benches.autoscale import BenchConfig, run_bench
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


def test_the_cli_has_the_sub_command() -> None:
    args = build_parser().parse_args(["autoscale-bench", "--startup-s", "5"])
    assert (args.command, args.startup_s) == ("autoscale-bench", 5.0)
