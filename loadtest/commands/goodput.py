"""The ``loadtest goodput`` sub-command: its arguments and its run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from loadtest.argtypes import COUNT, POSITIVE, POSITIVE_INT, choice_list, name_pid, number_list
from loadtest.clients.base import CLIENT_KINDS

__all__ = ["add_goodput_parser", "run_goodput_command"]


def add_goodput_parser(sub: Any) -> None:
    """Add ``goodput`` to the ``loadtest`` sub-commands."""
    p = sub.add_parser(
        "goodput", help="goodput at a p99 SLO with and without batching, vs the pods' limit"
    )
    p.add_argument(
        "--pods",
        type=number_list(int, 1, strict=False),
        default=(1, 2),
        help="pod counts (default 1,2)",
    )
    p.add_argument(
        "--modes",
        type=choice_list(("batching", "none")),
        default=("batching", "none"),
        help="batching,none",
    )
    p.add_argument("--rows", type=POSITIVE_INT, default=1, help="rows per request (default 1)")
    p.add_argument("--duration", type=POSITIVE, default=4.0, help="s per step (default 4)")
    p.add_argument("--warmup", type=float, default=1.0, help="s before each step (default 1)")
    p.add_argument("--slo-ms", type=POSITIVE, default=50.0, help="p99 SLO (default 50)")
    p.add_argument(
        "--processes",
        type=POSITIVE_INT,
        default=None,
        help="generator processes (default: one per 2,500 req/s offered)",
    )
    p.add_argument(
        "--protocol",
        choices=CLIENT_KINDS,
        default="http-binary",
        help="default http-binary (the generator's cheapest; see README)",
    )
    p.add_argument(
        "--fractions",
        type=number_list(float, strict=True),
        default=None,
        help="offered loads, fractions of the limit",
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
    p.add_argument(
        "--pid", action="append", type=name_pid, default=[], help="with --target: NAME=PID for CPU"
    )
    p.add_argument("--seed", type=int, default=1, help="arrival seed of the first step (1)")
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
    p.add_argument("--max-queue-delay-us", type=int, default=5000, help="WITH batching (5000)")
    p.add_argument(
        "--inflight-per-pod",
        type=POSITIVE_INT,
        default=None,
        help="gateway max_inflight_per_pod (default: the gateway's)",
    )
    p.add_argument("--fixed-ms", type=float, default=8.0, help="pod F, ms per batch (default 8)")
    p.add_argument("--per-row-ms", type=float, default=0.25, help="pod c, ms/row (default 0.25)")
    p.add_argument("--max-batch", type=POSITIVE_INT, default=32, help="pod max batch (32)")
    p.add_argument(
        "--timeout", type=POSITIVE, default=2.0, help="per-request timeout s (default 2)"
    )
    p.add_argument(
        "--json",
        type=Path,
        default=Path("reports/bench-goodput.json"),
        help="JSON report path (default reports/bench-goodput.json)",
    )


def run_goodput_command(args: argparse.Namespace) -> int:
    from loadtest.benches.goodput import GoodputConfig, run_goodput
    from loadtest.benches.goodput_sweep import DEFAULT_GRID

    if args.target is not None and args.limit is None:
        raise SystemExit(
            "loadtest goodput: --target needs --limit (the rows/s it can serve at most)"
        )
    config = GoodputConfig(
        pods=args.pods,
        modes=args.modes,
        rows=args.rows,
        duration_s=args.duration,
        warmup_s=args.warmup,
        slo_ms=args.slo_ms,
        processes=args.processes,
        protocol=args.protocol,
        grid=args.fractions or DEFAULT_GRID,
        refine=args.refine,
        invalid_retries=args.invalid_retries,
        seed=args.seed,
        repeats=args.repeats,
        error_tolerance=args.error_tolerance,
        fixed_ms=args.fixed_ms,
        per_row_ms=args.per_row_ms,
        max_batch=args.max_batch,
        max_queue_delay_us=args.max_queue_delay_us,
        inflight_per_pod=args.inflight_per_pod,
        timeout_s=args.timeout,
        json_path=args.json,
        target=args.target,
        target_limit_rows_s=args.limit,
        target_metrics=args.metrics,
        target_pids=tuple(args.pid),
    )
    sweeps = run_goodput(config)
    return 0 if all(s.goodput is not None for s in sweeps) else 1
