"""``loadtest stack`` (``make run``): simulated pods and the gateway in the foreground."""

from __future__ import annotations

import argparse

from loadtest.commands import options

__all__ = ["add_parser", "run"]

_GATEWAY_PORTS = (("http", "HTTP", 8000), ("grpc", "gRPC", 8001), ("metrics", "metrics", 8002))


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser("stack", help="run simulated pods and the gateway in the foreground")
    options.add_option(p, "pods")
    for name, what, port in _GATEWAY_PORTS:
        p.add_argument(
            f"--{name}-port", type=int, default=port, help=f"gateway {what} (default {port})"
        )
    p.add_argument(
        "--pod-base-port",
        type=int,
        default=9000,
        help="pod i serves HTTP on BASE+10i and gRPC on BASE+10i+1 (default 9000)",
    )
    options.add_pod_options(p, fixed_ms=8.0, per_row_ms=0.25)


def run(args: argparse.Namespace) -> int:
    from loadtest.stack.local import StackConfig, run_stack

    return run_stack(options.config_from(args, StackConfig))
