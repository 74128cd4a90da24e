"""``loadtest tenants``: a flooding tenant and a light one on slow pods, fair share vs FIFO."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.argtypes import POSITIVE, choice_list
from loadtest.clients.base import STANDARD_KINDS
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "tenants",
        help="tenant A floods (3x the pods' capacity), B stays light (0.3x): fair share vs FIFO",
    )
    options.add_option(p, "pods")
    options.add_option(
        p,
        "protocol",
        choices=STANDARD_KINDS,
        default="http-binary",
        help="default http-binary (a grpc-stream refusal does not say it is a 429)",
    )
    p.add_argument(
        "--modes",
        type=choice_list(("fair", "fifo")),
        default=("fair", "fifo"),
        help="fair (fair_share: true), fifo (false); default fair,fifo",
    )
    p.add_argument(
        "--a-load", type=POSITIVE, default=3.0, help="A's offered load, x capacity (default 3)"
    )
    p.add_argument(
        "--b-load", type=POSITIVE, default=0.3, help="B's offered load, x capacity (default 0.3)"
    )
    options.add_options(p, "rows", "warmup", "timeout", "seed", warmup=5.0, timeout=5.0)
    options.add_option(p, "duration", default=20.0, help="s measured per mode (default {default})")
    options.add_option(
        p, "slo-ms", default=200.0, help="goodput's latency SLO, ms (default {default})"
    )
    options.add_options(p, "max-queue-delay-us")
    options.add_pod_options(p, fixed_ms=20.0, per_row_ms=2.0, max_batch=8)
    options.add_option(p, "json", default=Path("reports/bench-tenants.json"))


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.tenants import TenantsConfig, run_tenants

    runs = run_tenants(options.config_from(args, TenantsConfig))
    return 0 if runs else 1
