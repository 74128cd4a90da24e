"""``loadtest autoscale-bench``: simulated autoscaling, this decider vs HPA- and KPA-style."""

from __future__ import annotations

import argparse

from loadtest.argtypes import NON_NEGATIVE, POSITIVE
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "autoscale-bench", help="simulated autoscaling: this decider vs HPA- and KPA-style"
    )
    options.add_option(p, "duration", default=600.0, help="trace seconds (default {default})")
    p.add_argument(
        "--startup-s",
        type=NON_NEGATIVE,
        default=15.0,
        help="pod start-up delay in seconds (default 15)",
    )
    p.add_argument(
        "--latency-ms", type=POSITIVE, default=100.0, help="latency target in ms (default 100)"
    )
    p.add_argument(
        "--base-rate",
        type=POSITIVE,
        default=1500.0,
        help="base arrival rate, rows/s (default 1500)",
    )


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.autoscale import BenchConfig, run_bench

    config = options.config_from(
        args, BenchConfig, latency_target_ms=args.latency_ms, base_rows_per_s=args.base_rate
    )
    run_bench(config)
    return 0
