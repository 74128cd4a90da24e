"""``loadtest receiver-bench``: LoadReports per second the autoscaler takes on one core."""

from __future__ import annotations

import argparse

from loadtest.argtypes import POSITIVE_INT
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "receiver-bench",
        help="LoadReports/s the autoscaler decodes and aggregates per core (in-process and "
        "over gRPC), and its decision tick over many models",
    )
    p.add_argument("--gateways", type=POSITIVE_INT, default=100, help="gateway replicas (100)")
    p.add_argument("--models", type=POSITIVE_INT, default=200, help="models (200)")
    options.add_option(p, "duration", default=3.0, help="seconds per measurement ({default})")
    p.add_argument("--ticks", type=POSITIVE_INT, default=20, help="decision ticks timed (20)")
    p.add_argument("--streams", type=POSITIVE_INT, default=2, help="gRPC client processes (2)")
    p.add_argument(
        "--grpc-reports", type=POSITIVE_INT, default=200_000, help="reports sent over gRPC"
    )
    options.add_option(p, "json", default=None)


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.receiver import ReceiverBenchConfig, run_receiver_bench
    from loadtest.results.report import write_json

    config = options.config_from(args, ReceiverBenchConfig, client_processes=args.streams)
    doc = run_receiver_bench(config)
    if args.json is not None:
        write_json(args.json, doc)
        print(f"wrote {args.json}")
    return 0
