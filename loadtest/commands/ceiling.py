"""``loadtest ceiling``: the requests/s one generator process can send, per protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.argtypes import number_list
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser("ceiling", help="requests/s one generator process can send, per protocol")
    options.add_option(p, "protocols", help=None)
    p.add_argument(
        "--rates",
        type=number_list(float, strict=True),
        default=None,
        help="the ladder, req/s (a,b,...)",
    )
    options.add_option(p, "duration", default=3.0, help="s per step (default {default})")
    options.add_option(p, "warmup")
    options.add_option(p, "json", default=Path("reports/bench-ceiling.json"))


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.ceiling import DEFAULT_RATES, CeilingConfig, run_ceiling

    figures = run_ceiling(
        options.config_from(args, CeilingConfig, rates=args.rates or DEFAULT_RATES)
    )
    return 0 if all(f.best is not None for f in figures) else 1
