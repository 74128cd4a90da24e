"""``loadtest stack`` (``make run``): the whole loop — control plane, autoscaler, gateway."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.argtypes import NON_NEGATIVE, POSITIVE, POSITIVE_INT
from loadtest.commands import options

__all__ = ["add_parser", "run"]

_PORTS = (
    ("http", "gateway HTTP", 8000),
    ("grpc", "gateway gRPC", 8001),
    ("metrics", "gateway metrics", 8002),
    ("autoscaler-grpc", "autoscaler load reports", 8090),
    ("autoscaler-metrics", "autoscaler metrics", 8091),
)


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "stack", help="run the whole loop (control plane, autoscaler, gateway) in the foreground"
    )
    options.add_option(p, "pods", default=1, help="the Deployment's replicas at start (default 1)")
    for name, what, port in _PORTS:
        p.add_argument(f"--{name}-port", type=int, default=port, help=f"{what} (default {port})")
    p.add_argument(
        "--kubeconfig",
        type=Path,
        default=Path(".run/kubeconfig"),
        help="where the control plane's kubeconfig is written (default .run/kubeconfig)",
    )
    p.add_argument(
        "--max-replicas", type=POSITIVE_INT, default=8, help="the autoscaler's bound (default 8)"
    )
    p.add_argument(
        "--startup-s", type=NON_NEGATIVE, default=3.0, help="a new pod's start-up (default 3)"
    )
    p.add_argument(
        "--latency-target-ms",
        type=POSITIVE,
        default=100.0,
        help="capacity mode's batch latency target (default 100)",
    )
    options.add_pod_options(p, fixed_ms=20.0, per_row_ms=2.0, max_batch=16)


def run(args: argparse.Namespace) -> int:
    from loadtest.stack.loop import LoopConfig, run_loop

    return run_loop(options.config_from(args, LoopConfig))
