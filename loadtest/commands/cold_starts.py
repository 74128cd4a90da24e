"""``loadtest cold-starts``: fresh stacks loaded at once from cold, N gateways on the same pods;
it fails if any start collapses (a 429, or p50 over 3x one gateway's)."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.argtypes import POSITIVE, POSITIVE_INT
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "cold-starts",
        help="fresh stacks loaded at once from cold: does any start collapse (429s, p50 > 3x)?",
        description="A baseline run (fresh pods, one fresh gateway), then --starts runs for "
        "each --gateways count, each on fresh pods and fresh gateways, loaded at once with "
        "open-loop 1-row requests at --fraction of the pods' limit, spread over the gateways, "
        "no warm-up. A start collapsed if it got any 429 or its p50 is over 3x the baseline's; "
        "the exit code is 1 if any did.",
    )
    p.add_argument(
        "--starts",
        type=POSITIVE_INT,
        default=10,
        help="fresh starts per gateway count (default 10)",
    )
    options.add_option(
        p,
        "gateways",
        default=(2,),
        help="gateway replicas in front of the same pods, the load spread evenly over them; "
        "a list a,b,… runs --starts for each count (default 2)",
    )
    options.add_option(p, "pods", default=1)
    p.add_argument(
        "--fraction",
        type=POSITIVE,
        default=0.6,
        help="offered load, a fraction of the pods' physical limit (default 0.6)",
    )
    options.add_option(p, "duration", default=8.0, help="s of load per run (default {default})")
    options.add_option(p, "protocol", default="http-json", help="default http-json")
    options.add_option(
        p,
        "processes",
        type=POSITIVE_INT,
        default=None,
        help="generator processes (default: one per 2,500 req/s offered, a multiple of the "
        "gateways)",
    )
    options.add_options(p, "timeout", "seed", "max-queue-delay-us", timeout=2.0)
    options.add_pod_options(p, fixed_ms=8.0, per_row_ms=0.25)
    options.add_option(p, "json", default=Path("reports/bench-cold-starts.json"))


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.cold_starts import ColdStartsConfig, run_cold_starts

    try:
        config = options.config_from(args, ColdStartsConfig)
    except ValueError as exc:
        raise SystemExit(f"loadtest cold-starts: {exc}") from None
    try:
        report = run_cold_starts(config)
    except RuntimeError as exc:  # the baseline served nothing: there is no reference
        raise SystemExit(f"loadtest cold-starts: {exc}") from None
    return 1 if report.collapsed() else 0
