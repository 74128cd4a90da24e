"""The ``loadtest trace`` sub-command: its arguments and its run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from loadtest.argtypes import COUNT, NON_NEGATIVE, POSITIVE, POSITIVE_INT, name_pid
from loadtest.clients.base import CLIENT_KINDS
from loadtest.traces.shapes import INTERPOLATIONS, TRACE_KINDS

__all__ = ["add_trace_parser", "run_trace_command"]


def add_trace_parser(sub: Any) -> None:
    """Add ``trace`` to the ``loadtest`` sub-commands."""
    p = sub.add_parser(
        "trace",
        help="a load trace (step, ramp, spike, square, file) against the stack: table, JSON, PNGs",
        description=(
            "Open-loop Poisson load whose rate follows a trace, against a stack started like "
            "`make run` (default) or a running one (--target). Rates are requests/s. Shapes "
            "default to 200 -> 600 req/s over 30 s. A trace file has `timestamp_s,rate` lines; "
            "between them the rate is interpolated linearly (--interpolation hold: each rate "
            "holds until the next line); --trace diurnal (or file without --trace-file) is "
            "the packaged example, a day in 120 s."
        ),
    )
    p.add_argument("--trace", choices=TRACE_KINDS, default="step", help="the shape (step)")
    p.add_argument("--base-rate", type=NON_NEGATIVE, help="req/s before/between (200)")
    p.add_argument(
        "--peak-rate",
        type=POSITIVE,
        help="req/s at the peak (600; file: rescale)",
    )
    p.add_argument(
        "--duration",
        type=POSITIVE,
        help="trace seconds (30; file: stretch its time)",
    )
    p.add_argument("--at-s", type=POSITIVE, help="step/spike time (default half-way)")
    p.add_argument("--width-s", type=POSITIVE, default=2.0, help="spike length (2 s)")
    p.add_argument("--period-s", type=POSITIVE, default=10.0, help="square period (10)")
    p.add_argument("--trace-file", type=Path, help="CSV of timestamp_s,rate lines (--trace file)")
    p.add_argument(
        "--interpolation", choices=INTERPOLATIONS, default="linear", help="for files (linear)"
    )
    p.add_argument(
        "--protocol",
        choices=CLIENT_KINDS,
        default="http-binary",
        help="default http-binary (the generator's cheapest)",
    )
    p.add_argument("--rows", type=POSITIVE_INT, default=1, help="rows per request (default 1)")
    p.add_argument(
        "--processes",
        type=COUNT,
        default=1,
        help="generator processes; 0 runs in this process (default 1)",
    )
    p.add_argument("--slo-ms", type=POSITIVE, default=50.0, help="goodput SLO (50 ms)")
    p.add_argument("--warmup", type=NON_NEGATIVE, default=1.0, help="s at the first rate (1)")
    p.add_argument("--timeout", type=POSITIVE, default=2.0, help="per request, s (2)")
    p.add_argument("--seed", type=int, default=1, help="arrival seed (default 1)")
    p.add_argument("--out", type=Path, help="output folder (default reports/trace-<name>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--target",
        help="a running stack: http://host:port (host:port for grpc); default: start one",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        default=[],
        metavar="URL",
        help="with --target: metrics URLs to scrape (gateway :8002/metrics, pods' /metrics)",
    )
    p.add_argument(
        "--pid", type=name_pid, action="append", default=[], help="with --target: NAME=PID for CPU"
    )
    p.add_argument("--pods", type=POSITIVE_INT, default=2, help="own stack: pods (2)")
    p.add_argument("--fixed-ms", type=NON_NEGATIVE, default=8.0, help="pod F (8 ms)")
    p.add_argument("--per-row-ms", type=NON_NEGATIVE, default=0.25, help="pod c (0.25 ms/row)")
    p.add_argument("--max-batch", type=POSITIVE_INT, default=32, help="pod max batch (32)")


def run_trace_command(args: argparse.Namespace) -> int:
    from loadtest.stack.local import StackConfig
    from loadtest.traces.run import TraceConfig, run_trace
    from loadtest.traces.shapes import TraceFileError, build_trace

    if (args.metrics or args.pid) and not args.target:
        print("--metrics and --pid go with --target (a running stack)")
        return 2
    try:
        trace = build_trace(
            args.trace,
            base=args.base_rate,
            peak=args.peak_rate,
            duration_s=args.duration,
            at_s=args.at_s,
            width_s=args.width_s,
            period_s=args.period_s,
            path=args.trace_file,
            interpolation=args.interpolation,
        )
    except (TraceFileError, ValueError) as exc:
        print(f"bad trace: {exc}")
        return 2
    config = TraceConfig(
        trace=trace,
        protocol=args.protocol,
        rows=args.rows,
        processes=args.processes,
        slo_ms=args.slo_ms,
        warmup_s=args.warmup,
        timeout_s=args.timeout,
        seed=args.seed,
        out_dir=args.out,
        target=args.target,
        metrics=tuple(args.metrics),
        pids=tuple(args.pid),
        stack=StackConfig(
            pods=args.pods,
            fixed_ms=args.fixed_ms,
            per_row_ms=args.per_row_ms,
            max_batch=args.max_batch,
        ),
        plots=not args.no_plots,
    )
    run = run_trace(config)
    return 0 if run.result.ok else 1
