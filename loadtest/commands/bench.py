"""``loadtest bench``: the gateway's data path vs direct to the pod, per protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.argtypes import POSITIVE_INT
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser("bench", help="gateway vs direct data-path benchmark, per protocol")
    options.add_load_options(p, duration=5.0)
    options.add_option(p, "protocols")
    p.add_argument(
        "--rounds",
        type=POSITIVE_INT,
        default=1,
        help="direct/gateway alternations per protocol, merged (default 1)",
    )
    options.add_pod_options(p, fixed_ms=0.0, per_row_ms=0.0, cost_prefix="pod-")
    options.add_options(p, "backend-protocol")
    options.add_option(p, "json", default=Path("reports/bench-datapath.json"))


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.datapath import BenchConfig, run_bench

    figures = run_bench(options.config_from(args, BenchConfig))
    failed = any(f.direct.result.error_count or f.gateway.result.error_count for f in figures)
    return 1 if failed else 0
