"""``loadtest goodput``: goodput at a p99 SLO with and without batching, vs the pods' limit."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from loadtest.argtypes import COUNT, POSITIVE, POSITIVE_INT, choice_list, number_list
from loadtest.commands import options

RUNTIMES = ("simpod", "triton")  # as loadtest.benches.goodput's (not imported here: it is heavy)

__all__ = ["add_parser", "run"]


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "goodput", help="goodput at a p99 SLO with and without batching, vs the pods' limit"
    )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="simpod",
        help="what serves the model: simulated pods (default), or a real Triton (the gateway in "
        "front of it beside Triton's own batcher, vs the limit measured in the run; one Triton, "
        "so no --pods or --modes; F, c and max batch from the model repository)",
    )
    options.add_option(
        p,
        "pods",
        type=number_list(int, 1, strict=False),
        default=None,
        help="pod counts (default 1,2)",
    )
    options.add_options(p, "gateways")
    p.add_argument(
        "--modes",
        type=choice_list(("batching", "none")),
        default=None,
        help="batching,none (default both)",
    )
    options.add_sweep_options(p)
    options.add_option(p, "duration", default=4.0, help="s per step (default {default})")
    options.add_option(
        p,
        "processes",
        type=POSITIVE_INT,
        default=None,
        help="generator processes (default: one per 2,500 req/s offered)",
    )
    p.add_argument(
        "--fractions",
        type=number_list(float, strict=True),
        default=None,
        help="offered loads, fractions of the limit (default: a grid from 0.02 to 1.1; with "
        "--runtime triton 0.5 to 1.0)",
    )
    p.add_argument("--refine", type=COUNT, default=2, help="bisection steps after the grid")
    p.add_argument(
        "--repeats",
        type=POSITIVE_INT,
        default=1,
        help="sweeps per pod count and mode; the summary shows the median (default 1)",
    )
    p.add_argument(
        "--target",
        help="sweep a running server instead (http://HOST:PORT, HOST:PORT for gRPC); needs --limit",
    )
    p.add_argument("--limit", type=POSITIVE, help="with --target: the rows/s the fractions are of")
    p.add_argument(
        "--metrics",
        help="with --target: the gateway's metrics URL (batch sizes, waiting out a backlog)",
    )
    options.add_options(p, "pid")
    p.add_argument(
        "--invalid-retries",
        type=COUNT,
        default=2,
        help="reruns of a step whose generator fell behind (default 2)",
    )
    p.add_argument(
        "--error-tolerance",
        type=float,
        default=0.001,
        help="errors allowed, fraction of requests (default 0.001)",
    )
    options.add_options(p, "max-queue-delay-us", "backend-protocol")
    p.add_argument(
        "--inflight-per-pod",
        type=POSITIVE_INT,
        default=None,
        help="gateway max_inflight_per_pod (default: the gateway's)",
    )
    options.add_pod_options(p, fixed_ms=8.0, per_row_ms=0.25)
    options.add_option(p, "json", default=Path("reports/bench-goodput.json"))


def runtime_values(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields that depend on ``--runtime``: pods, modes and the grid; SystemExit for
    options that go without it."""
    from loadtest.benches.goodput_sweep import DEFAULT_GRID, MODES

    if args.runtime == "simpod":
        grid = args.fractions or DEFAULT_GRID
        return {"pods": args.pods or (1, 2), "modes": args.modes or MODES, "grid": grid}
    from loadtest.benches.goodput_triton import DEFAULT_TRITON_GRID, SIDES

    for flag, given in (("--pods", args.pods), ("--modes", args.modes), ("--target", args.target)):
        if given is not None:
            raise SystemExit(f"loadtest goodput: --runtime triton goes without {flag}")
    return {"pods": (1,), "modes": SIDES, "grid": args.fractions or DEFAULT_TRITON_GRID}


def run(args: argparse.Namespace) -> int:
    from loadtest.benches.goodput import GoodputConfig, run_goodput

    if args.target is not None and args.limit is None:
        raise SystemExit(
            "loadtest goodput: --target needs --limit (the rows/s it can serve at most)"
        )
    if args.target is not None and args.gateways != (1,):
        raise SystemExit("loadtest goodput: --gateways starts gateways; it goes without --target")
    config = options.config_from(
        args,
        GoodputConfig,
        **runtime_values(args),
        target_limit_rows_s=args.limit,
        target_metrics=args.metrics,
        target_pids=tuple(args.pid),
    )
    sweeps = run_goodput(config)
    return 0 if all(s.goodput is not None for s in sweeps) else 1
