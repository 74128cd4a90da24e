"""The ``loadtest`` command: ``stack`` (make run), ``bench`` (make bench), ``load`` (one run)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from loadtest.argtypes import COUNT, NON_NEGATIVE, POSITIVE, POSITIVE_INT, choice_list
from loadtest.clients.base import CLIENT_KINDS, STANDARD_KINDS, is_grpc
from loadtest.commands.compare import COMMANDS as COMPARE_COMMANDS
from loadtest.commands.compare import add_compare_parsers, run_compare_command
from loadtest.commands.goodput import add_goodput_parser, run_goodput_command
from loadtest.commands.trace import add_trace_parser, run_trace_command

__all__ = ["build_parser", "main"]


def _add_load_args(p: argparse.ArgumentParser, *, duration: float) -> None:
    p.add_argument(
        "--concurrency",
        type=POSITIVE_INT,
        default=16,
        help="concurrent requests per generator process (default 16)",
    )
    p.add_argument("--rows", type=POSITIVE_INT, default=1, help="rows per request (default 1)")
    p.add_argument(
        "--duration",
        type=POSITIVE,
        default=duration,
        help=f"measured seconds per run (default {duration:g})",
    )
    p.add_argument(
        "--warmup",
        type=NON_NEGATIVE,
        default=1.0,
        help="warm-up seconds before each measurement (default 1)",
    )
    p.add_argument(
        "--processes",
        type=COUNT,
        default=1,
        help="generator processes; 0 runs the load in this process (default 1)",
    )
    p.add_argument(
        "--verify-every",
        type=COUNT,
        default=16,
        help="check one answer in N (default 16; 0 never)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="run simulated pods and the gateway in the foreground")
    stack.add_argument("--pods", type=POSITIVE_INT, default=2, help="simulated pods (default 2)")
    stack.add_argument("--http-port", type=int, default=8000, help="gateway HTTP (default 8000)")
    stack.add_argument("--grpc-port", type=int, default=8001, help="gateway gRPC (default 8001)")
    stack.add_argument(
        "--metrics-port", type=int, default=8002, help="gateway metrics (default 8002)"
    )
    stack.add_argument(
        "--pod-base-port",
        type=int,
        default=9000,
        help="pod i serves HTTP on BASE+10i and gRPC on BASE+10i+1 (default 9000)",
    )
    stack.add_argument(
        "--fixed-ms", type=NON_NEGATIVE, default=8.0, help="device ms per batch (default 8)"
    )
    stack.add_argument(
        "--per-row-ms",
        type=NON_NEGATIVE,
        default=0.25,
        help="device ms per row (default 0.25)",
    )
    stack.add_argument(
        "--max-batch", type=POSITIVE_INT, default=32, help="pod max batch size (default 32)"
    )

    bench = sub.add_parser("bench", help="gateway vs direct data-path benchmark, per protocol")
    _add_load_args(bench, duration=5.0)
    bench.add_argument(
        "--protocols",
        type=choice_list(CLIENT_KINDS),
        default=STANDARD_KINDS,
        help=f"comma-separated subset of {','.join(CLIENT_KINDS)}",
    )
    bench.add_argument(
        "--rounds",
        type=POSITIVE_INT,
        default=1,
        help="direct/gateway alternations per protocol, merged (default 1)",
    )
    bench.add_argument(
        "--max-batch", type=POSITIVE_INT, default=32, help="pod max batch size (default 32)"
    )
    bench.add_argument(
        "--pod-fixed-ms",
        type=NON_NEGATIVE,
        default=0.0,
        help="pod device ms per batch (default 0)",
    )
    bench.add_argument(
        "--pod-per-row-ms",
        type=NON_NEGATIVE,
        default=0.0,
        help="pod device ms per row (default 0)",
    )
    bench.add_argument(
        "--json",
        type=Path,
        default=Path("reports/bench-datapath.json"),
        help="JSON report path (default reports/bench-datapath.json)",
    )

    autoscale = sub.add_parser(
        "autoscale-bench", help="simulated autoscaling: this decider vs HPA- and KPA-style"
    )
    autoscale.add_argument(
        "--duration", type=POSITIVE, default=600.0, help="trace seconds (default 600)"
    )
    autoscale.add_argument(
        "--startup-s",
        type=NON_NEGATIVE,
        default=15.0,
        help="pod start-up delay in seconds (default 15)",
    )
    autoscale.add_argument(
        "--latency-ms",
        type=POSITIVE,
        default=100.0,
        help="latency target in ms (default 100)",
    )
    autoscale.add_argument(
        "--base-rate",
        type=POSITIVE,
        default=1500.0,
        help="base arrival rate, rows/s (default 1500)",
    )

    discovery = sub.add_parser(
        "discovery", help="discovery's CPU and event-to-routing delay under endpoint churn"
    )
    discovery.add_argument(
        "--endpoints", type=POSITIVE_INT, default=2000, help="endpoints (default 2000)"
    )
    discovery.add_argument(
        "--slice-size", type=POSITIVE_INT, default=100, help="endpoints per slice (default 100)"
    )
    discovery.add_argument(
        "--churn", type=POSITIVE, default=100.0, help="endpoint changes/s (default 100)"
    )
    discovery.add_argument(
        "--duration", type=POSITIVE, default=10.0, help="seconds of churn (default 10)"
    )

    add_goodput_parser(sub)
    add_trace_parser(sub)
    add_compare_parsers(sub)

    load = sub.add_parser("load", help="one closed-loop run against a running server")
    _add_load_args(load, duration=5.0)
    load.add_argument("--protocol", choices=CLIENT_KINDS, default="http-json")
    load.add_argument(
        "--target",
        default=None,
        help="http://host:port or host:port for grpc (default: the local gateway)",
    )
    load.add_argument("--model", default="sim", help="model name (default sim)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in COMPARE_COMMANDS:
        return run_compare_command(args)
    if args.command == "goodput":
        return run_goodput_command(args)
    if args.command == "trace":
        return run_trace_command(args)
    if args.command == "stack":
        return _stack(args)
    if args.command == "bench":
        return _bench(args)
    if args.command == "autoscale-bench":
        return _autoscale_bench(args)
    if args.command == "discovery":
        return _discovery_bench(args)
    return _load(args)


def _stack(args: argparse.Namespace) -> int:
    from loadtest.stack.local import StackConfig, run_stack

    return run_stack(
        StackConfig(
            pods=args.pods,
            http_port=args.http_port,
            grpc_port=args.grpc_port,
            metrics_port=args.metrics_port,
            pod_base_port=args.pod_base_port,
            fixed_ms=args.fixed_ms,
            per_row_ms=args.per_row_ms,
            max_batch=args.max_batch,
        )
    )


def _bench(args: argparse.Namespace) -> int:
    from loadtest.benches.datapath import BenchConfig, run_bench

    figures = run_bench(
        BenchConfig(
            protocols=args.protocols,
            concurrency=args.concurrency,
            rows=args.rows,
            duration_s=args.duration,
            warmup_s=args.warmup,
            processes=args.processes,
            rounds=args.rounds,
            max_batch=args.max_batch,
            pod_fixed_ms=args.pod_fixed_ms,
            pod_per_row_ms=args.pod_per_row_ms,
            verify_every=args.verify_every,
            json_path=args.json,
        )
    )
    failed = any(f.direct.result.error_count or f.gateway.result.error_count for f in figures)
    return 1 if failed else 0


def _autoscale_bench(args: argparse.Namespace) -> int:
    from loadtest.benches.autoscale import BenchConfig, run_bench

    run_bench(
        BenchConfig(
            duration_s=args.duration,
            startup_s=args.startup_s,
            latency_target_ms=args.latency_ms,
            base_rows_per_s=args.base_rate,
        )
    )
    return 0


def _discovery_bench(args: argparse.Namespace) -> int:
    from loadtest.benches.discovery import DiscoveryBenchConfig, run_discovery_bench

    run_discovery_bench(
        DiscoveryBenchConfig(
            endpoints=args.endpoints,
            slice_size=args.slice_size,
            churn_per_s=args.churn,
            duration_s=args.duration,
        )
    )
    return 0


def _load(args: argparse.Namespace) -> int:
    from loadtest.clients.base import ClientSpec
    from loadtest.clients.payload import SimPayload
    from loadtest.generators.closed_loop import ClosedLoopConfig, run_closed_loop
    from loadtest.results.report import fmt_rate, fmt_us, machine_note, print_table

    target = args.target or (
        "127.0.0.1:8001" if is_grpc(args.protocol) else "http://127.0.0.1:8000"
    )
    spec = ClientSpec(
        args.protocol,
        target,
        SimPayload(model=args.model, rows=args.rows),
        verify_every=args.verify_every,
    )
    config = ClosedLoopConfig(
        concurrency=args.concurrency,
        duration_s=args.duration,
        warmup_s=args.warmup,
        processes=args.processes,
    )
    result = run_closed_loop(spec, config)
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


if __name__ == "__main__":
    sys.exit(main())
