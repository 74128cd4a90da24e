"""``loadtest discovery``: discovery's CPU and event-to-routing delay under endpoint churn."""

from __future__ import annotations

import argparse

from loadtest.argtypes import POSITIVE, POSITIVE_INT
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "discovery", help="discovery's CPU and event-to-routing delay under endpoint churn"
    )
    p.add_argument("--endpoints", type=POSITIVE_INT, default=2000, help="endpoints (default 2000)")
    p.add_argument(
        "--slice-size", type=POSITIVE_INT, default=100, help="endpoints per slice (default 100)"
    )
    p.add_argument("--churn", type=POSITIVE, default=100.0, help="endpoint changes/s (default 100)")
    options.add_option(p, "duration", default=10.0, help="seconds of churn (default {default})")


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.discovery import DiscoveryBenchConfig, run_discovery_bench

    run_discovery_bench(options.config_from(args, DiscoveryBenchConfig, churn_per_s=args.churn))
    return 0
