"""``loadtest bench-all`` (``make bench``): the standard benchmark set, one report."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.argtypes import choice_list
from loadtest.benches.bench_all import SECTIONS
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser("bench-all", help="the standard benchmark set, one report (make bench)")
    p.add_argument("--quick", action="store_true", help="seconds-long runs: shows that it works")
    p.add_argument("--out-dir", type=Path, default=Path("reports"), help="default reports/")
    p.add_argument("--sections", type=choice_list(SECTIONS), default=SECTIONS, help="a subset")


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.bench_all import BenchAllConfig, run_bench_all

    doc = run_bench_all(options.config_from(args, BenchAllConfig))
    return 1 if any("error" in s for s in doc["sections"].values()) else 0
