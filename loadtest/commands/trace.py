"""``loadtest trace``: a load trace against the stack, as a table, JSON and PNG plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.argtypes import NON_NEGATIVE, POSITIVE
from loadtest.commands import options
from loadtest.traces.shapes import INTERPOLATIONS, TRACE_KINDS

__all__ = ["add_parser", "run"]

_DESCRIPTION = (
    "Open-loop Poisson load whose rate follows a trace, against a stack started like "
    "`make run` (default) or a running one (--target). Rates are requests/s. Shapes "
    "default to 200 -> 600 req/s over 30 s. A trace file has `timestamp_s,rate` lines; "
    "between them the rate is interpolated linearly (--interpolation hold: each rate "
    "holds until the next line); --trace diurnal (or file without --trace-file) is "
    "the packaged example, a day in 120 s. --gateways N starts N gateway replicas in front "
    "of the same pods and spreads the load evenly over them; a list a,b runs the trace once "
    "per count, each into OUT/gateways-N."
)


def add_parser(sub: options.Subcommands) -> None:
    p = sub.add_parser(
        "trace",
        help="a load trace (step, ramp, spike, square, file) against the stack: table, JSON, PNGs",
        description=_DESCRIPTION,
    )
    p.add_argument("--trace", choices=TRACE_KINDS, default="step", help="the shape (step)")
    p.add_argument("--base-rate", type=NON_NEGATIVE, help="req/s before/between (200)")
    p.add_argument("--peak-rate", type=POSITIVE, help="req/s at the peak (600; file: rescale)")
    options.add_option(
        p, "duration", default=None, help="trace seconds (30; file: stretch its time)"
    )
    p.add_argument("--at-s", type=POSITIVE, help="step/spike time (default half-way)")
    p.add_argument("--width-s", type=POSITIVE, default=2.0, help="spike length (2 s)")
    p.add_argument("--period-s", type=POSITIVE, default=10.0, help="square period (10)")
    p.add_argument("--trace-file", type=Path, help="CSV of timestamp_s,rate lines (--trace file)")
    p.add_argument(
        "--interpolation", choices=INTERPOLATIONS, default="linear", help="for files (linear)"
    )
    options.add_sweep_options(p)
    options.add_options(p, "processes")
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
    options.add_options(p, "pid", "pods", "gateways")
    options.add_pod_options(p, fixed_ms=8.0, per_row_ms=0.25)


def run(args: argparse.Namespace) -> int:
    from loadtest.stack.local import StackConfig
    from loadtest.traces.run import TraceConfig, run_trace
    from loadtest.traces.shapes import TraceFileError, build_trace

    if (args.metrics or args.pid) and not args.target:
        print("--metrics and --pid go with --target (a running stack)")
        return 2
    if args.target and args.gateways != (1,):
        print("--gateways starts gateways; it goes without --target")
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
    failed = False
    for n in args.gateways:
        out = args.out
        if len(args.gateways) > 1:
            out = (args.out or Path("reports") / f"trace-{trace.name}") / f"gateways-{n}"
        config = options.config_from(
            args,
            TraceConfig,
            trace=trace,
            out_dir=out,
            metrics=tuple(args.metrics),
            pids=tuple(args.pid),
            stack=options.config_from(args, StackConfig, gateways=n),
            plots=not args.no_plots,
        )
        failed |= not run_trace(config).result.ok
    return 1 if failed else 0
