"""``loadtest ab``: the same load against two targets, alternating rounds; B/A ratios."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from loadtest.argtypes import POSITIVE, POSITIVE_INT
from loadtest.commands import options

__all__ = ["add_parser", "run"]


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


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "ab",
        help="the same load against two targets, alternating rounds; B/A ratios",
        description="Targets: http://HOST:PORT, HOST:PORT (gRPC), or started here: pod[:opts], "
        "gateway[:opts] with opts batch, nobatch, pods=N, gateways=N, F=MS, c=MS, max-batch=N, "
        "trace=RATIO (gateway: tracing on, 0 <= RATIO <= 1 of requests sampled, spans sent "
        "over OTLP to a loopback collector started here), triton (gateway: in front of a real "
        "Triton started here), or triton[:batched] (that Triton directly; batched: its own "
        "dynamic batcher) "
        "(e.g. --a pod --b gateway, --a gateway:nobatch --b gateway:batch, "
        "--a gateway --b gateway:gateways=2, --a gateway --b gateway:trace=0.01, "
        "--a gateway:triton --b triton:batched).",
    )
    p.add_argument("--a", required=True, type=_checked(_target), help="target A (the baseline)")
    p.add_argument("--b", required=True, type=_checked(_target), help="target B")
    options.add_option(p, "protocol")
    p.add_argument(
        "--rate",
        type=POSITIVE,
        default=None,
        help="open loop at this many req/s (default: closed)",
    )
    options.add_load_options(p, duration=5.0)
    p.add_argument("--rounds", type=POSITIVE_INT, default=3, help="A/B alternations (default 3)")
    options.add_options(p, "timeout", timeout=30.0)
    options.add_pod_options(p, fixed_ms=0.0, per_row_ms=0.0)
    options.add_options(p, "max-queue-delay-us")
    options.add_option(
        p,
        "gateways",
        type=POSITIVE_INT,
        default=1,
        help="replicas of a gateway side that names none (gateways=N), the load spread evenly "
        "over them (default {default})",
    )
    p.add_argument(
        "--a-pids", type=_checked(_pids), default="", help="A's processes: NAME=PID,... for CPU"
    )
    p.add_argument("--b-pids", type=_checked(_pids), default="", help="B's processes: NAME=PID,...")
    options.add_option(p, "json", default=Path("reports/bench-ab.json"))


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.ab_run import AbConfig, run_ab_bench

    result = run_ab_bench(options.config_from(args, AbConfig))
    failed = any(leg.result.error_count or leg.result.ok == 0 for leg in result.legs)
    return 1 if failed else 0
