"""The ``loadtest`` sub-commands that compare and combine: ``ab``, ``ceiling``, ``bench-all``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from loadtest.argtypes import COUNT, NON_NEGATIVE, POSITIVE, POSITIVE_INT, choice_list, number_list
from loadtest.benches.bench_all import SECTIONS
from loadtest.clients.base import CLIENT_KINDS, STANDARD_KINDS

__all__ = ["COMMANDS", "add_compare_parsers", "run_compare_command"]

COMMANDS = ("ab", "ceiling", "bench-all")


def _checked(check: Callable[[str], object]) -> Callable[[str], str]:
    """A parser that keeps the text once ``check`` accepts it (its ValueError is the message)."""

    def parse(text: str) -> str:
        try:
            check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return parse


def _target(text: str) -> None:
    from loadtest.benches.ab_setups import parse_setup

    parse_setup(text)


def _pids(text: str) -> None:
    from loadtest.benches.ab_setups import parse_pids

    parse_pids(text)


def _add_ab_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ab",
        help="the same load against two targets, alternating rounds; B/A ratios",
        description="Targets: http://HOST:PORT, HOST:PORT (gRPC), or started here: pod[:opts], "
        "gateway[:opts] with opts batch, nobatch, pods=N, F=MS, c=MS, max-batch=N "
        "(e.g. --a pod --b gateway, --a gateway:nobatch --b gateway:batch).",
    )
    p.add_argument("--a", required=True, type=_checked(_target), help="target A (the baseline)")
    p.add_argument("--b", required=True, type=_checked(_target), help="target B")
    p.add_argument("--protocol", choices=CLIENT_KINDS, default="http-json")
    p.add_argument(
        "--rate",
        type=POSITIVE,
        default=None,
        help="open loop at this many req/s (default: closed)",
    )
    p.add_argument(
        "--concurrency", type=POSITIVE_INT, default=16, help="closed loop, per process (16)"
    )
    p.add_argument("--rounds", type=POSITIVE_INT, default=3, help="A/B alternations (default 3)")
    p.add_argument(
        "--duration", dest="duration_s", type=POSITIVE, default=5.0, help="s per run (default 5)"
    )
    p.add_argument(
        "--warmup", dest="warmup_s", type=NON_NEGATIVE, default=1.0, help="s before each (1)"
    )
    p.add_argument("--processes", type=COUNT, default=1, help="generator processes; 0 in-process")
    p.add_argument("--rows", type=POSITIVE_INT, default=1, help="rows per request (default 1)")
    p.add_argument("--verify-every", type=COUNT, default=16, help="check 1 answer in N (16)")
    p.add_argument(
        "--timeout", dest="timeout_s", type=POSITIVE, default=30.0, help="per-request s (30)"
    )
    p.add_argument("--fixed-ms", type=NON_NEGATIVE, default=0.0, help="started pods' F (0)")
    p.add_argument("--per-row-ms", type=NON_NEGATIVE, default=0.0, help="started pods' c (0)")
    p.add_argument("--max-batch", type=POSITIVE_INT, default=32, help="started pods' (32)")
    p.add_argument("--max-queue-delay-us", type=COUNT, default=5000, help="gateway:batch (5000)")
    p.add_argument(
        "--a-pids", type=_checked(_pids), default="", help="A's processes: NAME=PID,... for CPU"
    )
    p.add_argument("--b-pids", type=_checked(_pids), default="", help="B's processes: NAME=PID,...")
    p.add_argument(
        "--json", dest="json_path", type=Path, default=Path("reports/bench-ab.json"), help="report"
    )


def _add_ceiling_parser(sub: Any) -> None:
    p = sub.add_parser("ceiling", help="requests/s one generator process can send, per protocol")
    p.add_argument("--protocols", type=choice_list(CLIENT_KINDS), default=STANDARD_KINDS)
    p.add_argument(
        "--rates",
        type=number_list(float, strict=True),
        default=None,
        help="the ladder, req/s (a,b,...)",
    )
    p.add_argument("--duration", type=POSITIVE, default=3.0, help="s per step (default 3)")
    p.add_argument("--warmup", type=NON_NEGATIVE, default=1.0, help="s before each (default 1)")
    p.add_argument(
        "--json", type=Path, default=Path("reports/bench-ceiling.json"), help="JSON report"
    )


def _add_bench_all_parser(sub: Any) -> None:
    p = sub.add_parser("bench-all", help="the standard benchmark set, one report (make bench)")
    p.add_argument("--quick", action="store_true", help="seconds-long runs: shows that it works")
    p.add_argument("--out-dir", type=Path, default=Path("reports"), help="default reports/")
    p.add_argument("--sections", type=choice_list(SECTIONS), default=SECTIONS, help="a subset")


def add_compare_parsers(sub: Any) -> None:
    """Add ``ab``, ``ceiling`` and ``bench-all`` to the ``loadtest`` sub-commands."""
    _add_ab_parser(sub)
    _add_ceiling_parser(sub)
    _add_bench_all_parser(sub)


def run_compare_command(args: argparse.Namespace) -> int:
    """Run ``ab``, ``ceiling`` or ``bench-all``; the exit status."""
    if args.command == "ab":
        return _ab(args)
    if args.command == "ceiling":
        return _ceiling(args)
    from loadtest.benches.bench_all import BenchAllConfig, run_bench_all

    doc = run_bench_all(
        BenchAllConfig(out_dir=args.out_dir, quick=args.quick, sections=args.sections)
    )
    return 1 if any("error" in s for s in doc["sections"].values()) else 0


def _ceiling(args: argparse.Namespace) -> int:
    from loadtest.benches.ceiling import CeilingConfig, run_ceiling

    config = CeilingConfig(
        protocols=args.protocols,
        duration_s=args.duration,
        warmup_s=args.warmup,
        json_path=args.json,
    )
    if args.rates:
        config = replace(config, rates=args.rates)
    figures = run_ceiling(config)
    return 0 if all(f.best is not None for f in figures) else 1


def _ab(args: argparse.Namespace) -> int:
    from loadtest.benches.ab_run import AbConfig, run_ab_bench

    result = run_ab_bench(AbConfig(**{f.name: getattr(args, f.name) for f in fields(AbConfig)}))
    failed = any(leg.result.error_count or leg.result.ok == 0 for leg in result.legs)
    return 1 if failed else 0
