"""``loadtest load``: one closed-loop run against a running server, as a table."""

from __future__ import annotations

import argparse

from loadtest.clients.base import is_grpc
from loadtest.commands import options

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser("load", help="one closed-loop run against a running server")
    options.add_load_options(p, duration=5.0)
    options.add_option(p, "protocol")
    p.add_argument(
        "--target",
        default=None,
        help="http://host:port or host:port for grpc (default: the local gateway)",
    )
    p.add_argument("--model", default="sim", help="model name (default sim)")


def run(args: argparse.Namespace) -> int:
    from loadtest.clients.base import ClientSpec
    from loadtest.clients.payload import SimPayload
    from loadtest.generators.closed_loop import ClosedLoopConfig, run_closed_loop
    from loadtest.results.report import fmt_rate, fmt_us, machine_note, print_table

    target = args.target or (
        "127.0.0.1:8001" if is_grpc(args.protocol) else "http://127.0.0.1:8000"
    )
    payload = SimPayload(model=args.model, rows=args.rows)
    spec = ClientSpec(args.protocol, target, payload, verify_every=args.verify_every)
    result = run_closed_loop(spec, options.config_from(args, ClosedLoopConfig))
    s = result.summary()
    errors = ", ".join(f"{k}: {v}" for k, v in result.errors.items()) or "none"
    print_table(
        f"Closed loop, {args.protocol} -> {target}",
        ["req/s", "p50", "p99", "max", "ok", "verified", "errors"],
        [
            [
                fmt_rate(result.throughput),
                fmt_us(s.p50_us),
                fmt_us(s.p99_us),
                fmt_us(s.max_us),
                str(result.ok),
                str(result.verified),
                errors,
            ]
        ],
        [result.error_sample, machine_note()] if result.error_sample else [machine_note()],
    )
    return 1 if result.error_count or result.ok == 0 else 0
